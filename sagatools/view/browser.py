"""Headless Chromium (Debian's `chromium`), for screenshots and for reading a rendered page's DOM.

Started for a headless, offline run: no sandbox (CI runs as root), no GPU, no background networking
(nothing reaches out to Google's services), and a fresh profile every time.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


class BrowserMissing(RuntimeError):
    """No chromium on PATH (install Debian's package: apt-get install chromium)."""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise BrowserMissing("chromium is not installed (apt-get install chromium)")


def _run(page: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *arguments, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 1000) -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    _run(page, f"--window-size={width},{height}", f"--screenshot={png.resolve()}")
    return png


def rendered_dom(page: Path) -> str:
    """The DOM after the page has loaded and laid out, as Chromium serializes it."""
    return _run(page, "--dump-dom").stdout
