"""Extraction: headline, standfirst, lead and metadata from pages in many publishing styles."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from digest.errors import ExtractError
from digest.extract import decode_html, extract, extract_html
from digest.models import EntryHints, Page
from tests.support import FIXTURES

PAGES = FIXTURES / "pages"


def read(name: str, url: str | None = None, **kwargs: object):
    path = PAGES / name
    return extract_html(path.read_bytes(), url or path.resolve().as_uri(), **kwargs)


# One row per publishing style: (fixture, page URL, headline, standfirst, lead).
STYLES = [
    (
        "rebelmouse_magazine.html",
        "https://meridian-review.example/europe/lisbon-tram-fares?utm_source=feed",
        "Why Lisbon’s tram fares became a national argument",
        "A small price rise on a beloved line has turned into a test of how Portugal pays "
        "for its cities.",
        "When the city council raised the single fare on the number 28 tram by forty cents, "
        "nobody at the town hall expected a fortnight of front pages, a petition with ninety "
        "thousand names and a parliamentary question.",
    ),
    (
        "wordpress_dropcap.html",
        "https://northern-notebook.example/2025/01/orkney-ferry/",
        "Three winters on the Orkney ferry",
        "A deckhand’s account of the crossings that keep an island community supplied when "
        "the weather turns.",
        "Three winters ago I signed on as a deckhand on the morning boat, thinking I would stay "
        "a season and move south with the money.",
    ),
    (
        "newswire_dateline.html",
        "https://www.northwire.example/business/nordic-grid-reserve-2025-11-18/",
        "Nordic grid operators agree winter reserve plan",
        "",
        "STOCKHOLM, Nov 18 (Northwire) — Grid operators from four Nordic countries agreed on "
        "Tuesday to pool part of their emergency power reserves this winter, a move they said "
        "would cut the risk of rolling blackouts during cold spells.",
    ),
    (
        "substack_subscribe.html",
        "https://priyagrows.substack.example/p/the-spreadsheet-that-ran-my-allotment",
        "The spreadsheet that ran my allotment",
        "What two years of logging every seed taught me about planning, and about giving up "
        "on plans.",
        "It started with a single column for sowing dates and ended, two summers later, with "
        "forty-one tabs, a colour code nobody else could read and the best tomato harvest on "
        "our row.",
    ),
    (
        "ghost_excerpt.html",
        "https://lab-notes.example/teaching-a-robot-to-fold-laundry/",
        "Teaching a robot to fold laundry",
        "Towels are easy. Fitted sheets are a research problem.",
        "Our lab spent eight months teaching a two-armed robot to fold whatever came out of the "
        "dryer, and the hardest part was not the folding but deciding what kind of object it "
        "was holding.",
    ),
    (
        "jsonld_only.html",
        "https://coastal-times.example/environment/harbour-seals",
        "Harbour seals return to the estuary",
        "Volunteers counted forty-six pups this summer, the most since records began in 1998.",
        "Volunteers who spent the summer counting seals from the sea wall recorded forty-six "
        "pups on the sandbanks below the old ferry pier, more than double the number a decade "
        "ago.",
    ),
    (
        "latin1_meta_only.html",
        "https://bergblatt.example/allgaeu/kaesereien",
        "Käsereien im Allgäu suchen Nachwuchs",
        "Immer weniger junge Leute wollen früh aufstehen, um Milch zu Käse zu machen: ein "
        "Besuch in Oberstaufen.",
        "Um halb fünf brennt in der Sennerei am Ortsrand schon Licht, und Josef Bächle prüft "
        "mit dem Daumen, ob der Bruch fest genug für die Formen ist; seit vierzig Jahren macht "
        "er das jeden Morgen.",
    ),
    (
        "no_standfirst.html",
        "https://pedal-notes.example/2025/11/rainy-commute",
        "Notes from a rainy bike commute",
        "",
        "The first thing you learn about cycling to work in November is that waterproof "
        "trousers are a promise, not a guarantee, and the second is that every driver believes "
        "you chose this.",
    ),
]


@pytest.mark.parametrize(
    ("name", "url", "headline", "standfirst", "lead"), STYLES, ids=[s[0] for s in STYLES]
)
def test_reads_headline_standfirst_and_lead_in_each_publishing_style(
    name: str, url: str, headline: str, standfirst: str, lead: str
) -> None:
    article = read(name, url)
    assert article.headline == headline
    assert article.standfirst == standfirst
    assert article.lead == lead
    assert article.paragraphs[0] == lead


def test_magazine_page_drops_credits_teasers_and_newsletter_box() -> None:
    article = read("rebelmouse_magazine.html", "https://meridian-review.example/x")
    assert article.section == "Europe"
    assert article.byline == "Inês Carvalho"
    assert article.image == "https://meridian-review.example/media-library/tram-28.jpg?id=4411"
    assert article.image_alt == "A yellow tram climbs a narrow street"
    assert article.published == datetime(2025, 10, 3, 7, 15, tzinfo=timezone(timedelta(hours=1)))
    assert article.language == "en"
    assert article.paragraphs == (
        article.lead,
        "The line is both a tourist postcard and a commuter route, and the two uses pull the "
        "price in opposite directions.",
        "Economists at the University of Lisbon say the council is right about the costs but "
        "wrong about who should pay them.",
    )
    body = " ".join(article.paragraphs)
    assert "SCRIPT TEXT" not in body and "Photo:" not in body and "Sign up" not in body


def test_wordpress_byline_paragraph_is_the_byline_not_the_lead() -> None:
    article = read("wordpress_dropcap.html")
    assert article.byline == "Morag Linklater"
    assert article.published == datetime(2025, 1, 14, 18, 2, 11, tzinfo=UTC)
    assert article.language == "en"


def test_newswire_metadata_and_sign_off() -> None:
    article = read("newswire_dateline.html", "https://www.northwire.example/b/")
    assert article.section == "Business"
    assert article.byline == "Karin Dahl"
    assert article.published == datetime(2025, 11, 18, 10, 42, tzinfo=UTC)
    assert "Advertisement" not in article.paragraphs


def test_ghost_standfirst_repeated_as_first_paragraph_is_dropped_from_the_body() -> None:
    article = read("ghost_excerpt.html")
    assert "Towels are easy. Fitted sheets are a research problem." not in article.paragraphs
    assert all("mid-failure" not in p for p in article.paragraphs)


def test_json_ld_supplies_metadata_when_the_markup_has_none() -> None:
    article = read("jsonld_only.html", "https://coastal-times.example/environment/seals")
    assert article.section == "Nature"
    assert article.byline == "Ana Lindqvist, Joe Pratt"
    assert article.image == "https://cdn.coastal-times.example/seals.jpg"
    assert article.published == datetime(2025, 8, 30, 6, 45, tzinfo=UTC)  # naive means UTC
    assert article.language == "en"


def test_meta_charset_wins_over_a_wrong_header_charset() -> None:
    body = (PAGES / "latin1_meta_only.html").read_bytes()
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


STANDFIRST_PAGE = """<html><head>
<meta property="og:description" content="{og}">
<meta name="description" content="{meta}">
</head><body><h1>Quiet harbours</h1><div class="article-body">
<p>Fishing boats in the old harbour now outnumber the yachts again,
for the first time since the marina opened in the nineties.</p>
</div></body></html>"""


def test_standfirst_takes_the_complete_text_over_a_truncated_copy() -> None:
    complete = "How a small port won back its working fleet, one mooring at a time."
    html = STANDFIRST_PAGE.format(
        og="How a small port won back its working fleet, one…", meta=complete
    )
    assert extract_html(html, "https://example.org/a").standfirst == complete
    html = STANDFIRST_PAGE.format(
        og="How a small port won back its working fleet...", meta=complete
    )
    assert extract_html(html, "https://example.org/a").standfirst == complete


def test_standfirst_is_empty_when_the_description_is_only_the_lead() -> None:
    lead = (
        "Fishing boats in the old harbour now outnumber the yachts again, for the first time "
        "since the marina opened in the nineties."
    )
    html = STANDFIRST_PAGE.format(og=lead[:60] + "…", meta=lead)
    article = extract_html(html, "https://example.org/a")
    assert article.standfirst == ""
    assert article.lead == lead


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
    path = PAGES / "no_standfirst.html"
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


HOSTILE = """<html><head><title>Hostile | Example</title>
<style>p::before { content: "STYLE TEXT" }</style></head><body>
<script>document.write(
"<p>SCRIPT TEXT that is quite long and has commas, many, many, many.</p>")</script>
<template><p>TEMPLATE TEXT that is long enough to be taken for a real paragraph.</p></template>
<noscript><p>NOSCRIPT TEXT asking you to enable JavaScript to read this.</p></noscript>
<div hidden><p>HIDDEN TEXT that nobody sees but long enough to look like prose.</p></div>
<h1>Hostile markup</h1>
<div class="content"><p>The only&nbsp;real paragraph, with an&nbsp;entity &amp; a
<a href="#">link</a> and &ldquo;quotes&rdquo; &mdash; kept.</p>
<p>Second   paragraph
 with  folded
 whitespace and a narrow&#8239;no-break space.</p></div>
