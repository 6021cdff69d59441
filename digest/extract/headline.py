"""The article's headline: the ``<h1>`` that matches a declared title, without the site name."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborNode

from .meta import Meta, ld_text
from .text import clean, clean_markup, match_key

_SITE_COLON = re.compile(r"([^:]{2,40}):\s+")
_TITLE_SEPARATORS = re.compile(r"\s+(?:\||–|—|-|::|·|•|»|/)\s+")
# Words that make the phrase after a separator go on with the headline's sentence.
_GOES_ON = frozenset(
    {"i", "we", "you", "he", "she", "it", "they", "and", "but", "or", "so", "yet", "plus",
     "from", "with", "for", "by", "to", "in", "on", "at", "of", "as", "if", "when", "why", "how"}
)  # fmt: skip
_TAGLINE_SEPARATOR = re.compile(r"\s+(?:\||–|—|-)\s+")
# Host labels that name no site ("blog.example.org" is "example").
_GENERIC_LABELS = frozenset({"www", "m", "amp", "blog", "blogs", "news", "en", "home", "web"})
_SECOND_LEVEL = frozenset({"co", "com", "org", "net", "gov", "ac", "edu"})
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-f]+|[a-z]+);", re.I)
_WORDS = re.compile(r"\w+")
# UTF-8 read as windows-1252 or Latin-1 by the site's own templates ("Investorâ\x80\x99s",
# "â€™"): a lead byte's character and one to three continuation bytes' characters.
_CP1252_HIGH = "\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
_MOJIBAKE = re.compile(f"[\u00c2-\u00f4][\u0080-\u00bf{_CP1252_HIGH}]{{1,3}}")
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
        # "Rust Blog" of blog.rust-lang.org: every word a piece of the host name.
        self.tokens = {t for label in labels for t in label.split("-") if t}

    def _of_host(self, text: str) -> bool:
        words = set(_WORDS.findall(text.lower()))
        return bool(words) and words <= self.tokens and bool(words - _GENERIC_LABELS)

    def __call__(self, text: str) -> bool:
        """True when ``text`` names the site ("Antoyo's Blog", "example.org")."""
        k = match_key(text)
        if not k:
            return False
        return any(k == s or s in k or (len(k) > 3 and k in s) for s in self.keys) or self._of_host(
            text
        )

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
    opening, _, rest = title.partition(" ")
    if "." in opening and rest and is_site.exactly(opening):
        title = rest  # "example.org Council backs ...": a host name is the site's name
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


def mend(text: str) -> str:
    """Undo UTF-8 that the site's templates read as windows-1252 or Latin-1 (``"â€™"`` is
    ``"’"``); text without such sequences comes back unchanged."""

    def back(match: re.Match[str]) -> str:
        try:
            raw = bytes(ord(c) if ord(c) < 256 else c.encode("cp1252")[0] for c in match.group())
            return raw.decode("utf-8")
        except (UnicodeError, ValueError):
            return match.group()

    return _MOJIBAKE.sub(back, text)


def _words(text: str) -> set[str]:
    return {w for w in _WORDS.findall(text.lower()) if len(w) > 2 and w not in _SMALL_WORDS}


def _rewords(shown: str, declared: str) -> bool:
    """True when three quarters of the words of each are the other's (a date or a
    label added in front does not pass)."""
    want, have = _words(declared), _words(shown)
    common = len(want & have)
    return len(want) >= 3 and 4 * common >= 3 * max(len(want), len(have))


def read_headline(body: LexborNode, meta: Meta, host: str) -> tuple[str, LexborNode | None]:
    """The article's own headline (see ``_read_headline``), without a tagline after it."""
    headline, node = _read_headline(body, meta, host)
    return drop_tagline(headline), node


def drop_tagline(headline: str) -> str:
    """``"Best Movers in Leeds 2026 | Top 12 Companies"`` -> ``"Best Movers in Leeds 2026"``.

    A short phrase in title case after the one separator of a headline of four words or
    more is a tagline (a count, a promise, keywords), not part of the headline; a phrase
    that goes on in lower case ("- tips and tricks") or with the headline's sentence
    ("- And It Works", "- I Tried 11 Services") is.
    """
    cuts = list(_TAGLINE_SEPARATOR.finditer(headline))
    if len(cuts) != 1:
        return headline
    head, tail = headline[: cuts[0].start()], headline[cuts[0].end() :]
    words = [w for w in tail.split() if any(c.isalpha() for c in w)]
    if (
        len(head.split()) >= 4
        and 2 <= len(words) <= 4
        and all(w[0].isupper() for w in words)
        and words[0].lower() not in _GOES_ON
    ):
        return head
    return headline


