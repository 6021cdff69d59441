"""Collection settings in schedules.yaml, and the CLI's one-off fetch of a typed URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest.cli import main
from digest.collect import rules_of
from digest.config import load_config
from digest.errors import ConfigError
from tests.support import write_config
from tests.support.collect_server import Server

CONFIG = """
backends:
  local: {{type: outbox, path: outbox}}
newsletters:
  weekly:
    title: Weekly
    list: readers
    backend: local
    sources:
{sources}
"""


def write(tmp_path: Path, sources: str, top: str = "") -> Path:
    return write_config(tmp_path, top + CONFIG.format(sources=sources))


def test_source_settings_and_their_defaults(tmp_path: Path) -> None:
    sources = """      - feed: https://news.example.org/feed.xml
      - listing: https://news.example.org/world/
        selector: "main article h2 a"
        allow_private_networks: true
        robots: false
        deadline: 30
        per_host: 2
        max_articles: 10
      - sitemap: sitemaps/news.xml.gz"""
    config = load_config(write(tmp_path, sources))
    plain, listing, sitemap = config.newsletter("weekly").sources
    assert (plain.deadline, plain.robots, plain.per_host, plain.max_articles) == (120, True, 4, 100)
    assert not plain.allow_private_networks
    assert listing.selector == "main article h2 a"
    rules = rules_of(listing)
    assert (rules.allow_private_networks, rules.robots, rules.per_host) == (True, False, 2)
    assert sitemap.location == str(tmp_path / "sitemaps" / "news.xml.gz")


def test_bad_source_settings_are_named(tmp_path: Path) -> None:
    sources = """      - feed: https://news.example.org/feed.xml
        per_host: 0"""
    with pytest.raises(ConfigError, match=r"newsletters\.weekly\.sources\.0\.per_host"):
        load_config(write(tmp_path, sources))
    with pytest.raises(ConfigError, match=r"robot.*not a known setting"):
        load_config(write(tmp_path, "      - feed: f.xml\n        robot: false"))


def test_user_agent_carries_the_contact_url(tmp_path: Path) -> None:
    top = "user_agent: digest/0.1\ncontact_url: https://news.example.org/crawler\n"
    config = load_config(write(tmp_path, "      - feed: f.xml", top))
    assert config.http_user_agent == "digest/0.1 (+https://news.example.org/crawler)"


def test_extract_command_fetches_a_typed_localhost_url(capsys: pytest.CaptureFixture[str]) -> None:
    with Server() as site:
        site.text(
            "/story",
            "<html><head><title>T | Site</title></head><body><article><h1>Ferry back on "
            "schedule</h1><p>The morning ferry ran on time for the first week since the "
            "storm, the harbour office said on Friday.</p></article></body></html>",
        )
        # A URL the user typed is not subject to the SSRF guard meant for listed links.
        assert main(["extract", site.url("/story"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["headline"] == "Ferry back on schedule"
