"""The email in a real browser: Debian's headless Chromium driven by Playwright.

Playwright rather than raw CDP: route interception, colour-scheme emulation, viewport
changes and screenshots are one call each, and it talks to any recent Chromium, so
the system package is enough (no ``playwright install``). Every request that is not
to loopback is aborted, so the images of ``.example`` hosts fail at once, as a
client with images blocked would show them; one image is answered by the test
itself to check that a large picture still fits the column.

Screenshots go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import html as html_lib
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from digest.personalize import fill_slots
from digest.render import Renderer
from tests.support import ROOT
from tests.support.browser import CHROMIUM, LAUNCH_ARGS, loopback_only, needs_chromium
from tests.support.caniemail import gmail_dropped_properties
from tests.support.email_samples import config, issue, item, sample_issue

ARTIFACTS = ROOT / "test-artifacts"
WIDTHS = (320, 375, 414, 600, 800)
WIDE_IMAGE = "https://media.harbour.example/wide-2400x600.png"
TALL_IMAGE = "https://media.harbour.example/tall-900x1600.png"

pytestmark = needs_chromium


def png(width: int, height: int) -> bytes:
    """A solid grey PNG of the given size (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + b"\x80\x80\x80" * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


EDGE_ITEMS = [
    item(
        0,
        title="Donaudampfschifffahrtsgesellschaftskapitänsmützenabzeichenhersteller" * 2,
        summary="See https://www.harbour.example/" + "a-very-long-unbroken-path-" * 12 + " 🚢🌊⚓",
        image=WIDE_IMAGE,
        image_width=2400,
        image_height=600,
    ),
    item(1, title="مرفأ المدينة يعمل طوال الليل", summary="السفن تنتظر في الخارج منذ أسبوع."),
    item(2, title="שער הנמל נפתח מחדש 🎉", image=None),
    item(3, title='<script>alert("x")</script> Broken image', image="https://broken.example/x.jpg"),
    item(
        4, title="An image of unknown size", image=TALL_IMAGE, image_width=None, image_height=None
    ),
]


def email_html(tmp_path: Path) -> str:
    """A 30-item issue with the edge cases above, filled in for one recipient."""
    cfg = config(tmp_path)
    base = sample_issue(30)
    edge = issue(list(EDGE_ITEMS) + list(base.items[6:]), top=base.top)
    rendered = Renderer(cfg, cfg.newsletter("weekly")).render(edge)
    values = {
        "greeting": "Hi Ann,",
        "unsubscribe_url": "https://letters.harbour.example/unsubscribe/" + "t" * 60,
        "preferences_url": "https://letters.harbour.example/preferences/" + "t" * 60,
    }
    return fill_slots(rendered.html, rendered, {k: html_lib.escape(v) for k, v in values.items()})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield instance
        instance.close()


def _route(route: Route) -> None:
    url = route.request.url
    if url in (WIDE_IMAGE, TALL_IMAGE):
        size = (2400, 600) if url == WIDE_IMAGE else (900, 1600)
        route.fulfill(status=200, content_type="image/png", body=png(*size))
    else:
        loopback_only(route)


@pytest.fixture
def open_email(browser: Browser, tmp_path: Path):
    pages = []
    content = email_html(tmp_path)

    def opener(width: int, scheme: Literal["light", "dark"] = "light") -> Page:
        page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
        page.route("**/*", _route)
        page.set_content(content, wait_until="load")
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_no_horizontal_scroll_and_images_fit_the_column(open_email, width: int) -> None:
    page = open_email(width)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"email-{width}px.png"), full_page=True)
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"{scroll}px of content in a {inner}px window"
    images = page.evaluate(
        """() => [...document.images].map(img => {
            const column = img.closest('.mj-column-per-100') || document.body;
            const box = img.getBoundingClientRect();
            return {src: img.src, width: box.width, height: box.height,
                    column: column.getBoundingClientRect().width, loaded: img.naturalWidth};
        })"""
    )
    wide = [i for i in images if i["src"] == WIDE_IMAGE]
    assert wide and wide[0]["loaded"] == 2400, "the wide test image did not load"
    too_wide = [i for i in images if i["width"] > min(i["column"], 552) + 0.5]
    assert too_wide == []
    # The top story's picture at most 320 px tall, the others thumbnails; none upscaled.
    loaded = [i for i in images if i["loaded"]]
    assert [i for i in loaded if i["height"] > 320.5 or i["width"] > i["loaded"] + 0.5] == []
    tall = [i for i in images if i["src"] == TALL_IMAGE]
    assert tall and tall[0]["loaded"] == 900 and tall[0]["height"] <= 120.5


