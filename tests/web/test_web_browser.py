"""The unsubscribe page in a real browser: headless Chromium (Debian's ``chromium``)
driven by Playwright, against the real server. Playwright's own browser downloads are
never used; without /usr/bin/chromium the test is skipped with the reason."""

from __future__ import annotations

from pathlib import Path

from digest.store.tables import SubscriberRow
from digest.tokens import make_token
from tests.support.browser import CHROMIUM, LAUNCH_ARGS, needs_chromium
from tests.support.subscribers import SECRET, events_of, served_demo, status_of

AVA = "ava.lindqvist@example.org"

pytestmark = needs_chromium


def test_unsubscribe_button_in_chromium(tmp_path: Path, monkeypatch) -> None:
    from playwright.sync_api import sync_playwright
    from sqlalchemy import select

    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    with served_demo(tmp_path) as (server, _, store):
        with store.session() as session:
            sid = session.scalars(select(SubscriberRow.id).where(SubscriberRow.email == AVA)).one()
        url = f"{server.url}/unsubscribe/{make_token(SECRET.encode(), 'unsubscribe', sid, 'demo')}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            try:
                page = browser.new_page()
                page.goto(url)
                assert page.title() == "Unsubscribe"
                assert status_of(store, AVA) == "active"  # opening the page changed nothing
                preferences = page.get_by_role("link", name="Manage your preferences")
                assert "/preferences/" in (preferences.get_attribute("href") or "")
                page.get_by_role("button", name="Unsubscribe").click()
                page.wait_for_selector("#result")
                assert "is unsubscribed" in page.locator("#result").inner_text()
                assert page.title() == "Unsubscribed"
            finally:
                browser.close()
        assert status_of(store, AVA) == "unsubscribed"
        assert events_of(store, AVA)[-1] == ("unsubscribed", "one-click")