</body></html>"""


def test_scripts_styles_templates_and_hidden_blocks_never_leak() -> None:
    article = extract_html(HOSTILE, "https://example.org/h")
    text = " ".join(article.paragraphs) + article.headline + article.standfirst
    for leak in ("SCRIPT", "STYLE", "TEMPLATE", "NOSCRIPT", "HIDDEN"):
        assert leak not in text
    assert article.headline == "Hostile markup"


def test_entities_decoded_and_no_break_spaces_become_spaces() -> None:
    article = extract_html(HOSTILE, "https://example.org/h")
    assert article.lead == ("The only real paragraph, with an entity & a link and “quotes” — kept.")
    assert article.paragraphs[1] == (
        "Second paragraph with folded whitespace and a narrow no-break space."
    )


def test_title_site_name_suffix_is_stripped_when_only_the_title_is_there() -> None:
    html = (
        "<html><head><title>Low tide at the causeway | Tidewatch Weekly</title>"
        '<meta property="og:site_name" content="Tidewatch Weekly"></head><body>'
        "<div><p>The causeway floods twice a day and the timetable is posted at both ends.</p>"
        "</div></body></html>"
    )
    assert extract_html(html, "https://tidewatch.example/a").headline == "Low tide at the causeway"
    bare = html.replace('<meta property="og:site_name" content="Tidewatch Weekly">', "")
    assert extract_html(bare, "https://tidewatch.example/a").headline == "Low tide at the causeway"


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


def test_latin1_page_byline_names_only() -> None:
    assert read("latin1_meta_only.html", "https://bergblatt.example/k").byline == "Anna Huber"


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


def test_lazy_loaded_featured_image_is_used_when_no_image_is_declared() -> None:
    html = """<html><head><link rel="canonical" href="https://example.org/news/dams"></head>
