"""Text from outside (file names, request-derived messages) made safe to print on a terminal.

A file name can hold escape sequences that retitle the terminal or worse: every control character
(C0, DEL, C1) is shown as an escape (\\x1b) instead of reaching the terminal raw. Tabs stay tabs.
"""

from __future__ import annotations

import re

# Control characters, and the surrogates Python uses for bytes of a file name that are not UTF-8.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")


def shown(text: str) -> str:
    """`text` with every control character written as a Python escape; newlines too (one item, one line)."""
    return _CONTROL.sub(lambda match: match.group(0).encode("unicode_escape").decode("ascii"), text)


def shown_lines(text: str) -> str:
    """Like `shown`, line by line: the line breaks stay."""
    return "\n".join(shown(line) for line in text.split("\n"))
