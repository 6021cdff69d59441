"""Property-based tests of parsers of outside input: whatever the input, nothing but the
project's own errors escapes, and a rejected input changes nothing.

The default suite runs a modest number of examples per property; ``bench/fuzz/run.py``
runs the same properties with ``DIGEST_FUZZ_EXAMPLES`` set high (hundreds of thousands
of cases in all) and reports how many were generated.
"""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.collect.feeds import parse_feed
from digest.collect.sitemaps import parse_sitemap
from digest.config import load_config
from digest.errors import ConfigError, DigestError
from digest.tokens import make_token, read_token

EXAMPLES = int(os.environ.get("DIGEST_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
KEY = b"fuzz-key-" * 4
TOKEN_CHARS = string.ascii_letters + string.digits + "-_.=+ \uff10\uff11/"

# --- tokens -----------------------------------------------------------------------------


@FUZZ
@given(st.text(alphabet=TOKEN_CHARS, max_size=60) | st.text(max_size=60))
def test_any_text_as_a_token_is_rejected_quietly(text: str) -> None:
    token = read_token(KEY, "unsubscribe", text)
    assert token is None or text == make_token(
        KEY, "unsubscribe", token.subscriber_id, token.list_name
    )


@FUZZ
@given(
    st.integers(min_value=1, max_value=10**12),
    st.text(min_size=1, max_size=30),
    st.data(),
)
def test_a_token_reads_back_and_every_one_character_change_is_refused(
    subscriber_id: int, list_name: str, data: st.DataObject
) -> None:
    token = make_token(KEY, "unsubscribe", subscriber_id, list_name)
    claim = read_token(KEY, "unsubscribe", token)
    assert claim is not None and (claim.subscriber_id, claim.list_name) == (
        subscriber_id,
        list_name,
    )
    index = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.sampled_from(TOKEN_CHARS).filter(lambda c: c != token[index]))
    assert read_token(KEY, "unsubscribe", token[:index] + replacement + token[index + 1 :]) is None


# --- schedules.yaml -----------------------------------------------------------------------

VALID = """\
base_url: https://news.example.org
backends:
  local: {type: outbox, path: outbox}
newsletters:
  weekly:
    title: The Weekly
    sources: [{feed: feed.xml}]
    list: demo
    backend: local
    weekly: monday 07:00
"""
YAML_NOISE = st.sampled_from(
    [
        ":",
        "- ",
        "  ",
        "\n",
        "{",
        "}",
        "[",
        "]",
        "'",
        '"',
        "&a",
        "*a",
        "!!python/object ",
        "\t",
        "weekly: x",
        "list: y",
        "cron: '* *'",
        "\r\n",
        "\x00",
        "Bcc:",
        "~",
        "null",
        "1e9999",
        "<<: *a",
    ]
)


@FUZZ
@given(st.data())
def test_a_mutated_config_loads_or_says_what_is_wrong(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    text = VALID
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        position = data.draw(st.integers(min_value=0, max_value=len(text)))
        cut = data.draw(st.integers(min_value=0, max_value=8))
        noise = data.draw(YAML_NOISE | st.text(max_size=6))
        text = text[:position] + noise + text[position + cut :]
    path = tmp_path_factory.mktemp("cfg") / "schedules.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc).strip()


# --- feeds and sitemaps -------------------------------------------------------------------

FEED = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>
<item><title>A</title><link>https://example.org/a</link><pubDate>Mon, 02 Nov 2026 07:00:00 GMT</pubDate></item>
<item><title>B</title><link>/b</link><description>&lt;p&gt;x&lt;/p&gt;</description></item>
</channel></rss>"""
JSON_FEED = b'{"version":"https://jsonfeed.org/version/1.1","title":"T","items":[{"id":"1","url":"https://example.org/a","date_published":"2026-11-02T07:00:00Z"}]}'
SITEMAP = b"""<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>https://example.org/a</loc><lastmod>2026-11-02</lastmod></url>
<url><loc>https://example.org/b</loc><lastmod>2026-11-02T07:00:00+01:00</lastmod></url></urlset>"""


def _mutate(data: st.DataObject, body: bytes) -> bytes:
    for _ in range(data.draw(st.integers(min_value=1, max_value=6))):
        position = data.draw(st.integers(min_value=0, max_value=len(body)))
        cut = data.draw(st.integers(min_value=0, max_value=12))
        body = body[:position] + data.draw(st.binary(max_size=8)) + body[position + cut :]
    return body


@FUZZ
@given(st.data())
def test_a_mutated_feed_parses_or_raises_a_source_error(data: st.DataObject) -> None:
    body = _mutate(data, data.draw(st.sampled_from([FEED, JSON_FEED])))
    try:
        listing = parse_feed(
            body,
            "https://example.org/feed",
            data.draw(st.sampled_from(["", "application/json", "text/xml"])),
        )
    except DigestError:
        return
    # Links that are not web URLs (file:, a mangled scheme) are filtered later by collect;
    # the parser only promises a non-empty string per entry.
    assert all(isinstance(entry.url, str) and entry.url for entry in listing.entries)


@FUZZ
@given(st.data())
def test_a_mutated_sitemap_parses_or_raises_a_source_error(data: st.DataObject) -> None:
    body = _mutate(data, SITEMAP)
    try:
        parse_sitemap(body, "https://example.org/sitemap.xml", 1_000_000)
    except DigestError:
        return


def test_the_fuzz_settings_are_read_from_the_environment() -> None:
    # bench/fuzz/run.py relies on this knob; a silent default would under-report the cases.
    assert FUZZ.max_examples == EXAMPLES
