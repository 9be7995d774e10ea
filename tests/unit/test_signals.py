"""A signal that lands while a class is being made (an import) still ends the tool as that signal."""

from __future__ import annotations

import pytest

from sagatools.cli import Terminated, taking_signals


class _Interrupted:
    def __init__(self, signal: BaseException) -> None:
        self.signal = signal

    def __set_name__(self, owner: type, name: str) -> None:
        raise self.signal


@pytest.mark.parametrize("signal", [KeyboardInterrupt(), Terminated()], ids=["SIGINT", "SIGTERM"])
def test_a_signal_inside_a_class_being_made_reaches_the_tool_as_itself(signal):
    # Given a signal raised while a class body's descriptors are named (Python wraps that in RuntimeError)
    # When it happens inside a tool's main / Then the tool sees the signal, not a RuntimeError
    with pytest.raises(type(signal)), taking_signals(None):
        type("Made", (), {"attribute": _Interrupted(signal)})