<body><article><h1>Dams in the peat</h1>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="/media/dam.jpg" alt="A dam">
<div class="entry-content"><p>Timber dams now block most drainage canals in the district.</p></div>
</article></body></html>"""
    article = extract_html(html, "https://example.org/news/dams")
    assert article.image == "https://example.org/media/dam.jpg"
    assert article.image_alt == "A dam"


def test_headline_shown_only_in_a_generic_block_is_not_the_lead() -> None:
    html = """<html><head><meta property="og:title" content="Salt flats and water rights"></head>
<body><div class="x1"><div class="x2">Salt flats and water rights</div>
<div class="x3"><p>Brine pumped from beneath the crust feeds ponds that take a year and a half to
dry, and the communities around the basin want a say in how much of it is taken.</p>
<p>The companies say the water they use is not the water people drink.</p></div></div>
</body></html>"""
    article = extract_html(html, "https://example.org/salt")
    assert article.headline == "Salt flats and water rights"
    assert article.lead.startswith("Brine pumped from beneath the crust")


def test_lines_broken_with_br_are_paragraphs_of_their_own() -> None:
    html = """<html><body><h1>Ferry notes</h1><div class="entry-content">
<p>The first crossing of the day leaves before dawn and is mostly lorries.<br>
The second is the one the schoolchildren take, and it is never on time.</p>
<p>Nobody complains about the third.</p></div></body></html>"""
    article = extract_html(html, "https://example.org/ferry")
    assert article.paragraphs == (
        "The first crossing of the day leaves before dawn and is mostly lorries.",
        "The second is the one the schoolchildren take, and it is never on time.",
        "Nobody complains about the third.",
    )


def test_text_written_straight_into_blocks_is_read_in_reading_order() -> None:
    html = """<html><body><h1>Keyboards</h1><div class="article"><div class="content">
The new laptop brings back a keyboard with scissor switches, which reviewers had asked for,
for years, and the company says the rest of the range will follow next year.<br><br>
The display stays the same size, although a larger one had been rumoured for months.
<p>A paragraph inside, about the battery, which lasts longer than on the old model.</p>
Prices start where they did last year, and the base model gets twice the storage.
</div></div></body></html>"""
    article = extract_html(html, "https://example.org/k")
    assert [p.split()[1] for p in article.paragraphs] == ["new", "display", "paragraph", "start"]


def test_body_cut_into_chunks_with_one_class_is_read_whole() -> None:
    chunk = '<div class="grid"><div class="body__chunk">{}</div></div>'
    opening = "The opening paragraph sets the scene, names the people, and says what changed."
    more = "It carries on the story, with quotes, figures, and the context that matters."
    html = (
        "<html><body><h1>Chunks</h1><div class='chunks'>"
        + chunk.format(f"<p>{opening} {opening}</p>" + f"<p>{more}</p>" * 3)
        + '<div class="ad-slot">Advertisement</div>'
        + chunk.format(f"<p>{more} {more} {more}</p>" * 8)
        + "</div></body></html>"
    )
    article = extract_html(html, "https://example.org/chunks")
    assert article.lead == f"{opening} {opening}"
    assert len(article.paragraphs) == 12


def test_cookie_banner_and_stats_table_do_not_become_the_lead() -> None:
    row = "<tr><td>7 tackles, 3 assists (10 combined). 1 sack, 2 TFL, 1 QB hit.</td></tr>"
    html = f"""<html><body>
