"""The fields around the body: standfirst, section, byline, publication date, picture, URL."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from digest.dates import parse_date
from digest.models import EntryHints
from digest.urls import join_url, same_site

from .meta import Meta, ld_names, ld_text
from .prose import attr_tokens, is_prose
from .text import block_text, clean, clean_markup, is_truncated, match_key, same_text, truncated_of

_DEK_SELECTOR = (
    ".dek, .standfirst, .subtitle, .sub-title, .subheadline, .sub-headline, .subhead, "
    ".article-dek, .article-summary, .article__dek, .article__standfirst, .article-subtitle, "
    ".post-excerpt, .entry-subtitle, .c-entry-summary, .summary, .deck, .excerpt, .lede-text, "
    ".headline-summary, .widget__subheadline, .gh-article-excerpt, .article-excerpt, "
    ".post-subtitle, [itemprop=description], [itemprop=alternativeHeadline], h2.subtitle, "
    # The same in other languages: French chapo/chapeau, German Vorspann, Spanish
    # entradilla/sumario/bajada, Italian sommario. An "intro" class is not one: a
    # summary or intro box opens the body instead.
    "[class*=chapo i], [class*=chapeau i], [class*=vorspann i], [class*=entradilla i], "
    "[class*=sumario i], [class*=bajada i], [class*=sommario i]"
)
# Where a page names its author, most specific first.
_BYLINE_SELECTORS = (
    "[rel=author]",
    "[itemprop=author] [itemprop=name], [itemprop=author]",
    ".author-name, .author__name, .byline__name, .byline-name, .author, .field--name-uid",
    ".byline, [class*=byline], [class*=author], [class*=autor]",
)
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_BYLINE_TAIL = re.compile(
    r"\s*(?:[·|•—–]|\s-\s|\bon\s|\bin\s|\bat\s|\bupdated\b|\bpublished\b|"
    r"\d{1,2}[./]\d{1,2}[./]\d{2,4}|\d{4}-\d{2}-\d{2}|"
    rf"{_MONTHS}\s+\d|\d{{1,2}}\s+{_MONTHS}\s+\d{{4}}).*$",
    re.I,
)
_BYLINE_HEAD = re.compile(r"^(?:.{0,40}?\bby\b\s*:?\s*|(?:von|par|por|door|av)\s+)", re.I)
_ROLE = re.compile(
    r"\b(?:editor|correspondent|reporter|writer|staff|contributor|columnist|bureau|"
    r"news|agency|press|desk)\b",
    re.I,
)


def byline_name(text: str) -> str:
    """The author names in a byline line: ``"By Ana Ruiz · 3 May 2025"`` -> ``"Ana Ruiz"``."""
    text = _BYLINE_HEAD.sub("", text.strip(), count=1)
    text = _BYLINE_TAIL.sub("", text).strip(" ,;:/")
    parts = [p.strip() for p in re.split(r",\s*", text) if p.strip()]
    names: list[str] = []
    for part in parts:
        if names and (_ROLE.search(part) or len(part.split()) < 2):
            break  # a role or a place after the names
        names.append(part)
    name = ", ".join(names)
    if not name or len(name.split()) > 8 or any(c.isdigit() for c in name):
        return ""
    return name


_SECTION_SELECTOR = (
    ".kicker, .eyebrow, .section-label, .article-section, .post-category, .category, "
    ".rubric, .widget__section, .article__section, .section-name, [itemprop=articleSection], "
    ".cat-links a, [rel~=category], .gh-article-tag, .post-tag-primary"
)


_LAZY_SRC = ("data-src", "data-lazy-src", "data-original", "data-url", "src")


def featured_image(tree: LexborHTMLParser) -> tuple[str, str] | None:
    """The article's own picture when the page declares none: ``(url, alt)``.

    Lazy-loading pages keep the real address in ``data-src`` and a placeholder in
    ``src``; ``data:`` placeholders are skipped.
    """
    for node in tree.css(
        "article img, [itemprop=articleBody] img, .wp-post-image, main img, [class*=featured] img"
    ):
        attrs = node.attributes
        for name in _LAZY_SRC:
            value = (attrs.get(name) or "").strip()
            if value and not value.startswith("data:"):
                return value, clean(attrs.get("alt"))
        srcset = (attrs.get("data-srcset") or attrs.get("srcset") or "").strip()
        if srcset and not srcset.startswith("data:"):
            return srcset.split()[0], clean(attrs.get("alt"))
    return None


def read_dek(
    body: LexborNode, meta: Meta, headline: str, headline_node: LexborNode | None
) -> tuple[str, LexborNode | None]:
    """The visible standfirst under the headline, and its element, if the page shows one.

    A block marked up as a dek counts; so does an unmarked short block right after
    the headline when the page's own complete description says the same thing and
    no body paragraph follows it directly (then it would be the lead).
    """
    for node in body.css(_DEK_SELECTOR):
        candidate = block_text(node)
        if 20 <= len(candidate) <= 600 and match_key(candidate) != match_key(headline):
            return candidate, node
    if headline_node is None:
        return "", None
    described = {
        match_key(d)
        for d in (
            ld_text(meta.ld.get("description")),
            clean_markup(meta.props.get("og:description")),
            clean_markup(meta.props.get("description")),
        )
        if d and not is_truncated(d)
    }
    sibling = headline_node.next
    for _ in range(6):
        if sibling is None or not described:
            break
        if sibling.is_element_node:
            candidate = clean(sibling.text(deep=True))
            if (
                candidate
                and (sibling.tag == "p" or sibling.css_first("p") is None)
                and len(candidate.split()) <= 60
                and match_key(candidate) in described
            ):
                after = sibling.next
                while after is not None and (
                    not after.is_element_node
                    or (after.tag == "p" and not is_prose(clean(after.text(deep=True))))
                ):
                    after = after.next
                if after is not None and after.tag != "p":
                    return candidate, sibling
                break
        sibling = sibling.next
    return "", None


_HOSTLIKE = re.compile(r"[\w-]+(?:\.[\w-]+)+")  # "gizmodo.com" is no section


def read_section(body: LexborNode, meta: Meta, headline: str) -> str:
    """The site section: declared, else a visible kicker or category, else the breadcrumb."""
    section = clean_markup(meta.props.get("article:section")) or ld_text(
        meta.ld.get("articleSection")
    )
    if section and not _HOSTLIKE.fullmatch(section):
        return section
    for node in body.css(_SECTION_SELECTOR):
        label = clean(node.text(deep=True))
        if 0 < len(label.split()) <= 6:
            return label.split("|")[-1].strip()  # "Analysis | Europe" -> "Europe"
    crumbs = [c for c in meta.breadcrumb if match_key(c) != match_key(headline)]
    return crumbs[-1] if len(crumbs) >= 2 else ""


def read_byline(body: LexborNode, meta: Meta) -> str:
    """The author names: JSON-LD, then ``<meta name=author>``, then the visible byline."""
    names = filter(None, map(byline_name, ld_names(meta.ld.get("author"))))
    byline = ", ".join(dict.fromkeys(names))
    if byline:
        return byline
    author = clean_markup(meta.props.get("author") or meta.props.get("article:author"))
    if author and "://" not in author and (byline := byline_name(author)):
        return byline
    for selector in _BYLINE_SELECTORS:
        for node in body.css(selector):
            if in_comments(node):
                continue
            if byline := byline_name(clean(node.text(deep=True))):
                return byline
    return ""


def in_comments(node: LexborNode | None) -> bool:
    """True inside a form or a comments block (a commenter's name is no byline)."""
    for _ in range(12):
        if node is None or node.tag == "body":
            return False
        if node.tag in ("form", "label") or "comment" in attr_tokens(node).lower():
            return True
        node = node.parent
    return False


_DATE_PROPS = (
    "article:published_time",
    "og:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "date",
    "dc.date",
    "dc.date.issued",
    "sailthru.date",
    "parsely-pub-date",
)


def read_published(body: LexborNode, meta: Meta) -> datetime | None:
    """Publication time, timezone-aware: JSON-LD, then ``<meta>``, then ``<time>``."""
    for value in (meta.ld.get("datePublished"), *map(meta.props.get, _DATE_PROPS)):
        if isinstance(value, str) and (published := parse_date(value)):
            return published
    node = body.css_first("time[datetime]")
    return parse_date(node.attributes.get("datetime") or "") if node is not None else None


def descriptions(meta: Meta, hints: EntryHints) -> tuple[str, ...]:
    """The summaries the page declares (JSON-LD, Open Graph, ``<meta>``), then the feed's."""
    found = (
        ld_text(meta.ld.get("description")),
        clean_markup(meta.props.get("og:description")),
        clean_markup(meta.props.get("description")),
        clean_markup(meta.props.get("twitter:description")),
        clean_markup(hints.summary),
    )
    return tuple(d for d in found if d)


def split_standfirst(
    meta: Meta, dek: str, hints: EntryHints, paragraphs: list[str], headline_key: str
) -> tuple[str, list[str]]:
    """The standfirst, and the paragraphs without a repeat of it.

    The visible dek, else the declared description, else the feed's summary; the
    complete text when another candidate is a truncated copy of it. A dek printed
    again as the first paragraph is dropped from the body; a description that is
    only the lead (whole or truncated), or the headline again, is no standfirst.
    """
    candidates = [dek, *descriptions(meta, hints)]
    candidates = [c for c in candidates if c and match_key(c) != headline_key]
    standfirst = candidates[0] if candidates else ""
    for other in candidates[1:]:
        if truncated_of(standfirst, other):
            standfirst = other
    if paragraphs and standfirst and same_text(standfirst, paragraphs[0]):
        if dek and standfirst == dek:
            paragraphs = paragraphs[1:]
        else:
            standfirst = ""
    if standfirst and paragraphs and truncated_of(standfirst, paragraphs[0]):
        standfirst = ""
    return standfirst, paragraphs


def resolve_url(meta: Meta, url: str) -> str:
    """The page's canonical URL when it is on the same site (or the page is a local
    file, whose canonical is its public address); otherwise the page URL."""
    canonical = meta.canonical or (meta.props.get("og:url") or "").strip()
    if canonical:
        # A canonical that is no URL (``http://[``) is ignored like an off-site one.
        resolved = join_url(url, canonical)
        if (
            resolved
            and urlsplit(resolved).scheme in ("http", "https")
            and (same_site(resolved, url) or urlsplit(url).scheme == "file")
        ):
            return resolved
    return url