CONTRAST_JS = """
() => {
  const parse = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const invert = c => c.map(v => 255 - v);
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode());) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.display === 'none' || style.visibility === 'hidden' || parseFloat(style.fontSize) < 2) continue;
    const fg = parse(style.color).slice(0, 3), bg = background(el);
    out.push({text: node.textContent.trim().slice(0, 40), tag: el.tagName,
              masthead: bg.join() === '18,50,90',
              ratio: ratio(fg, bg), inverted: ratio(invert(fg), invert(bg))});
  }
  // An image's alt text shows in its colour while the image is blocked or loading.
  for (const img of document.images) {
    if (!img.alt) continue;
    const fg = parse(getComputedStyle(img).color).slice(0, 3), bg = background(img.parentElement);
    out.push({text: img.alt, tag: 'IMG', masthead: false,
              ratio: ratio(fg, bg), inverted: ratio(invert(fg), invert(bg))});
  }
  return out;
}
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_is_at_least_4_5_to_1(open_email, scheme: str) -> None:
    page = open_email(375, scheme)
    if scheme == "dark":
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "email-375px-dark.png"), full_page=True)
    samples = page.evaluate(CONTRAST_JS)
    assert len(samples) > 60 and [s for s in samples if s["tag"] == "IMG"]
    low = [s for s in samples if s["ratio"] < 4.5]
    assert low == [], low[:5]


def test_dark_mode_changes_the_palette(open_email) -> None:
    colour = "getComputedStyle(document.querySelector('h3 a')).color"
    assert open_email(375, "light").evaluate(colour) != open_email(375, "dark").evaluate(colour)


def test_masthead_stays_legible_when_a_client_inverts_colours(open_email) -> None:
    masthead = [s for s in open_email(375).evaluate(CONTRAST_JS) if s["masthead"]]
    assert masthead and all(s["inverted"] >= 4.5 and s["ratio"] >= 4.5 for s in masthead)


def test_links_have_meaningful_accessible_names(open_email) -> None:
    page = open_email(600)
    names = [
        " ".join(name.split())
        for name in page.evaluate(
            "[...document.querySelectorAll('a[href]')].map(a => a.innerText || a.textContent)"
        )
    ]
    assert len(names) > 30
    assert not [n for n in names if n.lower() in {"", "read more", "here", "click here", "more"}]
    assert page.get_by_role("link", name="Unsubscribe from The Harbour Letter").count() == 1
    assert page.get_by_role("link", name="Read more", exact=True).count() == 0


def test_untrusted_title_is_text_and_nothing_runs(open_email) -> None:
    page = open_email(600)
    assert page.evaluate("document.scripts.length") == 0
    title = '<script>alert("x")</script> Broken image'
    assert page.get_by_role("heading", name=title, exact=True).count() == 1


def test_right_to_left_newsletter_holds_its_layout(browser, tmp_path: Path) -> None:
    cfg = config(tmp_path, language="ar", title="نشرة الميناء")
    rendered = Renderer(cfg, cfg.newsletter("weekly")).render(sample_issue(6))
    values = {
        "greeting": "مرحبا",
        "unsubscribe_url": "https://u.example/1",
        "preferences_url": "https://u.example/2",
    }
    page = browser.new_page(viewport={"width": 320, "height": 900})
    try:
        page.route("**/*", _route)
        page.set_content(fill_slots(rendered.html, rendered, values), wait_until="load")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "email-320px-rtl.png"), full_page=True)
        heading = page.evaluate(
            "(s => [s.direction, s.textAlign])(getComputedStyle(document.querySelector('h2')))"
        )
        assert heading == ["rtl", "right"]
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner
    finally:
        page.close()


# -- The same email as clients that drop CSS show it


def without_styles(html: str) -> str:
    """``html`` as Gmail with a non-Google account shows it: every <style> gone."""
    return re.sub(r"<style\b[^>]*>.*?</style>", "", html, flags=re.S | re.I)


def without_gmail_css(html: str) -> str:
    """``html`` with every CSS property some Gmail drops (caniemail) taken out, inline
    and in <style>."""
    names = "|".join(
        re.escape(p) for p in sorted(gmail_dropped_properties(), key=len, reverse=True)
    )
    declaration = re.compile(rf"(?<![\w-])(?:{names})\s*:[^;\"{{}}]*;?")

    def strip(match: re.Match[str]) -> str:
        return match.group(1) + declaration.sub("", match.group(2)) + match.group(3)

    html = re.sub(r'(style=")([^"]*)(")', strip, html)
    return re.sub(r"(<style\b[^>]*>)(.*?)(</style>)", strip, html, flags=re.S)


VARIANTS = {"without <style>": without_styles, "without what Gmail drops": without_gmail_css}

VISIBLE_TEXT_JS = """
() => {
  const all = [], out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode());) {
    const text = node.textContent.trim();
    if (text) all.push(text);
    if (!text || !node.parentElement.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    let rects = [...range.getClientRects()].map(r => [r.left, r.top, r.right, r.bottom]);
    // Clipped by an ancestor (overflow hidden, max-height:0...) counts as hidden.
    for (let el = node.parentElement; el && rects.length; el = el.parentElement) {
      const style = getComputedStyle(el);
      if (style.overflow === 'visible' && style.clip === 'auto') continue;
      const box = el.getBoundingClientRect();
      rects = rects.map(([l, t, r, b]) => [Math.max(l, box.left), Math.max(t, box.top),
                                          Math.min(r, box.right), Math.min(b, box.bottom)]);
    }
    if (rects.some(([l, t, r, b]) => r - l > 1 && b - t > 1)) out.push(text);
  }
  return {all: all, visible: out};
}
"""


def _load(browser: Browser, content: str, width: int) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.route("**/*", _route)
    page.set_content(content, wait_until="load")
    return page


@pytest.mark.parametrize("width", [320, 375, 600])
def test_clients_that_drop_css_show_no_overflow_and_no_hidden_text(
    browser,
    tmp_path: Path,
    width: int,
) -> None:
    content = email_html(tmp_path)
    assert "position" in gmail_dropped_properties() and "position:" not in content
    built = _load(browser, content, width)
    try:
        texts = built.evaluate(VISIBLE_TEXT_JS)
        hidden = set(texts["all"]) - set(texts["visible"])
    finally:
        built.close()
    assert hidden, "the preview text is hidden in the email as built"
    for name, variant in VARIANTS.items():
        page = _load(browser, variant(content), width)
        try:
            scroll, inner = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert scroll <= inner, f"{name}: {scroll}px of content in a {inner}px window"
            revealed = set(page.evaluate(VISIBLE_TEXT_JS)["visible"]) & hidden
            assert revealed == set(), f"{name}: hidden text shows: {sorted(revealed)[:3]}"
        finally:
            page.close()


def test_without_style_the_email_looks_as_designed(browser, tmp_path: Path) -> None:
    """Colours, sizes and the frame come from inline styles, not from <style>."""
    content = email_html(tmp_path)
    probe = """() => {
        const pick = el => { const s = getComputedStyle(el);
            return [el.tagName, s.color, s.fontSize, s.textDecorationLine, s.marginTop]; };
        return {height: document.documentElement.scrollHeight,
                frame: document.body.getBoundingClientRect().left,
                looks: [...document.querySelectorAll('h1, h2, h3, h3 a, p, li a')].map(pick)};
    }"""
    results = []
    for html in (content, without_styles(content)):
        page = _load(browser, html, 375)
        try:
            results.append(page.evaluate(probe))
        finally:
            page.close()
    built, bare = results
    assert bare["frame"] == built["frame"] == 0
    assert bare["looks"] == built["looks"]
    assert abs(bare["height"] - built["height"]) <= built["height"] * 0.02


def test_links_are_44px_tall_tap_targets_on_a_phone(open_email) -> None:
    heights = open_email(375).evaluate(
        "[...document.querySelectorAll('a[href]')].map(a => "
        "[a.innerText.trim().slice(0, 30), a.getBoundingClientRect().height])"
    )
    assert len(heights) > 60
    small = [(text, height) for text, height in heights if height < 44]
    assert small == []


def test_in_this_issue_leads_to_every_item_and_back_to_the_top(open_email) -> None:
    page = open_email(375)
    targets = page.evaluate(
        "[...document.querySelectorAll('li a[href^=\"#\"]')].map(a => a.getAttribute('href'))"
    )
    assert len(targets) == 30 and len(set(targets)) == 30
    headlines = page.evaluate(
        "[...document.querySelectorAll('li a')].map(a => "
        "document.querySelector(a.getAttribute('href')).querySelector('h3').innerText)"
    )
    assert headlines == page.evaluate(
        "[...document.querySelectorAll('li a')].map(a => a.innerText)"
    )
    page.click(f"a[href='{targets[20]}']")
    page.wait_for_function(
        f"document.querySelector('{targets[20]}').getBoundingClientRect().top < 5"
    )
    page.locator("a[href='#top']").last.click()
    page.wait_for_function(
        "Math.abs(document.querySelector('#top').getBoundingClientRect().top) < 5"
    )


@pytest.mark.parametrize(("width", "beside"), [(600, True), (375, False)])
def test_thumbnails_sit_beside_the_text_when_there_is_room(
    open_email, width: int, beside: bool
) -> None:
    boxes = open_email(width).evaluate(
        """() => [...document.querySelectorAll('[id^="item-"]')].filter(i => i.querySelector('img'))
            .map(i => [i.querySelector('img').getBoundingClientRect().toJSON(),
                       i.querySelector('h3').getBoundingClientRect().toJSON()])"""
    )
    _, (image, headline) = boxes[0], boxes[1]  # boxes[0] is the top story
    if beside:
        assert image["right"] <= headline["left"] and image["top"] < headline["bottom"]
    else:
        assert image["bottom"] <= headline["top"]
