"""Hostile but legal-looking inputs (issue: trust): token spellings, secrets in errors,
duplicate keys and header-bound values in schedules.yaml, two processes making the key."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from digest.config import load_config
from digest.errors import ConfigError, StoreError
from digest.redact import mask_url
from digest.store import Store
from digest.tokens import make_token, read_token, secret_key

KEY = b"k" * 32

VALID = """\
database: sqlite:///digest.db
base_url: https://news.example.org
backends:
  local: {type: outbox, path: outbox}
newsletters:
  weekly:
    title: The Weekly Round-up
    sources: [{feed: examples/site/feed.xml}]
    list: demo
    backend: local
    weekly: monday 07:00
"""


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- tokens: exactly one accepted spelling -------------------------------------------------

GOOD = make_token(KEY, "unsubscribe", 42, "demo")
SID, LIST, MAC = GOOD.split(".")


def _flip_low_bits(text: str) -> str:
    """The same base64 text with its last character changed only in bits the decoder drops."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(text[-1])
    return text[:-1] + alphabet[index ^ 1]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(f"+{SID}.{LIST}.{MAC}", id="plus-sign"),
        pytest.param(f"0{SID}.{LIST}.{MAC}", id="leading-zero"),
        pytest.param(f" {SID}.{LIST}.{MAC}", id="leading-space"),
        pytest.param(f"4_2.{LIST}.{MAC}", id="underscore-digits"),
        pytest.param(f"\uff14\uff12.{LIST}.{MAC}", id="full-width-digits"),
        pytest.param(f"{SID}.{LIST}==.{MAC}", id="padded-list"),
        pytest.param(f"{SID}.{LIST}.{MAC}==", id="padded-mac"),
        pytest.param(f"{SID}.{LIST}.{_flip_low_bits(MAC)}", id="changed-last-character"),
        pytest.param(f"{SID}.{LIST}.{MAC}AAAA", id="longer-mac"),
    ],
)
def test_a_token_is_accepted_in_its_canonical_spelling_only(token: str) -> None:
    assert read_token(KEY, "unsubscribe", GOOD) is not None
    assert read_token(KEY, "unsubscribe", token) is None


def test_the_flipped_character_would_decode_to_the_same_mac() -> None:
    # Guards the test above: the variant is a real alias, not merely a different MAC.
    import base64

    def raw(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    assert raw(_flip_low_bits(MAC)) == raw(MAC)


# --- the key file: two processes on a fresh folder -----------------------------------------


def _make_key(folder: str, queue: multiprocessing.Queue) -> None:
    os.environ.pop("DIGEST_SECRET_KEY", None)
    queue.put(secret_key(Path(folder)))


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_make_key, args=(str(tmp_path), queue)) for _ in range(8)]
    for worker in workers:
        worker.start()
    keys = {queue.get(timeout=20) for _ in workers}
    for worker in workers:
        worker.join(timeout=20)
        assert worker.exitcode == 0
    assert len(keys) == 1 and len(keys.pop()) >= 32
    assert [p.name for p in tmp_path.iterdir()] == [".digest-secret"]


# --- secrets never printed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://digest:s3cret@db.example.org/digest",
            "postgresql://digest:***@db.example.org/digest",
        ),
        ("amqp://guest:p@ss@127.0.0.1:5672//", "amqp://guest:***@127.0.0.1:5672//"),
        ("redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("sqlite:///var/lib/digest.db", "sqlite:///var/lib/digest.db"),
    ],
)
def test_url_passwords_are_masked(url: str, shown: str) -> None:
    assert mask_url(f"cannot open {url}: refused") == f"cannot open {shown}: refused"


def test_an_unusable_database_url_is_reported_without_its_password() -> None:
    with pytest.raises(StoreError) as caught:
        Store("nosuchdialect://admin:TopSecret99@db.example.org/digest")
    assert "TopSecret99" not in str(caught.value)
    assert "admin:***@db.example.org" in str(caught.value)


