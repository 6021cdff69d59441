"""The article's headline: the ``<h1>`` that matches a declared title, without the site name."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborNode

from .meta import Meta, ld_text
from .text import clean, clean_markup, match_key

_SITE_COLON = re.compile(r"([^:]{2,40}):\s+")
_TITLE_SEPARATORS = re.compile(r"\s+(?:\||–|—|-|::|·|•|»|/)\s+")
# Host labels that name no site ("blog.example.org" is "example").
_GENERIC_LABELS = frozenset({"www", "m", "amp", "blog", "blogs", "news", "en", "home", "web"})
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "gov", "ac", "edu"})
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z]+);", re.I)
_WORDS = re.compile(r"\w+")
_SMALL_WORDS = frozenset(
    {"the", "and", "for", "with", "from", "your", "you", "how", "what", "this"}
)


class _Site:
    """Recognises a site's own name: its declared name, its host, its host's labels."""

    def __init__(self, name: str, host: str) -> None:
        labels = host.lower().removeprefix("www.").split(".")
        keys = {match_key(name), match_key(".".join(labels))}
        if labels[0] not in _GENERIC_LABELS:
            keys.add(match_key(labels[0]))
        if len(labels) >= 2:  # the registered name: "ucdavis" of health.ucdavis.edu
            second = -3 if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL else -2
            keys.add(match_key(labels[second]))
        self.keys = keys - {""}

    def __call__(self, text: str) -> bool:
        """True when ``text`` names the site ("Antoyo's Blog", "example.org")."""
        k = match_key(text)
        return bool(k) and any(k == s or s in k or (len(k) > 3 and k in s) for s in self.keys)

    def exactly(self, text: str) -> bool:
        """True when ``text`` is the site's name and no more ("City News: ...")."""
        k = match_key(text)
        return len(k) > 3 and any(k == s or k in s for s in self.keys)


def strip_site_name(title: str, site: str, host: str) -> str:
    """``"Headline | Site name"`` -> ``"Headline"`` (also ``"Site name - Headline"`` and
    ``"Site name: Headline"``).

    Short section labels between the headline and the site name go with it
    (``"Tram line backed - Transport - Local - City News"`` -> ``"Tram line backed"``);
    without a host (a local file), short trailing labels go all the same.
    """
    is_site = _Site(site, host)
    colon = _SITE_COLON.match(title)
    if colon and is_site.exactly(colon.group(1)) and len(colon.group(1)) < len(title) - colon.end():
        title = title[colon.end() :]  # "City News: Council backs ..."
    cuts = list(_TITLE_SEPARATORS.finditer(title))
    if not cuts:
        return title
    start, end = 0, len(title)
    found = not is_site.keys
    for cut in reversed(cuts):
        tail = title[cut.end() : end]
        head = title[start : cut.start()]
        label = len(tail.split()) <= 3 and len(tail) < len(head)
        if is_site(tail) or (found and label):
            end = cut.start()
            found = True
        else:
            break
    first = next((c for c in cuts if c.end() <= end), None)
    if first is not None:
        lead, rest = title[start : first.start()], title[first.end() : end]
        if is_site(lead) and len(lead.split()) <= len(rest.split()):
            start = first.end()
    return title[start:end].strip() or title


def _words(text: str) -> set[str]:
    return {w for w in _WORDS.findall(text.lower()) if len(w) > 2 and w not in _SMALL_WORDS}


def _rewords(shown: str, declared: str) -> bool:
    """True when three quarters of the words of each are the other's (a date or a
    label added in front does not pass)."""
    want, have = _words(declared), _words(shown)
    common = len(want & have)
    return len(want) >= 3 and 4 * common >= 3 * max(len(want), len(have))


def read_headline(body: LexborNode, meta: Meta, host: str) -> tuple[str, LexborNode | None]:
    """The article's own headline, and its element when it is shown as an ``<h1>``.

    The ``<h1>`` that matches a declared title (JSON-LD, Open Graph, ``<title>``)
    wins; else the declared headline; a title only ever loses its site name. An
    ``<h1>`` that shares no word with the declared titles (without the site's name)
    is a logo, a page label or a promotion, never the headline.
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
    # Words of the declared titles without the site's name: an <h1> sharing none of
    # them is the site's logo, a page label or a promotion, not this article's headline.
    # A title that is only the site's name, or two words, says too little to judge by.
    is_site = _Site(site, host)
    titled = set().union(
        *(_words(strip_site_name(d, site, host)) for d in declared if not is_site(d))
    )
    if len(titled) < 3:
        titled = set()
    h1s = []
    for node in body.css("h1"):
        text = clean(node.text(deep=True))
        if _ENTITY.search(text):  # escaped twice by the site's templates
            text = clean_markup(text)
        if text and not (titled and not _words(text) & titled):
            h1s.append((node, text))
    for node, h1 in h1s:
        k = match_key(h1)
        # Most of a declared title, not a word of it (a logo's site name in an <h1>).
        if len(k) > 3 and any(
            k in match_key(d) and 2 * len(k) >= len(match_key(d)) for d in declared
        ):
            return (strip_site_name(h1, site, host) if h1 == meta.title else h1), node
    if declared and declared[0] != meta.title:
        chosen = strip_site_name(declared[0], site, host)
        # The <h1> that words the declared headline a little differently ("The Best
        # ... of 2026" for "Best ... of 2026") is the headline readers see.
        for node, h1 in h1s:
            if _rewords(h1, chosen):
                return h1, node
        return chosen, None
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
