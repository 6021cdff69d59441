"""The /preview gallery, over real HTTP from uvicorn on 127.0.0.1."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import sync_playwright

from digest.config import load_config
from digest.render import default_template_dir
from digest.store import Store
from digest.web import create_app
from tests.support import free_port
from tests.support.browser import CHROMIUM, LAUNCH_ARGS, loopback_only, needs_chromium
from tests.support.email_samples import make_site

#: The operator's token for the gallery (``web.preview.token_env``).
TOKEN = "operator-token-for-tests"


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[httpx.Client, Path]]:
    site = make_site(tmp_path)
    monkeypatch.setenv("DIGEST_PREVIEW_TOKEN", TOKEN)
    # A template folder of the site's own, so the test can edit a template safely.
    templates = site / "templates"
    templates.mkdir()
    for source in default_template_dir().iterdir():
        (templates / source.name).write_bytes(source.read_bytes())
    config_file = site / "schedules.yaml"
    config_file.write_text(
        config_file.read_text().replace(
            "    list: readers", "    list: readers\n    template_dir: templates"
        )
        + "web: {preview: {token_env: DIGEST_PREVIEW_TOKEN}}\n"
    )
    config = load_config(config_file)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, Store(config.database_url)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", timeout=10, auth=("operator", TOKEN)
    ) as client:
        yield client, site
    server.should_exit = True
    thread.join(timeout=10)


def touch(path: Path, text: str) -> None:
    """Write ``text`` and make sure the modification time moves on."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def test_gallery_lists_newsletters(served: tuple[httpx.Client, Path]) -> None:
    client, _ = served
    page = client.get("/preview")
    assert page.status_code == 200
    assert "<a href='/preview/weekly'>Quay Weekly</a>" in page.text


def test_newsletter_page_shows_both_widths_text_headers_and_size(
    served: tuple[httpx.Client, Path],
) -> None:
    client, _ = served
    page = client.get("/preview/weekly")
    assert page.status_code == 200
    assert 'width="800"' in page.text and 'width="375"' in page.text
    assert page.text.count('src="/preview/weekly/email.html"') == 2
    assert "List-Unsubscribe: &lt;https://quay.example/unsubscribe/" in page.text
    subject = re.search(r"Subject: ([^<\n]*)", page.text)
    assert subject and "Quay Weekly" not in subject.group(1), subject  # the From name says it
    assert "Spring tides flood the lower quay again" in page.text  # in the text part
    assert "of 102 KB" in page.text and "not clipped by Gmail" in page.text
    email = client.get("/preview/weekly/email.html")
    assert email.status_code == 200
    assert email.text.startswith("<!doctype html>") and "Hi Preview Reader," in email.text


def test_unknown_newsletter_says_so(served: tuple[httpx.Client, Path]) -> None:
    client, _ = served
    assert "There is no newsletter &#x27;nope&#x27;" in client.get("/preview/nope").text
    assert client.get("/preview/nope/email.html").status_code == 404


def test_version_changes_with_templates_and_schedules(served: tuple[httpx.Client, Path]) -> None:
    client, site = served
    first = client.get("/preview/changes").json()["version"]
    assert client.get("/preview/changes").json()["version"] == first
    template = site / "templates" / "issue.mjml"
    touch(template, template.read_text().replace("Top story", "Lead story"))
    second = client.get("/preview/changes").json()["version"]
    assert second != first
    config_file = site / "schedules.yaml"
    touch(config_file, config_file.read_text().replace("title: Quay Weekly", "title: Quay Daily"))
    assert client.get("/preview/changes").json()["version"] != second
    # The page builds from the files as they are now.
    assert "Quay Daily" in client.get("/preview/weekly").text


def test_broken_schedules_shows_the_error_and_keeps_polling(
    served: tuple[httpx.Client, Path],
) -> None:
    client, site = served
    touch(site / "schedules.yaml", "newsletters: [")
    page = client.get("/preview/weekly")
    assert "is not valid YAML" in page.text
    assert "fetch('/preview/changes')" in page.text


@needs_chromium
def test_gallery_reloads_in_the_browser_when_a_template_changes(
    served: tuple[httpx.Client, Path],
) -> None:
    client, site = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(
                viewport={"width": 1400, "height": 1000},
                http_credentials={"username": "operator", "password": TOKEN},
            )
            page.route("**/*", loopback_only)
            page.goto(f"{client.base_url}/preview/weekly", wait_until="load")
            frames = [f for f in page.frames if f.url.endswith("/email.html")]
            assert len(frames) == 2
            widths = sorted(f.evaluate("window.innerWidth") for f in frames)
            assert widths == [375, 800]
            # Each width shows the email without horizontal scrolling.
            assert all(
                f.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
                for f in frames
            )
            template = site / "templates" / "issue.mjml"
            masthead = "{{ t.issue }} {{ issue.number }} · {{ date }}"
            touch(template, template.read_text().replace(masthead, masthead + " · Edited"))
            page.wait_for_function(
                "() => [...document.querySelectorAll('iframe')].every("
                "f => f.contentDocument && f.contentDocument.body"
                " && f.contentDocument.body.innerText.includes('· Edited'))",
                timeout=15000,
            )
        finally:
            browser.close()
