"""HTML section/listing pages, for sites whose feeds are poor or missing.

With a CSS ``selector`` the links it matches (or the links inside what it matches)
are the articles. Without one, links are kept when they stay on the same site and
their path looks like an article: a dated path (``/2024/05/...``), a long hyphenated
slug, or a numeric id; navigation (tags, authors, pagination, account pages) and files
(images, PDFs, feeds) are not.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node
from selectolax.lexbor import SelectolaxError

from ..errors import SourceError
from ..models import EntryHints
from ..urls import canonical_url, join_url, same_site
from .feeds import Entry, Listing, looks_binary

_NAV_SEGMENTS = frozenset(
    {
        "tag", "tags", "topic", "topics", "category", "categories", "author", "authors",
        "page", "search", "login", "signin", "sign-in", "register", "subscribe", "account",
        "about", "about-us", "contact", "privacy", "privacy-policy", "terms", "cookies",
        "feed", "rss", "newsletter", "newsletters", "donate", "shop", "events", "jobs",
        "careers", "advertise", "help", "faq", "cdn-cgi", "wp-login.php", "wp-admin",
    }
)  # fmt: skip
_FILE_EXT = re.compile(
    r"\.(jpe?g|png|gif|webp|svg|pdf|zip|mp[34]|xml|rss|json|css|js|ico|txt)$", re.I
)
_DATED = re.compile(r"/(19|20)\d{2}/(0?[1-9]|1[0-2])(/|$)|/(19|20)\d{2}-\d{2}-\d{2}")
_ID = re.compile(r"\d{4,}")


def looks_like_article(link: str, page: str) -> bool:
    """True when ``link`` is on ``page``'s site and its path looks like an article."""
    try:
        parts = urlsplit(link)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https", "file"):
        return False
    if parts.scheme == "file":
        if urlsplit(page).scheme != "file":
            return False
    elif not same_site(link, page):
        return False
    if canonical_url(link) == canonical_url(page):
        return False
    path = parts.path
    segments = [s for s in path.split("/") if s]
    if not segments or _FILE_EXT.search(path):
        return False
    if any(s.lower() in _NAV_SEGMENTS for s in segments):
        return False
    slug = re.sub(r"\.(html?|php|aspx?)$", "", segments[-1], flags=re.I)
    return bool(_DATED.search(path) or slug.count("-") >= 2 or _ID.search(slug))


def _text(node: Node) -> str:
    return " ".join((node.text(separator=" ") or "").split())


def parse_listing(body: bytes, url: str, selector: str | None = None) -> Listing:
    """The article links of a listing page at ``url``, in page order, each once."""
    binary = looks_binary(body)
    if binary:
        raise SourceError(url, f"is {binary}, not a listing page")
    tree = HTMLParser(body)
    base_node = tree.css_first("base[href]")
    base = join_url(url, base_node.attributes.get("href") or "") if base_node else url
    base = base or url
    if selector:
        try:
            matched = tree.css(selector)
        except (ValueError, SelectolaxError) as exc:
            raise SourceError(url, f"the selector '{selector}' is not valid CSS ({exc})") from None
        anchors: list[Node] = []
        for node in matched:
            anchors.extend([node] if node.tag == "a" else node.css("a[href]"))
    else:
        anchors = tree.css("a[href]")
    entries: dict[str, Entry] = {}
    for anchor in anchors:
        href = (anchor.attributes.get("href") or "").strip()
        if not href or href.startswith(("#", "mailto:", "javascript:", "tel:")):
            continue
        link = join_url(base, href)
        if link is None:
            continue
        if not selector and not looks_like_article(link, url):
            continue
        key = canonical_url(link)
        title = _text(anchor)
        if key in entries:
            if title and not entries[key].hints.title:  # an image link first, the headline next
                entries[key] = Entry(url=link, hints=EntryHints(title=title))
            continue
        entries[key] = Entry(url=link, hints=EntryHints(title=title))
    warnings = []
    if not entries:
        what = f"the selector '{selector}' matched" if selector else "looks like an article"
        warnings.append(f"{url}: no link on the page {what}")
    return Listing(tuple(entries.values()), tuple(warnings))
