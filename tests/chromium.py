"""Debian's Chromium, headless, for the tests that open pages in a real browser."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from typing import Any

import pytest

#: Headless, and none of Chromium's own connections (none is needed, none reaches out).
ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def path() -> str:
    """Chromium's executable, or the test is skipped."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium here (Debian: apt-get install chromium)")


def launch(playwright: Any) -> Any:
    """A headless Chromium browser from a ``sync_playwright()`` context."""
    return playwright.chromium.launch(executable_path=path(), args=ARGS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_server(server: subprocess.Popen[Any], address: str, seconds: float, log: Any) -> None:
    """Until ``address`` answers; fails with ``log()`` if the server exits or ``seconds``
    pass first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(address, timeout=2)
            return
        except OSError:
            assert server.poll() is None, log()
            assert time.monotonic() < deadline, f"{address} did not answer in {seconds} s"
            time.sleep(0.3)