<div class="privacy-consent"><p>We use cookies and similar technologies to improve your
experience, show personalised content and measure traffic on our site and others.</p></div>
<h1>Snap counts</h1><div class="entry-content">
<p>Below, we go through the snap counts and the numbers on defence for the week eleven game.</p>
<table class="data-table">{row * 12}</table></div></body></html>"""
    article = extract_html(html, "https://example.org/snaps")
    assert article.lead.startswith("Below, we go through the snap counts")


def test_hover_card_inside_the_lead_is_dropped_but_the_name_stays() -> None:
    html = """<html><body><h1>Campaign</h1><div class="field-item">
<p><span style="font-weight: 400;">Governor <span class="people"><a href="/p/ana">Ana Ruiz</a>
<span class="people-block"><span><img src="/ana.jpg" alt=""><a href="/p/ana">Ana Maria Ruiz</a>
<a href="/n/1">Governor defends the campaign slogan</a> <a href="/n/2">Budget passes after a
long night</a> <a href="/p/ana">MORE</a></span></span></span> is defending the state’s new
road safety campaign, which critics call confusing.</span></p>
<p>The slogan drew jokes online on Monday, which the governor said proved it was working.</p>
</div></body></html>"""
    article = extract_html(html, "https://example.org/campaign")
    assert article.lead == (
        "Governor Ana Ruiz is defending the state’s new road safety campaign, which critics "
        "call confusing."
    )


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


def test_date_line_and_caption_before_the_first_sentence_are_not_the_lead() -> None:
    html = """<html><body><h1>Laptop review</h1><div class="article-text">
<p>Monday, March 3, 2025, 04:05 pm PT (07:05 pm ET)</p>
<p>The new laptop on a desk next to the old one, seen from above</p>
<p>Welcome to the new laptop. It looks familiar, but the keyboard alone moves it forward.</p>
<p>We spent a week with it and the battery is the other news.</p></div></body></html>"""
    article = extract_html(html, "https://example.org/review")
    assert article.lead.startswith("Welcome to the new laptop.")
    assert article.paragraphs[0] == article.lead


def test_metadata_that_is_not_what_it_claims_is_ignored() -> None:
    html = """<html><head><title>Swim results</title>
<meta name="description" content="Swim results">
<meta property="article:section" content="swimnews.example.org"></head>
<body><h1>Swim results</h1><div class="crumbs"><a class="category" href="/s">Sport</a></div>
<div class="entry-content">
<p>The relay team broke the school record by two seconds on Saturday.</p></div>
<div id="comments"><form>
<p class="comment-form-author"><label>Name (required)</label></p></form></div>
</body></html>"""
    article = extract_html(html, "https://swimnews.example.org/results")
    assert article.standfirst == ""  # the description only repeats the headline
    assert article.section == "Sport"  # a host name is no section
    assert article.byline == ""  # a comment form's label is no byline


def test_a_logo_in_an_h1_is_not_the_headline() -> None:
    html = """<html><head><title>Planting garlic in November | Allotment Diary</title></head>
<body><h1 class="logo">Allotment Diary</h1><h2 class="post-title">Planting garlic in November</h2>
<div class="post-body"><p>Garlic wants a cold spell to split into cloves, so it goes in before
the first frost, pointed end up, a hand's width apart.</p></div></body></html>"""
    article = extract_html(html, "https://allotment-diary.example/garlic")
    assert article.headline == "Planting garlic in November"


def test_a_teaser_elsewhere_on_the_page_is_not_the_standfirst() -> None:
    html = """<html><body>
<div class="layout"><div class="main"><div class="col"><article><header>
<h1>Harbour dues rise again</h1></header>
<div class="story-body"><p>The port authority raised mooring fees for the third year running,
citing the cost of dredging the outer channel after last winter's storms.</p></div>
</article></div></div></div>
<div class="rail"><div class="promo"><div class="card"><div class="inner">
<p class="summary">A different story's summary, about ferry timetables changing next month.</p>
</div></div></div></div></body></html>"""
    article = extract_html(html, "https://example.org/dues")
    assert article.standfirst == ""
