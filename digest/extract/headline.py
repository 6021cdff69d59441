"""The article's headline: the ``<h1>`` that matches a declared title, without the site name."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborNode

from .meta import Meta, ld_text
from .text import clean, clean_markup, match_key

_TITLE_SEPARATORS = re.compile(r"\s+(?:\||–|—|-|::|·|•|»|/)\s+")


def strip_site_name(title: str, site: str, host: str) -> str:
    """``"Headline | Site name"`` -> ``"Headline"`` (also ``"Site name: Headline"``)."""
    cuts = list(_TITLE_SEPARATORS.finditer(title))
    if not cuts:
        return title
    bare_host = host.removeprefix("www.")
    site_keys = {match_key(site), match_key(bare_host), match_key(bare_host.split(".")[0])} - {""}

    def is_site(part: str) -> bool:
        k = match_key(part)
        return bool(k) and any(k == s or s in k or (len(k) > 3 and k in s) for s in site_keys)

    start, end = 0, len(title)
    # Trailing segments: the site name, or short labels after a longer headline.
    for cut in reversed(cuts):
        tail = title[cut.end() : end]
        head = title[start : cut.start()]
        if is_site(tail) or (not site_keys and len(tail.split()) <= 3 and len(tail) < len(head)):
            end = cut.start()
        else:
            break
    first = next((c for c in cuts if c.end() <= end), None)
    if first is not None and is_site(title[start : first.start()]):
        start = first.end()
    return title[start:end].strip() or title


def read_headline(body: LexborNode, meta: Meta, host: str) -> tuple[str, LexborNode | None]:
    """The article's own headline, and its element when it is shown as an ``<h1>``.

    The ``<h1>`` that matches a declared title (JSON-LD, Open Graph, ``<title>``)
    wins; else the declared headline; a title only ever loses its site name.
    """
    props, ld = meta.props, meta.ld
    declared = [
        ld_text(ld.get("headline")),
        clean_markup(props.get("og:title")),
        clean_markup(props.get("twitter:title")),
        meta.title,
    ]
    declared = [d for d in declared if d]
    site = clean_markup(props.get("og:site_name"))
    h1s = [(n, clean(n.text(deep=True))) for n in body.css("h1")]
    h1s = [(n, t) for n, t in h1s if t]
    for node, h1 in h1s:
        k = match_key(h1)
        # Most of a declared title, not a word of it (a logo's site name in an <h1>).
        if len(k) > 3 and any(
            k in match_key(d) and 2 * len(k) >= len(match_key(d)) for d in declared
        ):
            return (strip_site_name(h1, site, host) if h1 == meta.title else h1), node
    if declared and declared[0] != meta.title:
        return strip_site_name(declared[0], site, host), None
    title = strip_site_name(meta.title, site, host) if meta.title else ""
    if len(h1s) == 1:
        k = match_key(h1s[0][1])
        if not (title and k in match_key(meta.title) and k not in match_key(title)):
            return h1s[0][1], h1s[0][0]
    return title, None


def around(node: LexborNode, levels: int) -> LexborNode:
    """The ancestor ``levels`` up from ``node``, ``<body>`` at most."""
    for _ in range(levels):
        parent = node.parent
        if parent is None or parent.tag == "html":
            break
        node = parent
        if node.tag == "body":
            break
    return node
