"""Extraction: headline, standfirst, lead and metadata from pages in many publishing styles.

Most behaviour is checked by cases in ``tests/fixtures/extract/``: a page we wrote
(``<case>.html``) and ``<case>.json`` with the URL it is read as, optionally a source's
``corrections`` (as under ``extract:`` in schedules.yaml), and the fields expected
(every field listed is compared exactly; ``published`` as an ISO 8601 string, offset
included). Add a case by writing both files; the tests below cover what a page alone
cannot (charsets, hints, URLs, hostile input).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import pytest
from selectolax.lexbor import LexborHTMLParser

from digest.cli import main
from digest.errors import ExtractError
from digest.extract import decode_html, extract, extract_html
from digest.extract.css import css_string
from digest.models import Article, Corrections, EntryHints, Page
from tests.support import FIXTURES

CASES = FIXTURES / "extract"


def read(
    name: str,
    url: str,
    *,
    hints: EntryHints | None = None,
    corrections: Corrections | None = None,
) -> Article:
    return extract_html((CASES / name).read_bytes(), url, hints=hints, corrections=corrections)


def _field(article: Article, name: str) -> object:
    value = getattr(article, name)
    if name == "published":
        return value.isoformat() if value else None
    return list(value) if name == "paragraphs" else value


@pytest.mark.parametrize("case", sorted(p.stem for p in CASES.glob("*.json")))
def test_extraction_case(case: str) -> None:
    spec = json.loads((CASES / f"{case}.json").read_text(encoding="utf-8"))
    fix = spec.get("corrections", {})
    corrections = Corrections(
        fix.get("headline", ""),
        fix.get("standfirst", ""),
        fix.get("body", ""),
        tuple(fix.get("drop", ())),
    )
    article = read(f"{case}.html", spec["url"], corrections=corrections)
    expected = spec["expected"]
    assert expected, "a case names at least one expected field"
    assert {name: _field(article, name) for name in expected} == expected
    assert article.lead == (article.paragraphs[0] if article.paragraphs else "")


def test_meta_charset_wins_over_a_wrong_header_charset() -> None:
    body = (CASES / "latin1_meta_only.html").read_bytes()
    text = decode_html(body, "text/html; charset=utf-8")
    assert "Käsereien im Allgäu" in text
    article = extract_html(body, "https://bergblatt.example/k", content_type="text/html")
    assert article.language == "de"
    assert "«Wer will heute schon für 2.100 Euro" in article.paragraphs[1]


def test_decode_html_charset_order() -> None:
    assert decode_html("é".encode("utf-8-sig")) == "é"
    assert decode_html("<p>é</p>".encode("cp1252"), "text/html; charset=windows-1252") == "<p>é</p>"
    # No declaration at all: UTF-8, with stray windows-1252 bytes still readable.
    assert decode_html("<p>café “quoted”</p>".encode()) == "<p>café “quoted”</p>"
    assert decode_html(b"<p>caf\xe9 \x93quoted\x94</p>") == "<p>café “quoted”</p>"
    # A header charset is honoured, unless it is a server's Latin-1 default over UTF-8.
    assert decode_html("<p>café</p>".encode("cp1252"), "text/html; charset=iso-8859-1") == (
        "<p>café</p>"
    )
    assert decode_html("<p>café</p>".encode(), "text/html; charset=ISO-8859-1") == "<p>café</p>"


@pytest.mark.parametrize(
    "body",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"GIF89a\x01\x00", b"<html>\x00\x00\x00</html>"],
)
def test_binary_content_is_refused_with_a_sentence(body: bytes) -> None:
    with pytest.raises(ExtractError, match=r"^https://example\.org/photo: .*binary"):
        extract_html(body, "https://example.org/photo")


def test_image_content_type_is_refused() -> None:
    with pytest.raises(ExtractError, match="not an HTML page"):
        decode_html(b"not really", "image/jpeg")


def test_page_without_headline_or_text_raises_naming_the_url() -> None:
    with pytest.raises(ExtractError, match=r"https://example\.org/empty"):
        extract_html("<html><body><div></div></body></html>", "https://example.org/empty")


CANONICAL_PAGE = """<html><head><link rel="canonical" href="{href}"></head>
<body><h1>Title here</h1>
<p>Some body text that is long enough to count as a paragraph.</p></body></html>"""


@pytest.mark.parametrize(
    ("page_url", "href", "expected"),
    [
        # Same site (www. ignored): the canonical wins, tracking parameters dropped.
        (
            "https://www.example.org/a?utm_source=x",
            "https://example.org/news/a?utm_medium=y&id=3",
            "https://example.org/news/a?id=3",
        ),
        # Relative canonical resolves against the page.
        ("https://example.org/a?page=2", "/news/a", "https://example.org/news/a"),
        # Another site's canonical (syndication) is ignored.
        ("https://example.org/a", "https://other.example/a", "https://example.org/a"),
        # A local demo page carries its public canonical.
        ("file:///tmp/demo/a.html", "https://example.org/news/a", "https://example.org/news/a"),
        # No canonical: the page URL itself, in canonical form.
        ("HTTPS://Example.org:443/a#top", "", "https://example.org/a"),
    ],
)
def test_canonical_url_rules(page_url: str, href: str, expected: str) -> None:
    html = (
        CANONICAL_PAGE.format(href=href)
        if href
        else CANONICAL_PAGE.replace('<link rel="canonical" href="{href}">', "")
    )
    assert extract_html(html, page_url).url == expected


def test_og_url_is_used_when_there_is_no_canonical_link() -> None:
    html = CANONICAL_PAGE.replace(
        '<link rel="canonical" href="{href}">',
        '<meta property="og:url" content="https://example.org/news/b">',
    )
    assert extract_html(html, "https://example.org/b?x=1").url == "https://example.org/news/b"


def test_hints_fill_only_the_fields_the_page_lacks() -> None:
    hints = EntryHints(
        title="Feed title",
        summary="<p>Feed summary with <b>markup</b> &amp; an entity.</p>",
        image="https://cdn.example.org/feed.jpg",
        published=datetime(2025, 2, 1, 8, 0, tzinfo=UTC),
        section="Opinion",
    )
    bare = (
        "<html><body><div><p>Only a paragraph of text, written in plain words, sits on this "
        "page.</p></div></body></html>"
    )
    article = extract_html(bare, "https://example.org/bare", hints=hints)
    assert article.headline == "Feed title"
    assert article.standfirst == "Feed summary with markup & an entity."
    assert article.image == "https://cdn.example.org/feed.jpg"
    assert article.published == hints.published
    assert article.section == "Opinion"

    full = read("jsonld_only.html", "https://coastal-times.example/e/seals", hints=hints)
    assert full.headline == "Harbour seals return to the estuary"
    assert full.section == "Nature"
    assert full.image == "https://cdn.coastal-times.example/seals.jpg"
    assert full.published == datetime(2025, 8, 30, 6, 45, tzinfo=UTC)


def test_extract_reads_a_page_value_with_its_hints() -> None:
    path = CASES / "no_standfirst.html"
    page = Page(
        url="https://pedal-notes.example/rainy",
        final_url="https://pedal-notes.example/2025/rainy",
        body=path.read_bytes(),
        content_type="text/html; charset=utf-8",
        hints=EntryHints(section="Diary"),
    )
    article = extract(page)
    assert article.url == "https://pedal-notes.example/2025/rainy"
    assert article.section == "Diary"
    assert article.language == "fr"


def test_deeply_nested_and_huge_pages_do_not_blow_up() -> None:
    deep = "<html><body>" + "<div>" * 50_000 + "<p>Deep text.</p>" + "</div>" * 50_000
    article = extract_html(deep + "<h1>Deep</h1></body></html>", "https://example.org/deep")
    assert article.headline == "Deep"
    para = "<p>" + "Words, many words, " * 20 + "</p>"
    huge = (
        "<html><body><h1>Huge</h1><div class='article-body'>" + para * 5000 + "</div></body></html>"
    )
    article = extract_html(huge, "https://example.org/huge")
    assert len(article.paragraphs) == 5000


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("By Ana Ruiz · 3 May 2025", "Ana Ruiz"),
        ("Posted by Tom Beck in Kraków", "Tom Beck"),
        ("Analysis by Lee Park, Senior Editor", "Lee Park"),
        ("Ana Ruiz November 09, 2026", "Ana Ruiz"),
        ("By Ana Ruiz and Tom Beck | Updated 10:42", "Ana Ruiz and Tom Beck"),
    ],
)
def test_byline_keeps_the_names_only(line: str, name: str) -> None:
    html = (
        f'<html><body><h1>A headline</h1><div class="byline">{line}</div><div class="story">'
        "<p>A paragraph of body text long enough to be taken for the lead.</p></div></body></html>"
    )
    assert extract_html(html, "https://example.org/b").byline == name


@pytest.mark.parametrize(
    "body",
    [
        "<span>" * 60_000 + "x" + "</span>" * 60_000,
        "<font>" * 60_000 + "x",
        "<aside>" * 60_000 + "x",
        "<select>" + "<option>x" * 60_000,
        "<p>" + "<span><img src=a>" * 10_000 + "x",
        '<script type="application/ld+json">' + "[" * 50_000 + "]" * 50_000 + "</script>",
    ],
    ids=["spans", "fonts", "asides", "options", "image-spans", "json-ld"],
)
def test_hostile_nesting_is_defused_quickly(body: str) -> None:
    html = f"<html><body><h1>Hostile</h1>{body}</body></html>"
    start = time.perf_counter()
    assert extract_html(html, "https://example.org/hostile").headline == "Hostile"
    assert time.perf_counter() - start < 5.0  # quadratic handling takes minutes


SAVED_PAGE = """<html><head><title>Westvale Allotments - Windbreaks that work on a windy hill</title>
</head><body><div class="content"><p>A hedge of hazel and hawthorn along the western edge has
done more for our beans than any amount of feeding.</p></div></body></html>"""


def test_cli_reads_a_saved_page_as_if_fetched_from_its_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "saved.html"
    page.write_text(SAVED_PAGE, encoding="utf-8")
    url = "https://www.westvale.example/notes/windbreaks?utm_source=mail"
    assert main(["extract", str(page), "--url", url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["url"] == "https://www.westvale.example/notes/windbreaks"
    assert data["headline"] == "Windbreaks that work on a windy hill"  # the host names the site
    assert main(["extract", str(page), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["url"] == page.as_uri()
    assert data["headline"] == "Westvale Allotments - Windbreaks that work on a windy hill"


def test_cli_url_option_is_only_for_a_local_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["extract", "https://example.org/a", "--url", "https://example.org/b"]) == 2
    assert "--url" in capsys.readouterr().err


@pytest.mark.parametrize("value", ['a"b', "a\\b", "a\nb\r\tc", "a']b[", "x y", "ü\x7f", "\x00"])
def test_page_values_reach_a_selector_only_as_escaped_css_strings(value: str) -> None:
    tree = LexborHTMLParser(f'<div class="{escape(value)}">found</div>')
    div = tree.css_first("div")
    assert div is not None
    real = div.attributes.get("class") or ""
    node = tree.css_first(f"[class={css_string(real)}]")
    assert node is not None and node.text() == "found"


def test_an_image_or_canonical_that_is_no_url_costs_only_itself() -> None:
    page = (
        b"<html><head><title>Tide tables rewritten</title>"
        b'<link rel="canonical" href="http://[broken/x">'
        b'<meta property="og:image" content="https://img.example:99999/a.jpg"></head>'
        b"<body><article><h1>Tide tables rewritten</h1><p>The harbour office printed new tide "
        b"tables this week after a survey found the old ones an hour out.</p></article></body></html>"
    )
    article = extract_html(page, "https://harbour.example/tides")
    assert article.url == "https://harbour.example/tides"
    assert article.image is None
    assert article.lead.startswith("The harbour office printed")
