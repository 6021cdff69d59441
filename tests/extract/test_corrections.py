"""Per-source corrections for extraction: schedules.yaml, the run report, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest.cli import main
from digest.collect import collect
from digest.collect.fetch import Fetcher
from digest.config import load_config
from digest.errors import ConfigError
from digest.models import Corrections
from tests.support import write_config

CONFIG = """
backends:
  local: {{type: outbox, path: outbox}}
newsletters:
  weekly:
    title: Weekly
    list: readers
    backend: local
    sources:
      - feed: {feed}
{extract}
"""
PAGE = """<html><head><title>Club news | Riverside Rowing Club</title></head><body>
<div class="notice-board"><span class="news-title">Boathouse roof repaired</span>
<div class="news-text"><p>Roofers finished work on the boathouse on Saturday, replacing the
felt over the eights bay where rain had been dripping onto the boats.</p>
<div class="share-row"><p>Tell a friend about the club, they may enjoy rowing too.</p></div>
</div></div></body></html>"""


def site(tmp_path: Path, extract: str) -> Path:
    """A local feed listing one local page, and schedules.yaml with ``extract`` under it."""
    (tmp_path / "roof.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "feed.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Club</title>'
        "<item><title>Roof</title><link>roof.html</link></item>"
        "</channel></rss>",
        encoding="utf-8",
    )
    return write_config(tmp_path, CONFIG.format(feed=tmp_path / "feed.xml", extract=extract))


FIX = """        extract:
          headline: .news-title
          body: .news-text
          drop: [.share-row, .no-such-block]"""


def test_a_source_carries_its_corrections(tmp_path: Path) -> None:
    source = load_config(site(tmp_path, FIX)).newsletter("weekly").sources[0]
    assert source.corrections == Corrections(
        headline=".news-title", body=".news-text", drop=(".share-row", ".no-such-block")
    )
    plain = load_config(site(tmp_path, "")).newsletter("weekly").sources[0]
    assert plain.corrections == Corrections()


@pytest.mark.parametrize("selector", ["'h1[class='", "''", "'div >'"])
def test_a_selector_lexbor_cannot_read_is_a_config_error(tmp_path: Path, selector: str) -> None:
    with pytest.raises(ConfigError, match=r"extract.*not a CSS selector"):
        load_config(site(tmp_path, f"        extract:\n          headline: {selector}"))


async def test_a_selector_matching_nothing_is_reported_on_the_sources_line(
    tmp_path: Path,
) -> None:
    sources = load_config(site(tmp_path, FIX)).newsletter("weekly").sources
    async with Fetcher() as fetcher:
        collected = await collect(sources, fetcher)
    (report,) = collected.reports
    assert report.fetched == 1
    assert "1 warning(s)" in report.line
    (warning,) = report.warnings
    assert "extract drop '.no-such-block' matched nothing on 1 of 1 page(s)" in warning
    (page,) = collected.pages
    assert page.corrections == sources[0].corrections


def test_cli_extract_applies_a_sources_corrections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(site(tmp_path, FIX))
    page = str(tmp_path / "roof.html")
    assert main(["--config", config, "extract", page, "--source", "weekly/1", "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["headline"] == "Boathouse roof repaired"
    assert data["paragraphs"] == [
        "Roofers finished work on the boathouse on Saturday, replacing the felt over the eights "
        "bay where rain had been dripping onto the boats."
    ]
    assert "extract drop '.no-such-block' matched nothing" in captured.err
    assert main(["--config", config, "extract", page, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["headline"] == "Club news | Riverside Rowing Club"


@pytest.mark.parametrize("spec", ["weekly", "weekly/0", "weekly/2", "weekly/x"])
def test_cli_source_must_name_a_newsletter_and_a_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str
) -> None:
    config = str(site(tmp_path, FIX))
    page = str(tmp_path / "roof.html")
    assert main(["--config", config, "extract", page, "--source", spec]) == 2
    assert "--source" in capsys.readouterr().err
