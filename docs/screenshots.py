#!/usr/bin/env python3
"""Make the README's pictures of the demo email: desktop (800 px), phone (375 px) and
the phone in dark mode.

Usage: ``.venv/bin/python docs/screenshots.py`` (needs Debian's chromium). It previews
the bundled demo in a temporary folder and photographs ``weekly.html`` in headless
Chromium. The demo's images live on a domain that does not exist, so each image request
is answered with a tinted placeholder showing its alt text; nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import html
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Route, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def placeholder(route: Route) -> None:
    url = route.request.url
    if url.startswith("file:"):
        route.continue_()
        return
    if route.request.resource_type != "image":
        route.abort()
        return
    hue = int(hashlib.sha256(url.encode()).hexdigest()[:2], 16) * 360 // 256
    label = html.escape(url.rsplit("/", 1)[-1])
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="1104" height="560">'
        f'<rect width="100%" height="100%" fill="hsl({hue},35%,55%)"/>'
        f'<text x="50%" y="52%" font-family="sans-serif" font-size="34" fill="white" '
        f'text-anchor="middle">{label}</text></svg>'
    )
    route.fulfill(status=200, content_type="image/svg+xml", body=svg)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "examples", work / "examples")
        shutil.copy(ROOT / "schedules.yaml", work / "schedules.yaml")
        digest = [sys.executable, "-m", "digest", "--config", str(work / "schedules.yaml")]
        subprocess.run(
            [*digest, "subscribers", "import", "demo", str(work / "examples/subscribers.csv")],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [*digest, "preview", "weekly", "--out", str(work / "preview")],
            check=True,
            capture_output=True,
        )
        page_url = (work / "preview" / "weekly.html").as_uri()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            shots = (
                (800, "light", "email-desktop.png"),
                (375, "light", "email-phone.png"),
                (375, "dark", "email-phone-dark.png"),
            )
            for width, scheme, name in shots:
                page = browser.new_page(
                    viewport={"width": width, "height": 1400}, color_scheme=scheme
                )
                page.route("**/*", placeholder)
                page.goto(page_url)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(ROOT / "docs" / name))
                print(ROOT / "docs" / name)
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