def _read_headline(body: LexborNode, meta: Meta, host: str) -> tuple[str, LexborNode | None]:
    """The article's own headline, and its element when it is shown as a heading.

    The ``<h1>`` that matches a declared title (JSON-LD, Open Graph, ``<title>``)
    wins; then a heading, or a part of an ``<h1>``, that shows a declared title word
    for word ahead of the article's text; else the declared headline; a title only
    ever loses its site name. An ``<h1>`` that shares no word with the declared
    titles (without the site's name), or that is only the site's name, is a logo, a
    page label or a promotion, never the headline.
    """
    props, ld = meta.props, meta.ld
    page_title = mend(meta.title)
    declared = [
        mend(ld_text(ld.get("headline"))),
        mend(clean_markup(props.get("og:title"))),
        mend(clean_markup(props.get("twitter:title"))),
        page_title,
    ]
    declared = [d for d in declared if d]
    site = clean_markup(props.get("og:site_name"))
    # Words of the declared titles without the site's name: an <h1> sharing none of
    # them is the site's logo, a page label or a promotion, not this article's headline.
    # A title that is only the site's name, or two words, says too little to judge by.
    is_site = _Site(site, host)
    titled = set().union(
        *(
            _words(t)
            for t in (strip_site_name(d, site, host) for d in declared)
            if not is_site.exactly(t)
        )
    )
    if len(titled) < 3:
        titled = set()
    named = any(not is_site.exactly(d) for d in declared)
    h1s = []
    for node in body.css("h1"):
        text = mend(clean(node.text(deep=True)))
        if _ENTITY.search(text):  # escaped twice by the site's templates
            text = clean_markup(text)
        if not text or (titled and not _words(text) & titled):
            continue
        if named and is_site.exactly(text):  # the site's logo ("example.org")
            continue
        h1s.append((node, text))
    for node, h1 in h1s:
        k = match_key(h1)
        # Most of a declared title, not a word of it (a logo's site name in an <h1>).
        if len(k) > 3 and any(
            k in match_key(d) and 2 * len(k) >= len(match_key(d)) for d in declared
        ):
            return (strip_site_name(h1, site, host) if h1 == page_title else h1), node
    shown = _shown_title(body, h1s, {strip_site_name(d, site, host) for d in declared})
    if shown is not None:
        return shown
    if declared and declared[0] != page_title:
        chosen = strip_site_name(declared[0], site, host)
        # The <h1> that words the declared headline a little differently ("The Best
        # ... of 2026" for "Best ... of 2026") is the headline readers see.
        for node, h1 in h1s:
            if any(_rewords(h1, strip_site_name(d, site, host)) for d in declared):
                return h1, node
        return chosen, None
    title = strip_site_name(page_title, site, host) if page_title else ""
    if len(h1s) == 1:
        k = match_key(h1s[0][1])
        if not (title and k in match_key(page_title) and k not in match_key(title)):
            return h1s[0][1], h1s[0][0]
    return title, None


_LONG_PARAGRAPH = 20  # words: where the article's text has begun


def _shown_title(
    body: LexborNode, h1s: list[tuple[LexborNode, str]], titles: set[str]
) -> tuple[str, LexborNode] | None:
    """A declared title shown word for word where no ``<h1>`` shows it: as a part of an
    ``<h1>`` that adds a kicker, a source or a count ("Get the look" over "Klatch
    Coffee"), or as an ``<h2>``/``<h3>`` ahead of the article's first paragraph (the
    ``<h1>`` is then a section label or a pull quote)."""
    keys = {match_key(t): t for t in titles if len(t.split()) >= 2 and len(match_key(t)) >= 8}
    if not keys:
        return None
    for node, _ in h1s:
        for part in node.traverse():
            if part is not node and match_key(clean(part.text(deep=True))) in keys:
                return mend(clean(part.text(deep=True))), node
    for node in body.traverse():
        if node.tag == "p" and len(node.text(deep=True).split()) >= _LONG_PARAGRAPH:
            return None
        if node.tag in ("h2", "h3"):
            text = mend(clean(node.text(deep=True)))
            if match_key(text) in keys:
                return text, node
    return None


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
