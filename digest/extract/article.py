"""Extraction of one page: parse once, read the metadata, drop what never shows, find the body."""

from __future__ import annotations

import re
from html import escape
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from digest.errors import ExtractError
from digest.models import Article, Corrections, EntryHints, Page
from digest.urls import canonical_url, join_url

from .body import body_paragraphs, prose_heading
from .css import css_string
from .decode import MAX_DEPTH, decode_html, defuse_nesting
from .fields import (
    descriptions,
    featured_image,
    read_byline,
    read_dek,
    read_published,
    read_section,
    resolve_url,
    split_standfirst,
)
from .headline import around, read_headline
from .image import declared_size
from .meta import ld_caption, ld_image, ld_text, read_meta
from .paragraphs import HEADLINE_MARK, paragraph_nodes
from .prose import DROP_TAGS, drop, is_prose, without_caption
from .text import BREAK, block_text, clean, clean_markup, match_key, same_text


def extract(page: Page) -> Article:
    """Extract the article from a fetched page (see ``extract_html``)."""
    return extract_html(
        page.body,
        page.final_url or page.url,
        hints=page.hints,
        content_type=page.content_type,
        corrections=page.corrections,
    )


def extract_html(
    html: str | bytes,
    url: str,
    *,
    hints: EntryHints | None = None,
    content_type: str = "",
    corrections: Corrections | None = None,
) -> Article:
    """Extract headline, standfirst, lead, body and metadata from one page.

    ``url`` is the page's own address (after redirects); ``hints`` (from a feed) fill
    only the fields the page lacks; what ``corrections`` (a source's own selectors)
    name wins over the heuristics, and a selector matching nothing is ignored here
    (``css.unmatched`` reports it). Raises ``ExtractError`` naming ``url`` when the
    page is not text, or has neither a headline nor any body text. No input makes it
    raise anything else: a failure inside the parser is an ``ExtractError`` too, with
    the cause chained.
    """
    try:
        return _extract_html(
            html, url, hints or EntryHints(), content_type, corrections or Corrections()
        )
    except ExtractError:
        raise
    except Exception as exc:  # hostile markup reaching a library: still the page's fault
        raise ExtractError(
            f"{url}: the page could not be parsed ({type(exc).__name__}: {exc}); "
            "it is skipped. If it is a normal article page, please report it."
        ) from exc


