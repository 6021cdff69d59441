"""Debian's headless Chromium for the tests that look at pages as people do.

Tests that need it are marked ``needs_chromium`` and are skipped, saying why, on a
machine without it. Pages may load only what this machine serves: ``loopback_only``
aborts every other request, so no test reaches the network.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)


def is_local(url: str) -> bool:
    """True for a URL this machine answers (loopback) or that needs no server."""
    host = urlsplit(url).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1") or url.startswith(("data:", "about:"))


def loopback_only(route: Route) -> None:
    """A Playwright route handler: local requests go ahead, all others are aborted."""
    if is_local(route.request.url):
        route.continue_()
    else:
        route.abort()
