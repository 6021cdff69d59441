"""The rendered email: structure, accessibility markers, size budget, hostile input."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import lxml.html
import pytest

from digest.errors import RenderError
from digest.models import Subscriber
from digest.personalize import MessageFactory, fill_slots
from digest.render import (
    Renderer,
    compile_mjml,
    html_size,
    keep_first,
    text_direction,
    ui_text,
)
from tests.support.email_samples import SUMMARY, config, issue, item, sample_issue

GENERIC_LINK_TEXT = {"", "here", "click here", "read more", "more", "link", "this"}


def render(tmp_path: Path, the_issue=None, **newsletter):
    cfg = config(tmp_path, **newsletter)
    return Renderer(cfg, cfg.newsletter("weekly")).render(the_issue or sample_issue(12))


def tree(html: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(html.encode("utf-8"))


def test_thirty_item_issue_fits_the_size_budget(tmp_path: Path) -> None:
    rendered = render(tmp_path, sample_issue(30))
    assert html_size(rendered) <= 80 * 1024, html_size(rendered)
    assert len(tree(rendered.html).xpath("//h3")) == 30


def test_oversized_issue_drops_lowest_priority_items_and_keeps_footer(tmp_path: Path) -> None:
    cfg = config(tmp_path, max_html_kb=40)
    full = sample_issue(30)
    kept, rendered = Renderer(cfg, cfg.newsletter("weekly")).fit(full)
    assert html_size(rendered) <= 40 * 1024
    assert 0 < len(kept.items) < 30
    # What is kept is the head of the email order: the top story and first sections.
    assert kept.items == full.items[: len(kept.items)]
    assert kept.top == full.top
    dropped = full.items[len(kept.items)]
    assert dropped.title not in rendered.html
    assert "Unsubscribe from The Harbour Letter" in rendered.html
    assert "4 Quay Lane" in rendered.html
    assert len(rendered.notes) == 1
    assert f"Dropped {30 - len(kept.items)} lowest-priority item(s)" in rendered.notes[0]
    assert dropped.title in rendered.notes[0]


def test_issue_within_budget_has_no_notes(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    small = sample_issue(5)
    kept, rendered = Renderer(cfg, cfg.newsletter("weekly")).fit(small)
    assert kept == small and rendered.notes == ()


def test_keep_first_counts_the_top_story_and_removes_empty_sections() -> None:
    full = sample_issue(10)
    assert keep_first(full, 1).sections == () and keep_first(full, 1).top == full.top
    assert keep_first(full, 4).items == full.items[:4]


def test_root_has_lang_and_dir_and_rtl_languages_get_rtl(tmp_path: Path) -> None:
    root = tree(render(tmp_path).html)
    assert root.get("lang") == "en" and root.get("dir") == "ltr"
    arabic = tree(render(tmp_path, language="ar").html)
    assert arabic.get("lang") == "ar" and arabic.get("dir") == "rtl"
    assert text_direction("he-IL") == "rtl" and text_direction("fr") == "ltr"


def test_every_table_is_presentational_and_every_image_has_alt(tmp_path: Path) -> None:
    root = tree(render(tmp_path, sample_issue(12)).html)
    tables = root.xpath("//table")
    assert tables and all(t.get("role") == "presentation" for t in tables)
    images = root.xpath("//img")
    assert len(images) == 12
    assert all(img.get("alt") is not None for img in images)


def test_headings_form_an_outline(tmp_path: Path) -> None:
    root = tree(render(tmp_path, sample_issue(12)).html)
    levels = [int(str(h.tag)[1]) for h in root.iter("h1", "h2", "h3", "h4", "h5", "h6")]
    assert levels[0] == 1 and levels.count(1) == 1
    # No level is skipped on the way down.
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))
    assert [h.text_content() for h in root.iter("h2")][:3] == [
        "In this issue",
        "Top story",
        "Americas",
    ]


def test_dark_mode_is_declared(tmp_path: Path) -> None:
    html = render(tmp_path).html
    root = tree(html)
    metas = {m.get("name"): m.get("content") for m in root.xpath("//meta[@name]")}
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    assert "@media (prefers-color-scheme: dark)" in html


def test_links_make_sense_out_of_context(tmp_path: Path) -> None:
    root = tree(render(tmp_path).html)
    texts = [" ".join(a.text_content().split()) for a in root.xpath("//a[@href]")]
    assert texts
    assert not [t for t in texts if t.lower() in GENERIC_LINK_TEXT]
    # The headline is the link to its article: no "Read more" beside it, and no text
    # hidden with CSS that clients dropping ``position`` would show.
    assert not [t for t in texts if t.startswith("Read more")]
    assert "position" not in render(tmp_path).html


def test_no_script_no_external_css_only_absolute_https_urls(tmp_path: Path) -> None:
    html = render(tmp_path).html
    root = tree(html)
    assert not root.xpath("//script") and "<script" not in html.lower()
    assert not root.xpath("//link") and "@import" not in html
    urls = [a.get("href") for a in root.xpath("//a")] + [i.get("src") for i in root.xpath("//img")]
    tokens = {token for _, token in render(tmp_path).slots}
    anchors = {f"#{i}" for i in root.xpath("//@id")}
    assert urls and all(u.startswith("https://") or u in tokens | anchors for u in urls), urls


@pytest.mark.parametrize(
    ("size", "top", "box"),
    [
        ((1200, 675), True, ("552", "310")),  # the column wide, proportional height
        ((200, 120), True, ("200", "120")),  # never upscaled
        ((600, 900), True, ("213", "320")),  # portrait: height capped
        ((1200, 675), False, ("160", "90")),  # other items: a thumbnail
        ((100, 400), False, ("30", "120")),  # a tall thumbnail is capped too
        ((None, None), True, ("552", None)),  # size unknown: CSS keeps its own size
        ((None, None), False, ("160", None)),
    ],
)
def test_images_are_sized_from_their_own_size_and_never_upscaled(
    tmp_path: Path, size: tuple[int | None, int | None], top: bool, box: tuple[str, str | None]
) -> None:
    one = item(1, image_width=size[0], image_height=size[1])
    root = tree(
        render(tmp_path, issue([item(2, image=None)], top=one) if top else issue([one])).html
    )
    (image,) = root.xpath("//img")
    assert (image.get("width"), image.get("height")) == box
    style = image.get("style")
    if box[1] is None:
        limit = "100%" if top else "160px"
        assert (
            f"width:auto;max-width:{limit};height:auto;max-height:{320 if top else 120}px" in style
        )
    else:
        assert f"width:100%;max-width:{box[0]}px;height:auto" in style


HOSTILE = [
    item(
        1,
        title='<script>alert("t")</script><b onclick="x()">Bold</b> & co',
        summary='<img src=x onerror="alert(1)"> <a href="javascript:alert(2)">click</a>',
        url="javascript:alert(3)",
        image="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",
    ),
    item(2, url="data:text/html,<script>alert(4)</script>", image="http://insecure.example/i.jpg"),
    item(3, url="/relative/path", image="//cdn.example/x.jpg", image_alt='" onerror="alert(5)'),
    item(4, title="Line one\r\nBcc: victim@example.org\r\n\r\nInjected", summary="ok"),
]


def test_hostile_article_text_is_escaped_or_dropped(tmp_path: Path) -> None:
    rendered = render(tmp_path, issue(HOSTILE))
    root = tree(rendered.html)
    assert not root.xpath("//script")
    handlers = [
        (el.tag, name) for el in root.iter() for name in el.attrib if name.lower().startswith("on")
    ]
    assert handlers == []
    hrefs = [a.get("href") for a in root.xpath("//a")]
    srcs = [i.get("src") for i in root.xpath("//img")]
    assert not [u for u in hrefs + srcs if re.match(r"\s*(javascript|data|http):", u or "", re.I)]
    assert not [u for u in hrefs + srcs if u.startswith("/")]
    # Dropped URLs take their image and link with them; the title is text, escaped.
    assert srcs == ["https://media.harbour.example/2026/11/story-04-photo-1200x675.jpg"]
    assert '<script>alert("t")</script>' in root.text_content()
    assert "&lt;script&gt;" in rendered.html
    # In the text part a payload is inert text; only the links matter there.
    links = [line for line in rendered.text.splitlines() if re.search(r"^(Read more: )?\S+:", line)]
    assert not [line for line in links if re.search(r"(javascript|data):", line)]
    assert "Read more: https://www.harbour.example/climate/2026/11/story-04" in links


def test_crlf_in_headlines_never_reaches_a_header(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    renderer = Renderer(cfg, cfg.newsletter("weekly"))
    rendered = renderer.render(issue(HOSTILE[3:]))
    assert "\r" not in rendered.subject and "\n" not in rendered.subject
    factory = MessageFactory(
        rendered,
        sender="The Harbour Letter <letters@harbour.example>",
        list_id="<weekly.harbour.example>",
        links=lambda s: {
            "unsubscribe_url": "https://u.example/u",
            "preferences_url": "https://u.example/p",
        },
        message_key="weekly.7",
        date=datetime(2026, 11, 23, tzinfo=UTC),
    )
    message = message_from_bytes(
        factory.build(Subscriber(1, "reader@example.org", "Ann")).data, policy=policy.default
    )
    assert message["Bcc"] is None
    assert message["Subject"] == "Line one Bcc: victim@example.org Injected"


def test_plain_text_is_wrapped_and_lists_every_link(tmp_path: Path) -> None:
    long_url = "https://www.harbour.example/" + "very-long-path-segment/" * 6 + "story"
    the_issue = issue([item(1), item(2, url=long_url), item(3, title="x" * 120)])
    rendered = render(tmp_path, the_issue)
    lines = rendered.text.splitlines()
    too_long = [line for line in lines if len(line) > 78]
    # Only a link line or an unbreakable word may pass 78 columns.
    assert too_long == [f"Read more: {long_url}", "x" * 120], too_long
    for one in the_issue.items:
        assert f"Read more: {one.url}" in lines
    tokens = dict(rendered.slots)
    assert tokens["unsubscribe_url"] in rendered.text and tokens["preferences_url"] in rendered.text
    assert "4 Quay Lane" in rendered.text
    assert SUMMARY.split(". ")[0] in " ".join(rendered.text.split())


def test_slots_are_filled_per_recipient_without_rerendering(tmp_path: Path) -> None:
    rendered = render(tmp_path)
    html = fill_slots(
        rendered.html,
        rendered,
        {
            "greeting": "Hi Ann,",
            "unsubscribe_url": "https://u.example/1",
            "preferences_url": "https://p.example/1",
        },
    )
    assert "Hi Ann," in html and 'href="https://u.example/1"' in html
    assert not [token for _, token in rendered.slots if token in html]


@pytest.mark.parametrize("count", [1, 30])
def test_render_is_deterministic(tmp_path: Path, count: int) -> None:
    assert render(tmp_path, sample_issue(count)) == render(tmp_path, sample_issue(count))


def test_preheader_is_hidden_and_cut_at_a_word(tmp_path: Path) -> None:
    rendered = render(tmp_path, sample_issue(12))
    assert len(rendered.preheader) <= 141 and rendered.preheader.endswith("…")
    # The subject shows the top headline; the preview line goes on from there.
    assert rendered.subject.startswith("Harbour cranes in Gdańsk")
    assert rendered.preheader.startswith("A mountain village votes")
    assert " · " in rendered.preheader
    root = tree(rendered.html)
    hidden = root.xpath("//div[contains(@style, 'display:none')]")[0]
    assert hidden.text_content().strip().startswith(rendered.preheader)
    short = render(tmp_path, issue([item(1, title="Short"), item(2, title="Other")]))
    assert (short.subject, short.preheader) == ("Short", "Other")
    configured = render(tmp_path, sample_issue(3), preheader="Three stories\nthis week")
    assert configured.preheader == "Three stories this week"


@pytest.mark.parametrize(
    ("language", "words", "day", "greeting"),
    [
        ("en", "Read more", "23 November 2026", "Hi Ann,"),
        ("fr-CA", "Lire la suite", "23 novembre 2026", "Bonjour Ann,"),
        ("de", "Weiterlesen", "23. November 2026", "Hallo Ann,"),
        ("es", "Leer más", "23 de noviembre de 2026", "Hola, Ann:"),
    ],
)
def test_fixed_words_follow_the_newsletter_language(
    tmp_path: Path, language: str, words: str, day: str, greeting: str
) -> None:
    rendered = render(tmp_path, sample_issue(3), language=language)
    assert f"{words}: https://" in rendered.text
    assert day in rendered.html and day in rendered.text
    assert ui_text(language).greet(" Ann ") == greeting
    assert tree(rendered.html).get("lang") == language


def test_mjml_text_content_passes_through_as_written() -> None:
    source = (
        "<mjml><mj-head><mj-attributes><mj-text color='#111111' /></mj-attributes></mj-head>"
        "<mj-body><mj-section><mj-column><mj-text>\n    <p a='1'>One &amp; two</p>\n"
        "    <br></mj-text><mj-text><pre>  keep\n    this</pre></mj-text>"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    html = compile_mjml(source)
    assert "<p a='1'>One &amp; two</p>\n<br>" in html  # not re-serialised, dedented
    assert "<pre>  keep\n    this</pre>" in html  # preformatted text untouched
    assert "color:#111111" in html


def test_a_template_mjml_cannot_read_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="does not compile"):
        compile_mjml("<mjml><mj-head></mj-head></mjml>")


def test_subject_is_the_top_headline_within_60_characters(tmp_path: Path) -> None:
    rendered = render(tmp_path, sample_issue(12))
    assert len(rendered.subject) <= 61 and rendered.subject.endswith("…")
    assert "Harbour Letter" not in rendered.subject  # the From name says that already
    assert sample_issue(12).items[0].title.startswith(rendered.subject[:-1])
    configured = render(tmp_path, sample_issue(3), subject="{{ title }} #{{ number }}")
    assert configured.subject == "The Harbour Letter #7"
    # With a subject that shows no headline, the preview line starts with the top one.
    assert configured.preheader.startswith("Harbour cranes in Gdańsk")


def test_in_this_issue_lists_every_item_with_an_anchor(tmp_path: Path) -> None:
    root = tree(render(tmp_path, sample_issue(12)).html)
    entries = root.xpath("//li/a")
    assert [a.text_content() for a in entries] == [i.title for i in sample_issue(12).items]
    for entry in entries:
        (target,) = root.xpath(f"//*[@id='{entry.get('href')[1:]}']")
        assert target.xpath(".//h3")[0].text_content() == entry.text_content()
    assert len(root.xpath("//a[@href='#top']")) == len(sample_issue(12).sections)
    assert root.xpath("//*[@id='top']")[0].tag == "h1"
    assert not tree(render(tmp_path, issue([item(1)])).html).xpath("//li")


def test_plain_text_separates_each_headline_from_its_summary(tmp_path: Path) -> None:
    text = render(tmp_path, sample_issue(3)).text
    # A blank line between a (wrapped) headline and the summary that follows it.
    assert "(0)\n\nPort officials say" in text
    assert all(len(line) <= 78 or "://" in line for line in text.splitlines())