def _extract_html(
    html: str | bytes, url: str, hints: EntryHints, content_type: str, corrections: Corrections
) -> Article:
    if isinstance(html, bytes):
        try:
            html = decode_html(html, content_type)
        except ExtractError as exc:
            raise ExtractError(f"{url}: {exc}") from None
    tree = LexborHTMLParser(defuse_nesting(html))
    meta = read_meta(tree)
    props, ld = meta.props, meta.ld

    # Whatever never shows as text goes first, so nothing below can pick it up.
    declared_image = (
        ld_image(ld.get("image"))
        or (
            props.get("og:image") or props.get("og:image:url") or props.get("twitter:image") or ""
        ).strip()
    )
    declared_alt = clean_markup(props.get("og:image:alt") or props.get("twitter:image:alt"))
    # The article's own picture when the page declares none; else the declared
    # picture's alt text from its <img>, when the page shows it.
    featured = None if declared_image else featured_image(tree)
    if declared_image and not declared_alt:
        # A page's value goes into a selector only as an escaped CSS string.
        value = css_string(declared_image)
        shown = tree.css_first(f"img[src={value}], img[data-src={value}]")
        declared_alt = clean(shown.attributes.get("alt")) if shown is not None else ""
    # The picture and its declared size are read before any <img> goes with its block.
    image, image_alt = featured or (declared_image, declared_alt)
    image = image or hints.image or ""
    size = declared_size(tree, props, ld.get("image"), image)
    drop(tree.css(DROP_TAGS))
    drop(_asides(tree))
    drop(
        [
            n
            for n in tree.css("[class*=caption], [class*=credit]")
            if n.tag not in ("html", "body", "main", "article")
        ]
    )
    drop(_outermost([n for selector in corrections.drop for n in tree.css(selector)]))
    for br in tree.css("br"):
        br.replace_with(BREAK)
    body = tree.body
    if body is None:
        raise ExtractError(f"{url}: the page has no body; it is not an article page.")

    headline_node = body.css_first(corrections.headline) if corrections.headline else None
    if headline_node is not None:
        headline = block_text(headline_node)
    else:
        headline, headline_node = read_headline(body, meta, urlsplit(url).hostname or "")
    headline = headline or clean_markup(hints.title)
    # Deks and kickers sit by the headline; looking only there is faster and keeps
    # out the teasers of other articles that use the same class names.
    near = around(headline_node, 5) if headline_node is not None else body
    dek_node = body.css_first(corrections.standfirst) if corrections.standfirst else None
    if dek_node is not None:
        dek = block_text(dek_node)
    else:
        dek, dek_node = read_dek(near, meta, headline, headline_node)
    section = read_section(near, meta, headline) or clean_markup(hints.section)
    byline = read_byline(body, meta)
    published = read_published(body, meta) or hints.published

    # Now the body: the dek and headline blocks go so they cannot pass for paragraphs;
    # a mark keeps the headline's place, as prose after it opens the article.
    shown = headline_node if headline_node is not None else _shown(body, headline)
    if shown is not None:
        _mark_headline(shown)
    drop(_outermost([n for n in (headline_node, dek_node) if n is not None]))
    # A <header> holding the site's menu is the page's header, however many paragraphs
    # its mega menu has. An intro box in a header is the article's opening: it stays. A
    # block classed as a subheading is a heading, whatever its tag.
    for node in body.css("h1, h2, h3, h4, h5, h6, header, div[class*=subheading i]"):
        if len(node.css("p")) < 3 or (
            node.tag == "header" and node.css_first("[class*=menu i]") is not None
        ):
            if text := prose_heading(node, headline):
                # An intro set in large type: it goes back as the paragraph it is.
                para = LexborHTMLParser(f"<p>{escape(text)}</p>").css_first("p")
                if para is not None and node.parent is not None:
                    node.insert_before(para)
            elif (
                node.tag == "header"
                and node.parent is not None
                and node.css_first("[class*=menu i]") is None
            ):
                _keep_intro(node)
            node.decompose()
    headline_key = match_key(headline)
    paragraphs = [
        without_caption(p)
        for p in _corrected_body(body, corrections.body)
        or body_paragraphs(body, descriptions(meta, hints))
        if len(p) > 2 * len(headline) + 20 or match_key(p) != headline_key
    ]
    # The caption the page declares for its picture (JSON-LD), printed under it, is no
    # paragraph. (Not the alt text: some platforms fill it with the article's intro.)
    caption = clean_markup(ld_caption(ld.get("image")))
    if len(caption) >= 40:
        paragraphs = [p for p in paragraphs if not same_text(p, caption)]
    # Date lines and stray captions before the first sentence are not the lead.
    first = next((i for i, p in enumerate(paragraphs) if _reads_as_paragraph(p)), 0)
    paragraphs = paragraphs[first:]
    standfirst, paragraphs = split_standfirst(meta, dek, hints, paragraphs, headline_key)
    if not headline and not paragraphs:
        raise ExtractError(f"{url}: found neither a headline nor any article text on the page.")

    lang = (meta.lang or props.get("og:locale", "") or ld_text(ld.get("inLanguage"))).strip()
    article_url = resolve_url(meta, url)
    return Article(
        url=canonical_url(article_url),
        headline=headline,
        standfirst=standfirst,
        lead=paragraphs[0] if paragraphs else "",
        paragraphs=tuple(paragraphs),
        image=join_url(article_url, image) if image else None,
        image_alt=image_alt,
        image_width=size[0] if size else None,
        image_height=size[1] if size else None,
        section=section,
        published=published,
        byline=byline,
        language=re.split(r"[-_]", lang, maxsplit=1)[0].lower() if lang else "",
    )