def test_a_secret_pasted_into_an_env_setting_is_refused_without_echo(tmp_path: Path) -> None:
    text = VALID.replace(
        "local: {type: outbox, path: outbox}",
        "local: {type: outbox, path: outbox}\n  mail: {type: postmark, api_key_env: 'pm-9f8e/7d6c:5b4a'}",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, text))
    message = str(caught.value)
    assert "backends.mail" in message and "name of an environment variable" in message
    assert "9f8e" not in message


# --- schedules.yaml: duplicate keys and header-bound values --------------------------------


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = VALID.replace("    list: demo\n", "    list: demo\n    list: everyone\n")
    with pytest.raises(ConfigError, match=r"'list' appears twice .* lines 9 and 10"):
        load_config(_config(tmp_path, text))


def test_two_cadence_blocks_are_refused(tmp_path: Path) -> None:
    text = VALID + "    weekly: friday 09:00\n"
    with pytest.raises(ConfigError, match=r"'weekly' appears twice"):
        load_config(_config(tmp_path, text))


def test_the_same_key_in_different_mappings_is_fine(tmp_path: Path) -> None:
    text = (
        VALID
        + "  daily:\n    title: Daily\n    sources: [{feed: f.xml}]\n    list: demo\n    backend: local\n"
    )
    config = load_config(_config(tmp_path, text))
    assert set(config.newsletters) == {"weekly", "daily"}


@pytest.mark.parametrize(
    ("before", "after", "where"),
    [
        (
            "title: The Weekly Round-up",
            'title: "Weekly\\r\\nBcc: all@evil.example"',
            "newsletters.weekly.title",
        ),
        (
            "base_url: https://news.example.org",
            'base_url: "https://news.example.org\\r\\nBcc: x@evil.example"',
            "base_url",
        ),
        (
            "base_url: https://news.example.org",
            'base_url: https://news.example.org\nunsubscribe_mailto: "u@example.org\\nBcc: x@evil.example"',
            "unsubscribe_mailto",
        ),
        ("    list: demo", '    list: "demo\\nBcc: x@evil.example"', "newsletters.weekly.list"),
        (
            "weekly: monday 07:00",
            'weekly: monday 07:00\n    subject: "Hi\\r\\nBcc: x@evil.example"',
            "newsletters.weekly.subject",
        ),
    ],
)
def test_values_that_reach_headers_must_be_one_line(
    tmp_path: Path, before: str, after: str, where: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, VALID.replace(before, after)))
    assert f"{where}: must be on one line" in str(caught.value)


# --- links anyone can write: skipped with a sentence, never a crash -------------------------


def test_a_sitemap_loc_that_is_not_a_url_is_skipped_and_said() -> None:
    from digest.collect.sitemaps import parse_sitemap

    body = (
        b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>https://example.org/[broken</loc></url>"
        b"<url><loc>http://[::1/a</loc></url>"
        b"<url><loc>https://example.org:99999/b</loc></url>"
        b"<url><loc>https://example.org/good</loc></url></urlset>"
    )
    doc = parse_sitemap(body, "https://example.org/sitemap.xml", 1_000_000)
    assert [e.url for e in doc.entries] == [
        "https://example.org/[broken",
        "https://example.org/good",
    ]
    assert len(doc.warnings) == 2 and all("not a URL" in w for w in doc.warnings)


def test_a_feed_link_that_is_not_a_url_is_skipped_like_a_missing_one() -> None:
    from digest.collect.feeds import parse_feed

    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        b"<item><title>A</title><link>http://[oops/a</link></item>"
        b"<item><title>B</title><link>https://example.org/b</link></item></channel></rss>"
    )
    listing = parse_feed(body, "https://example.org/feed")
    assert [e.url for e in listing.entries] == ["https://example.org/b"]
    assert any("1 feed entry without a link was skipped" in w for w in listing.warnings)
