"""The preview gallery is the operator's (issue 12, item 1): it needs their token (or,
without one configured, is only for this machine on a loopback ``base_url``), shows
the sample reader with links that carry no token, builds once for twenty requests at
once, and its error pages do not tell where the configuration lives."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from digest.cli import main
from digest.config import load_config
from digest.store import Store
from digest.web import create_app
from tests.support.collect_server import Server
from tests.support.email_samples import STORIES, make_site

TOKEN = "operator-token-for-tests"
ROUTES = ("/preview", "/preview/changes", "/preview/weekly", "/preview/weekly/email.html")


def app_for(site: Path, extra: str = "", base_url: str | None = None) -> Starlette:
    config_file = site / "schedules.yaml"
    text = config_file.read_text() + extra
    if base_url:
        text = text.replace("base_url: https://quay.example", f"base_url: {base_url}")
    config_file.write_text(text)
    config = load_config(config_file)
    return create_app(config, Store(config.database_url))


def client(app: Starlette, host: str = "127.0.0.1", **kwargs: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIGEST_PREVIEW_TOKEN", TOKEN)
    site = make_site(tmp_path)
    config = site / "schedules.yaml"
    assert (
        main(
            ["--config", str(config), "subscribers", "import", "readers", str(site / "readers.csv")]
        )
        == 0
    )
    return site


GUARDED = "web: {preview: {token_env: DIGEST_PREVIEW_TOKEN}}\n"


async def test_the_gallery_needs_the_operators_token(site: Path) -> None:
    app = app_for(site, GUARDED)
    async with client(app) as anonymous:
        for path in ROUTES:
            answer = await anonymous.get(path)
            assert answer.status_code == 401, path
            assert answer.headers["www-authenticate"].startswith("Basic")
            assert "Quay" not in answer.text
        assert (await anonymous.get("/preview", auth=("operator", "wrong"))).status_code == 401
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (await anonymous.get("/preview", headers=bearer)).status_code == 200
    async with client(app, auth=("operator", TOKEN)) as operator:
        for path in ROUTES:
            assert (await operator.get(path)).status_code == 200, path


async def test_without_a_token_the_gallery_is_only_for_this_machine_on_a_loopback_base_url(
    site: Path,
) -> None:
    public = app_for(site)  # base_url https://quay.example, no token configured
    async with client(public) as local:
        assert (await local.get("/preview/weekly")).status_code == 403
    local_app = app_for(site, base_url="http://127.0.0.1:8000")
    async with client(local_app) as local:
        assert (await local.get("/preview/weekly")).status_code == 200
    async with client(local_app, host="203.0.113.9") as remote:
        assert (await remote.get("/preview/weekly")).status_code == 403


async def test_the_gallery_shows_the_sample_reader_and_no_working_link(site: Path) -> None:
    app = app_for(site, GUARDED)
    async with client(app, auth=("operator", TOKEN)) as operator:
        page = (await operator.get("/preview/weekly")).text
        email = (await operator.get("/preview/weekly/email.html")).text
        for shown in (page, email):
            assert "ann@example.org" not in shown and "bob@example.org" not in shown
            assert "Hi Ann" not in shown and "Hi Bob" not in shown
            tokens = set(re.findall(r"/(?:unsubscribe|preferences)/([^\"'<>\s&]+)", shown))
            assert tokens == {"preview"}, tokens
        assert "Hi Preview Reader," in email
    async with client(app) as anyone:
        answer = await anyone.post("/unsubscribe/preview", data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code >= 400


async def test_twenty_requests_at_once_cause_one_build(site: Path) -> None:
    with Server() as feed_site:

        async def slow_feed(_request: Request) -> Response:
            await asyncio.sleep(0.5)  # long enough for all twenty to arrive meanwhile
            return Response((site / "feed.xml").read_bytes(), media_type="application/rss+xml")

        feed_site.route("/feed.xml", slow_feed)
        for slug, *_ in STORIES:
            feed_site.text(f"/{slug}.html", (site / f"{slug}.html").read_text())
        config_file = site / "schedules.yaml"
        config_file.write_text(
            config_file.read_text().replace(
                "sources: [{feed: feed.xml}]",
                f"sources: [{{feed: '{feed_site.url('/feed.xml')}', "
                "allow_private_networks: true, robots: false}]",
            )
        )
        app = app_for(site, GUARDED)
        async with client(app, auth=("operator", TOKEN), timeout=30) as operator:
            answers = await asyncio.gather(*(operator.get("/preview/weekly") for _ in range(20)))
        assert {answer.status_code for answer in answers} == {200}
        assert all("Spring tides flood the lower quay again" in a.text for a in answers)
        assert feed_site.count("/feed.xml") == 1


async def test_an_error_page_does_not_show_where_the_configuration_lives(site: Path) -> None:
    app = app_for(site, GUARDED)
    (site / "schedules.yaml").write_text("newsletters: [")
    async with client(app, auth=("operator", TOKEN)) as operator:
        for path in ("/preview", "/preview/weekly", "/preview/weekly/email.html"):
            answer = await operator.get(path)
            assert "is not valid YAML" in answer.text, path
            assert str(site) not in answer.text and str(site.resolve()) not in answer.text