_MARK_NODE = LexborHTMLParser(f"<p {HEADLINE_MARK}></p>").css_first("p")
assert _MARK_NODE is not None  # parsed from a literal: always there
_MARK: LexborNode = _MARK_NODE


def _shown(body: LexborNode, headline: str) -> LexborNode | None:
    """The heading that shows ``headline`` when it was read from the declarations."""
    key = match_key(headline)
    if not key:
        return None
    return next((h for h in body.css("h1, h2") if match_key(block_text(h)) == key), None)


def _mark_headline(node: LexborNode) -> None:
    """Leave an empty ``<p>`` marked ``HEADLINE_MARK`` after the headline.

    After its heading or ``<header>`` when it sits in one, since those go before the
    body scan.
    """
    anchor = node
    parent = node.parent
    for _ in range(4):
        if parent is None or parent.tag in ("body", "html"):
            break
        if parent.tag in ("header", "h1", "h2", "h3", "h4", "h5", "h6"):
            anchor = parent
        parent = parent.parent
    if anchor.parent is not None:
        anchor.insert_after(_MARK)


def _keep_intro(header: LexborNode) -> None:
    """Put the paragraphs of an intro box in ``header`` after it (and after the
    headline's mark there), as the article's opening: the header goes, its intro not."""
    anchor = header
    following = header.next
    while following is not None and not following.is_element_node:
        following = following.next
    if following is not None and HEADLINE_MARK in following.attributes:
        anchor = following
    texts: list[str] = []
    seen: set[int] = set()
    for intro in header.css("[class*=intro i]"):
        for para in intro.css("p"):
            text = block_text(para)
            if para.mem_id not in seen and len(text.split()) >= 12:
                seen.add(para.mem_id)
                texts.append(text)
    for text in reversed(texts):  # each goes right after the anchor: last first
        kept = LexborHTMLParser(f"<p>{escape(text)}</p>").css_first("p")
        if kept is not None:
            anchor.insert_after(kept)


#: How many of a page's ``<aside>`` blocks may be kept as one left unclosed around the article.
_ASIDES_WEIGHED = 20


def _asides(tree: LexborHTMLParser) -> list[LexborNode]:
    """The ``<aside>`` blocks, but for one left unclosed around the article.

    A parser closes an unclosed ``<aside>`` only where its parent ends, so the rest of
    the page falls inside it: one that holds most of the page's paragraphs (at least
    five) is kept.
    """
    asides = tree.css("aside")
    if not asides:
        return []
    most = max(5, len(tree.css("p")) // 2 + 1)
    # Counting reads each aside's whole subtree: only the first ones (in document order,
    # so the outermost of a nest) are weighed, or a page of a thousand nested asides
    # takes seconds.
    return [a for n, a in enumerate(asides) if n >= _ASIDES_WEIGHED or len(a.css("p")) < most]


def _corrected_body(body: LexborNode, selector: str) -> list[str]:
    """The prose paragraphs inside every element ``selector`` matches, in order."""
    if not selector:
        return []
    return [
        para.text
        for node in _outermost(body.css(selector))
        for para in paragraph_nodes(node)
        if para.text and is_prose(para.text)
    ]


_SENTENCE_CLOSE = re.compile(r"[.!?…:][\"'”’»)\]]*$")


def _reads_as_paragraph(text: str) -> bool:
    """A sentence or more of prose, not a date line or a label."""
    words = len(text.split())
    return words >= 25 or (words >= 3 and _SENTENCE_CLOSE.search(text) is not None)


def _outermost(nodes: list[LexborNode]) -> list[LexborNode]:
    """The nodes not inside another node of the list, in document order."""
    chosen = {n.mem_id for n in nodes}
    out = []
    for node in nodes:
        parent = node.parent
        inside = False
        steps = 0
        while parent is not None and steps < MAX_DEPTH * 2:
            if parent.mem_id in chosen:
                inside = True
                break
            parent = parent.parent
            steps += 1
        if not inside:
            out.append(node)
    return out
