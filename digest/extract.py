"""Read one article out of a fetched page: headline, standfirst, lead and body.

The page is parsed once with selectolax (lexbor). Metadata comes first from the
page's own declarations (JSON-LD, Open Graph, ``<meta>``, ``rel=canonical``), then
from visible markup; feed hints only fill what the page lacks. The body is found
with one scoring pass over paragraphs in the manner of Readability (text length and
commas credited to the parent in full and to further ancestors in shrinking shares,
class names scaling the score, link-heavy and boilerplate blocks left out), then
widened to the blocks the same body was cut into. Scripts, navigation, figures and
hidden blocks are dropped first; absurdly deep nesting is flattened before parsing.
The lead is the first body paragraph that is not a byline, caption, label or call
to action.

Every text field is clean text: tags dropped, entities decoded, no-break spaces
turned into spaces, whitespace folded; curly quotes and dashes are kept.
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html import unescape
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from digest.errors import ExtractError
from digest.models import Article, EntryHints, Page
from digest.urls import canonical_url, same_site

__all__ = ["decode_html", "extract", "extract_html"]

# --------------------------------------------------------------------------- decoding

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Magic numbers of formats that are sometimes served where a page was expected.
_BINARY_MAGIC = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"%PDF",
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"RIFF",
    b"\x00\x00\x01\x00",
)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.I)
# Per the WHATWG Encoding Standard these labels all mean windows-1252.
_AS_CP1252 = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "ascii", "us-ascii", "cp819"}


def _cp1252_fallback(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    bad = err.object[err.start : err.end]
    return bad.decode("cp1252", errors="replace"), err.end


codecs.register_error("digest-cp1252", _cp1252_fallback)


def _codec(label: str) -> str | None:
    label = label.strip().lower()
    if label in _AS_CP1252:
        return "cp1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_html(body: bytes, content_type: str = "") -> str:
    """Decode a page's bytes to text.

    The charset is taken from a byte-order mark, then the page's own ``<meta charset>``
    or ``http-equiv`` declaration (which wins over a header's default such as
    ISO-8859-1), then the ``Content-Type`` header, then UTF-8 with windows-1252 for
    any bytes that are not UTF-8. A header's ISO-8859-1 (or windows-1252) over bytes
    that are valid UTF-8 with non-ASCII text is taken for the server default it is.
    Raises ``ExtractError`` for binary content.
    """
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, errors="replace")
    head = body[:2048]
    mime = content_type.split(";", 1)[0].strip().lower()
    if (
        mime.startswith(("image/", "audio/", "video/", "font/"))
        or mime in ("application/pdf", "application/zip", "application/octet-stream")
        or head.startswith(_BINARY_MAGIC)
        or b"\x00" in head
    ):
        raise ExtractError(
            f"The content is binary ({mime or 'not text'}), not an HTML page; "
            "check that the source links to article pages."
        )
    labels = []
    m = _META_CHARSET.search(body[:8192])
    if m:
        labels.append((m.group(1).decode("ascii", "replace"), "meta"))
    m2 = _HEADER_CHARSET.search(content_type)
    if m2:
        labels.append((m2.group(1), "header"))
    for label, origin in labels:
        codec = _codec(label)
        if codec is None or codec.startswith("utf-16") or codec.startswith("utf-32"):
            continue  # a page that parsed as ASCII cannot be UTF-16; the label is wrong
        if codec == "utf-8":
            break
        if origin == "header" and codec == "cp1252" and _is_utf8(body):
            break  # a server's ISO-8859-1 default over a page that is plainly UTF-8
        return body.decode(codec, errors="replace")
    return body.decode("utf-8", errors="digest-cp1252")


def _is_utf8(body: bytes) -> bool:
    """True when ``body`` has non-ASCII bytes and all of them form valid UTF-8."""
    if body.isascii():
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------- text helpers

_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")


def _clean(text: str | None) -> str:
    """Fold whitespace (no-break spaces included) and drop invisible characters."""
    if not text:
        return ""
    return " ".join(_INVISIBLE.sub("", text).split())


_TAG = re.compile(r"<[^>]*>")
# What a <br> becomes: whitespace to _clean, and a paragraph break when doubled in a block.
_BREAK = "\u2029"
_BREAKS = re.compile(r"\u2029\s*\u2029")


def _clean_markup(text: str | None) -> str:
    """Clean text that may still carry markup or entities (meta content, feed summaries)."""
    if not text:
        return ""
    if "<" in text:
        text = _TAG.sub(" ", text)
    return _clean(unescape(text))


_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
    }
)
_WORD = re.compile(r"\w+")


def _key(text: str) -> str:
    """A comparison key: NFKC, ASCII quotes and dashes, lower case, word characters only."""
    return "".join(_WORD.findall(unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()))


def _is_truncated(text: str) -> bool:
    return text.endswith(("…", "...", "[…]", "[...]"))


def _truncated_of(short: str, full: str) -> bool:
    """True when ``short`` is ``full`` cut off and marked with an ellipsis."""
    if not _is_truncated(short):
        return False
    stem = _key(short.rstrip(".…[] "))
    return len(stem) >= 20 and _key(full).startswith(stem) and len(_key(full)) > len(stem)


def _same_text(a: str, b: str) -> bool:
    """Equal or nearly equal: same words, or one a truncated start of the other."""
    ka, kb = _key(a), _key(b)
    if not ka or not kb:
        return False
    if ka == kb:
        return True
    short, long_ = sorted((ka, kb), key=len)
    if len(short) >= 40 and long_.startswith(short[: max(40, len(short) - 8)]):
        return True
    ta, tb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    return len(ta & tb) / max(len(ta | tb), 1) >= 0.9


# --------------------------------------------------------------------------- metadata

_ARTICLE_TYPES = re.compile(r"Article|BlogPosting|Posting|Report|Story|Review", re.I)
_LD_WANTED = re.compile(r"Article|Posting|Report|Story|Review|Breadcrumb|WebPage", re.I)


@dataclass(slots=True)
class _Meta:
    """What the page declares about itself in its head."""

    props: dict[str, str]
    ld: dict
    breadcrumb: list[str]
    canonical: str
    lang: str
    title: str


def _ld_objects(data: object, out: list[dict]) -> None:
    stack = [data]
    while stack and len(out) < 200:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            out.append(item)
            graph = item.get("@graph")
            if isinstance(graph, list):
                stack.extend(reversed(graph))
            main = item.get("mainEntity")
            if isinstance(main, dict):
                stack.append(main)


def _types(obj: dict) -> str:
    t = obj.get("@type", "")
    return " ".join(t) if isinstance(t, list) else str(t)


def _read_meta(tree: LexborHTMLParser) -> _Meta:
    props: dict[str, str] = {}
    for node in tree.css("meta"):
        attrs = node.attributes
        name = (attrs.get("property") or attrs.get("name") or attrs.get("itemprop") or "").lower()
        content = attrs.get("content")
        if name and content and name not in props:
            props[name] = content
    objects: list[dict] = []
    for node in tree.css('script[type="application/ld+json"]'):
        raw = node.text(deep=True)
        if not _LD_WANTED.search(raw):
            continue  # an Organization or WebSite block: nothing to read, skip parsing it
        try:
            _ld_objects(json.loads(raw, strict=False), objects)
        except (ValueError, RecursionError):  # broken, or nested to exhaust the parser
            continue
    ld: dict = {}
    breadcrumb: list[str] = []
    for obj in objects:
        types = _types(obj)
        if not ld and _ARTICLE_TYPES.search(types):
            ld = obj
        elif "BreadcrumbList" in types and not breadcrumb:
            items = obj.get("itemListElement")
            if isinstance(items, list):
                for it in items:
                    if isinstance(it, dict):
                        name = it.get("name") or (
                            it.get("item", {}).get("name")
                            if isinstance(it.get("item"), dict)
                            else ""
                        )
                        if isinstance(name, str) and name.strip():
                            breadcrumb.append(_clean_markup(name))
    if not ld:
        ld = next((o for o in objects if "WebPage" in _types(o) and o.get("headline")), {})
    canonical = ""
    for node in tree.css("link[rel]"):
        if "canonical" in (node.attributes.get("rel") or "").lower().split():
            canonical = (node.attributes.get("href") or "").strip()
            break
    root = tree.root
    lang = (root.attributes.get("lang") or "") if root is not None else ""
    title_node = tree.css_first("title")
    title = _clean(title_node.text()) if title_node is not None else ""
    return _Meta(props, ld, breadcrumb, canonical, lang, title)


def _ld_text(value: object) -> str:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), "")
    return _clean_markup(value) if isinstance(value, str) else ""


def _ld_names(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    names = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("name", "")
        if isinstance(item, str) and item.strip() and "://" not in item:
            names.append(_clean_markup(item))
    return names


def _ld_image(value: object) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        value = value.get("url") or value.get("contentUrl") or ""
    return value.strip() if isinstance(value, str) else ""


def _parse_date(value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            m = re.match(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?", value)
            if m:
                try:
                    parsed = datetime.fromisoformat(m.group(0))
                except ValueError:
                    parsed = None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- headline

_TITLE_SEPARATORS = re.compile(r"\s+(?:\||–|—|-|::|·|•|»|/)\s+")


def _strip_site_name(title: str, site: str, host: str) -> str:
    """``"Headline | Site name"`` -> ``"Headline"`` (also ``"Site name: Headline"``)."""
    cuts = list(_TITLE_SEPARATORS.finditer(title))
    if not cuts:
        return title
    bare_host = host.removeprefix("www.")
    site_keys = {_key(site), _key(bare_host), _key(bare_host.split(".")[0])} - {""}

    def is_site(part: str) -> bool:
        k = _key(part)
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


# --------------------------------------------------------------------------- body

_DROP_TAGS = (
    "script, style, template, noscript, svg, iframe, object, embed, canvas, button, select, "
    "textarea, input, nav, aside, footer, figure, figcaption, picture, video, audio, dialog, "
    "[hidden], [aria-hidden=true]"
)
# Class or id tokens of blocks that are never article text ...
_BOILERPLATE = re.compile(
    r"comment|sidebar|side-bar|footer|related|recommend|promo|newsletter|subscri|signup|"
    r"sign-up|share|sharing|social|advert|^ads?$|^ad[-_]|[-_]ads?$|[-_]ad[-_]|dfp|sponsor|"
    r"byline|author|caption|credit|breadcrumb|^nav|menu|popup|modal|cookie|keep-?reading|"
    r"read-?more|more-?stories|outbrain|taboola|donat|toolbar|most-?popular|trending|"
    r"disclaimer|copyright|visually-hidden|sr-only|screen-reader|"
    r"inline-?(?:link|promo|related)|podcast|listen|gallery|slideshow|consent|gdpr|privacy",
    re.I,
)
# ... and tokens that are, unless the same token also names the article body.
_WEAK_BOILERPLATE = re.compile(
    r"tags|topics|teaser|right-?rail|side-?rail|banner|cta|callout|embed|audio|video|photo|"
    r"image|img|figure|timestamp|meta|kicker|eyebrow|rubric|headline|title|dek|"
    r"standfirst|summary|header|masthead",
    re.I,
)
_BODY_TOKEN = re.compile(r"body|content|text|article|story|entry|post|prose", re.I)
# Tokens that name the article body itself, whatever else they contain.
_BODY_CLASS = re.compile(
    r"(?:article|entry|post|story|body|main|rich)[-_]*(?:body|content|text)|name-+body|articlebody",
    re.I,
)
_CONTENT_HINT = re.compile(
    r"article|body|content|entry|main|post|story|text|prose|richtext|rich-text", re.I
)
_NEGATIVE_HINT = re.compile(
    r"comment|meta|footer|footnote|foot|sidebar|related|share|social|promo|sponsor|"
    r"widget|byline|author|caption|nav|menu|rail",
    re.I,
)

# Paragraph texts that are labels, bylines or calls to action, not article prose.
_NOT_PROSE = re.compile(
    r"^(?:by\s+\S|posted\s+by|written\s+by|words\s+by|photos?\s*(?:by|:)|"
    r"photograph(?:y|s)?\s*(?:by|:)|image\s*(?:by|:)|credit\s*:|illustration\s*(?:by|:)|"
    r"(?:file\s+)?photo\s*[/(]|listen to (?:this|the) (?:article|story)|advertisement|"
    r"advertising|sponsored|read more|keep reading|continue reading|related\s*:|see also|"
    r"sign up|subscribe|support (?:our|us)|donate|follow us|share (?:this|on)|sharing is caring|"
    r"click here|updated\s*:|published\s*:|last updated|this (?:article|story) (?:was|is) "
    r"(?:originally|first) published|all rights reserved|copyright|©)",
    re.I,
)
_CREDIT = re.compile(r"\((?:photo|image|picture|credit)s?(?: by)?:? [^)]*\)\.?$", re.I)
_CREDIT_LABEL = re.compile(
    r"\b(?:photo|foto|bild|image|picture|credit|illustration|photograph)s?\s*:", re.I
)
_BYLINE_START = re.compile(
    r"^\W*(?:(?i:\w+\W+){0,2}(?i:by)|[Vv]on|[Pp]ar|[Pp]or|[Dd]oor|[Aa]v)\s+[^\W\d_]"
)
_CAPTION_END = re.compile(
    r"(?:getty images|reuters|associated press|\bap\b|afp|shutterstock|epa|photo)\)?\.?$",
    re.I,
)


def _attr_tokens(node: LexborNode) -> str:
    attrs = node.attributes
    return f"{attrs.get('class') or ''} {attrs.get('id') or ''}".strip()


def _is_boilerplate_block(node: LexborNode) -> bool:
    tokens = _attr_tokens(node).split()
    if not tokens or node.tag in ("html", "body", "main", "article", "p"):
        return False
    for token in tokens:
        if _BODY_CLASS.search(token):
            continue
        if _BOILERPLATE.search(token):
            return True
        if _WEAK_BOILERPLATE.search(token) and not _BODY_TOKEN.search(token):
            return True
    return False


def _is_prose(text: str) -> bool:
    """True unless the paragraph is a label, byline, credit or call to action."""
    words = len(text.split())
    if _NOT_PROSE.match(text) and words < 40:
        return False
    if words < 40 and _CREDIT.search(text):
        return False
    if words < 30 and _CREDIT_LABEL.search(text):
        return False
    if words < 16 and _BYLINE_START.match(text):
        return False
    return not (words < 16 and _CAPTION_END.search(text))


def _drop(nodes: list[LexborNode]) -> None:
    # Innermost first, so no node is touched after an ancestor has been freed.
    for node in reversed(nodes):
        node.decompose()


@dataclass(slots=True)
class _Para:
    """A paragraph's text and the element it came from (a block may give several)."""

    node: LexborNode
    _text: str | None  # None: a list item, read only if it turns out to be in the body
    linked: int = -1  # characters inside links, when counted while reading the text

    @property
    def text(self) -> str:
        if self._text is None:
            nested = self.node.css_first("p, div, li") is not None
            self._text = "" if nested else _clean(self.node.text(deep=True))
        return self._text

    def link_density(self) -> float:
        """Share of the paragraph's text inside links."""
        if self.linked >= 0:
            return self.linked / max(len(self.text), 1)
        return _link_density(self.node, len(self.text))


_INLINE = frozenset(
    {
        *("a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i"),
        *("kbd", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time"),
        *("tt", "u", "var", "wbr", "ins", "del", "img"),
    }
)


def _inline_runs(node: LexborNode) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """Text of a block's direct text and inline children, split at nested blocks.

    Returns ``(text, characters in links)`` runs before the first nested block, and
    those after it.
    """
    before: list[str] = []
    after: list[str] = []
    runs = before
    linked: dict[int, int] = {}  # run number -> link characters, over before + after
    current: list[str] = []
    count = 0
    child = node.child
    while child is not None:
        if child.is_text_node:
            current.append(child.text_content or "")
        elif child.is_element_node:
            if child.tag in _INLINE:
                text = child.text(deep=True)
                current.append(text)
                if child.tag == "a":
                    linked[count] = linked.get(count, 0) + len(text)
                elif child.child is not None and child.child.next is not None:
                    inner = sum(len(a.text(deep=True)) for a in child.css("a"))
                    linked[count] = linked.get(count, 0) + inner
            else:
                runs.append("".join(current))
                current = []
                count += 1
                runs = after
        child = child.next
    runs.append("".join(current))

    def split(chunks: list[str], first: int) -> list[tuple[str, int]]:
        out = []
        for offset, chunk in enumerate(chunks):
            pieces = [c for c in map(_clean, _BREAKS.split(chunk)) if c]
            links = linked.get(first + offset, 0)
            total = sum(len(p) for p in pieces) or 1
            out.extend((p, links * len(p) // total) for p in pieces)
        return out

    return split(before, 0), split(after, len(before))


def _direct_text(node: LexborNode) -> int:
    """Characters of text written straight into ``node`` (not in its children)."""
    total = 0
    child = node.child
    while child is not None:
        if child.is_text_node:
            total += len((child.text_content or "").strip())
        child = child.next
    return total


def _paragraph_nodes(root: LexborNode) -> list[_Para]:
    """Paragraphs in document order: ``<p>`` elements, and text written straight into blocks.

    Text that follows a nested block inside its parent block is held back until the
    nested paragraphs have been listed, so the order stays the reading order.
    """
    paras: list[_Para] = []
    pending: list[tuple[LexborNode, list[_Para]]] = []
    for node in root.css("p, li, div, td, section, article, blockquote, dd"):
        while pending and _ancestor_in(node, {pending[-1][0].mem_id}, _MAX_DEPTH) is None:
            paras.extend(pending.pop()[1])
        tag = node.tag
        if tag == "li":
            paras.append(_Para(node, None))
        elif tag == "p":
            raw = node.text(deep=True)
            if _BREAK in raw:  # lines broken with <br> are paragraphs of their own
                lines = [t for t in map(_clean, raw.split(_BREAK)) if t]
                if len(lines) == 1:
                    paras.append(_Para(node, lines[0]))
                else:
                    share = _link_density(node, sum(map(len, lines)))
                    paras.extend(_Para(node, t, int(share * len(t))) for t in lines)
            elif text := _clean(raw):
                paras.append(_Para(node, text))
        elif _direct_text(node) >= 25:
            before, after = _inline_runs(node)
            paras.extend(_Para(node, run, links) for run, links in before if len(run) >= 25)
            later = [_Para(node, run, links) for run, links in after if len(run) >= 25]
            if later:
                pending.append((node, later))
    while pending:
        paras.extend(pending.pop()[1])
    return paras


def _link_density(node: LexborNode, length: int) -> float:
    if not length:
        return 0.0
    linked = sum(len(_clean(a.text(deep=True))) for a in node.css("a"))
    return linked / length


def _class_weight(node: LexborNode) -> float:
    """A factor for a block's score from its class and id: body-like up, aside-like down."""
    tokens = _attr_tokens(node)
    weight = 1.2 if node.tag == "article" else 1.0
    if tokens:
        if _CONTENT_HINT.search(tokens):
            weight *= 1.25
        if _NEGATIVE_HINT.search(tokens):
            weight *= 0.5
    return weight


class _Boilerplate:
    """Memoised class-name verdicts, so each element is judged once."""

    def __init__(self) -> None:
        self.cache: dict[int, bool] = {}

    def __call__(self, node: LexborNode) -> bool:
        key = node.mem_id
        verdict = self.cache.get(key)
        if verdict is None:
            verdict = self.cache[key] = _is_boilerplate_block(node)
        return verdict

    def inside(self, node: LexborNode, stop: LexborNode | None, levels: int) -> bool:
        """True when ``node`` or an ancestor below ``stop`` (at most ``levels`` up) is one."""
        stop_key = stop.mem_id if stop is not None else -1
        while node is not None and levels > 0 and node.mem_id != stop_key:
            if node.tag in ("body", "html"):
                return False
            if self(node):
                return True
            node = node.parent
            levels -= 1
        return False


_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)]?(?:\s|$)")
# A paragraph's score goes to its parent in full and to its ancestors in shrinking
# shares (Readability's weights), so a container of many short blocks can win.
_ANCESTOR_SHARES = (1.0, 1 / 2, 1 / 6, 1 / 9, 1 / 12)


def _score(
    paras: list[_Para], boilerplate: _Boilerplate
) -> tuple[dict[int, float], dict[int, LexborNode]]:
    """Content scores of the blocks holding paragraphs, keyed by ``mem_id``."""
    scores: dict[int, float] = {}
    nodes: dict[int, LexborNode] = {}
    for para in paras:
        tag = para.node.tag
        if tag == "li":
            continue  # lists join the body but never choose it
        length = len(para.text)
        if length < 25:
            continue
        if tag != "p" and (
            length < (150 if tag == "td" else 60) or not _SENTENCE_END.search(para.text)
        ):
            continue  # loose text in a block counts only when it reads as prose
        if boilerplate.inside(para.node, None, 3) or para.link_density() > 0.5:
            continue
        score = 1 + para.text.count(",") + min(length // 100, 3)
        parent = para.node.parent
        for share in _ANCESTOR_SHARES:
            if parent is None or parent.tag in ("html", "#document"):
                break
            key = parent.mem_id
            if key not in nodes:
                nodes[key] = parent
                scores[key] = 0.0
            scores[key] += score * share
            parent = parent.parent
    for key, node in nodes.items():
        scores[key] *= _class_weight(node)
    return scores, nodes


def _drop_hover_cards(body: LexborNode) -> None:
    """Drop pop-up cards inside paragraphs: a picture and a list of links in a span.

    Only the span nearest the picture is judged, so the sentence around it stays.
    """
    spans: dict[int, LexborNode] = {}
    for img in body.css("p img"):
        node = img.parent
        for _ in range(8):  # the nearest span around the picture, if it is close
            if node is None or node.tag in ("p", "body"):
                break
            if node.tag == "span":
                spans[node.mem_id] = node
                break
            node = node.parent
    for span in spans.values():
        if _direct_text(span):
            continue
        text = _clean(span.text(deep=True))
        if len(text) >= 20 and _link_density(span, len(text)) > 0.5:
            span.decompose()


def _body_paragraphs(body: LexborNode) -> list[str]:
    """The article's paragraphs, in reading order."""
    _drop_hover_cards(body)
    # Text wrapped in spans reads as text written straight into its block.
    body.unwrap_tags(["span", "font"])
    paras = _paragraph_nodes(body)
    boilerplate = _Boilerplate()
    scores, nodes = _score(paras, boilerplate)
    if not scores:  # nothing long enough to score: whatever prose the page has
        return [p.text for p in paras if p.text and _is_prose(p.text) and p.link_density() <= 0.5]
    containers = _containers(scores, nodes, boilerplate)
    within = _Within(containers)
    chosen: list[int] = []
    for index, para in enumerate(paras):
        container = within(para.node)
        if container is None or not para.text or not _is_prose(para.text):
            continue
        if boilerplate.inside(para.node, container, _MAX_DEPTH):
            continue
        limit = 0.3 if para.node.tag == "li" else 0.6
        if para.link_density() > limit:
            continue
        chosen.append(index)
    if chosen:
        chosen = _same_class(paras, chosen, containers[0], boilerplate)
        chosen[:0] = _lead_before(paras, chosen[0], containers[0], boilerplate)
    return [paras[i].text for i in chosen]


_PLAIN_CLASS = re.compile(r"[\w\s-]+")


def _containers(
    scores: dict[int, float], nodes: dict[int, LexborNode], boilerplate: _Boilerplate
) -> list[LexborNode]:
    """The blocks that hold the body: the best-scored one and its fellow blocks."""
    best_key = max(scores, key=scores.__getitem__)
    best = nodes[best_key]
    best_score = scores[best_key]
    # Walk up while an ancestor holds comparable credit: the body split over blocks.
    last = best_score
    ancestor = best.parent
    while ancestor is not None and ancestor.tag not in ("body", "html"):
        key = ancestor.mem_id
        if key in scores:
            if scores[key] < best_score / 3:
                break
            if scores[key] > last:
                best, best_key, best_score = ancestor, key, scores[key]
                break
            last = scores[key]
        ancestor = ancestor.parent
    # Paragraphs split into sibling blocks (by ads or embeds) belong to the article too.
    containers = [best]
    best_class = best.attributes.get("class") or ""
    if best.parent is not None:
        threshold = max(10.0, best_score * 0.2)
        containers = []
        child = best.parent.child
        while child is not None:
            if child.mem_id == best_key:
                containers.append(child)
            elif child.is_element_node and not boilerplate(child):
                sibling_score = scores.get(child.mem_id, 0.0)
                if sibling_score >= threshold or (
                    sibling_score > 0 and best_class and child.attributes.get("class") == best_class
                ):
                    containers.append(child)
                elif child.tag == "p":
                    text = _clean(child.text(deep=True))
                    if len(text) > 80 and _link_density(child, len(text)) < 0.25:
                        containers.append(child)
            child = child.next
    # The body cut into chunks under separate wrappers: blocks with the very class of
    # the chosen block, nearby, are chunks of the same body.
    if best_class and _PLAIN_CLASS.fullmatch(best_class) and best.tag != "p":
        keys = {c.mem_id for c in containers}
        top = best
        for _ in range(5):
            if top.parent is None or top.parent.tag in ("body", "html"):
                break
            top = top.parent
        for chunk in top.css(f'{best.tag}[class="{best_class}"]'):
            if chunk.mem_id not in keys and scores.get(chunk.mem_id, 0.0) >= best_score * 0.15:
                containers.append(chunk)
                keys.add(chunk.mem_id)
    return containers


def _region(container: LexborNode, levels: int = 3) -> set[int]:
    """``mem_id`` of the few ancestors around a body container (below ``<body>``)."""
    region: set[int] = set()
    node = container.parent
    for _ in range(levels):
        if node is None or node.tag in ("body", "html"):
            break
        region.add(node.mem_id)
        node = node.parent
    return region


def _first_class(node: LexborNode) -> str:
    classes = (node.attributes.get("class") or "").split()
    return classes[0] if classes else ""


def _same_class(
    paras: list[_Para], chosen: list[int], container: LexborNode, boilerplate: _Boilerplate
) -> list[int]:
    """Add the paragraphs near the body that carry the body paragraphs' own class.

    When most body paragraphs share a class (``zn-body__paragraph``), paragraphs with
    that class in the surrounding region are body text too, even in another block.
    """
    counts: dict[str, int] = {}
    for index in chosen:
        name = _first_class(paras[index].node)
        if name:
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return chosen
    name, count = max(counts.items(), key=lambda item: item[1])
    if count < max(3, len(chosen) // 2):
        return chosen
    region = _region(container)
    taken = set(chosen)
    for index, para in enumerate(paras):
        if (
            index not in taken
            and _first_class(para.node) == name
            and para.text
            and _is_prose(para.text)
            and _ancestor_in(para.node, region, 12) is not None
            and not boilerplate.inside(para.node, None, 4)
        ):
            taken.add(index)
    return sorted(taken)


class _Within:
    """Which of some containers holds a node; each ancestor is looked at once per page."""

    def __init__(self, containers: list[LexborNode]) -> None:
        self.found: dict[int, LexborNode | None] = {c.mem_id: c for c in containers}

    def __call__(self, node: LexborNode | None) -> LexborNode | None:
        path: list[int] = []
        result: LexborNode | None = None
        while node is not None and len(path) < _MAX_DEPTH:
            key = node.mem_id
            if key in self.found:
                result = self.found[key]
                break
            path.append(key)
            node = node.parent
        for key in path:
            self.found[key] = result
        return result


def _ancestor_in(node: LexborNode | None, keys: set[int], levels: int) -> LexborNode | None:
    """``node`` or its nearest ancestor (at most ``levels`` up) whose ``mem_id`` is in ``keys``."""
    while node is not None and levels >= 0:
        if node.mem_id in keys:
            return node
        node = node.parent
        levels -= 1
    return None


def _lead_before(
    paras: list[_Para], first: int, container: LexborNode, boilerplate: _Boilerplate
) -> list[int]:
    """Paragraphs just before the body container that open the article.

    Sites often set the first paragraph apart (a bold intro, a separate block before
    the rest of the body); it is taken when it sits near the body, reads as prose
    and is not a link list or a boilerplate block.
    """
    region = _region(container)
    found: list[int] = []
    skipped = 0
    index = first - 1
    while index >= 0 and len(found) < 2 and skipped < 3:
        para = paras[index]
        index -= 1
        if _ancestor_in(para.node, region, 12) is None:
            break
        if boilerplate.inside(para.node, None, 4) or para.node.tag == "li":
            break
        if len(para.text.split()) < 12 or not _is_prose(para.text):
            skipped += 1
            continue
        if para.link_density() > 0.3:
            break
        found.insert(0, index + 1)
    return found


# --------------------------------------------------------------------------- nesting guard

# Tags whose nesting makes lexbor's tree building (or our span unwrapping) quadratic
# in depth: block containers, and the spans and fonts unwrapped before the body scan.
# Tags that close themselves (p, li, h1-h6, table cells) never nest deep and are left out.
_NESTING_TAGS = (
    re.compile(
        r"<(/?)(?:address|article|aside|blockquote|center|details|dialog|dir|div|dl|"
        r"fieldset|figcaption|figure|footer|header|hgroup|main|menu|nav|ol|optgroup|pre|"
        r"rp|rt|section|summary|ul)\b[^>]*>",
        re.I,
    ),
    re.compile(r"<(/?)(?:span|font)\b[^>]*>", re.I),
)
_OPTION_TAG = re.compile(r"</?option\b[^>]*>", re.I)
_MAX_DEPTH = 400
_SCAN_OVER = 5000


def _defuse_nesting(html: str) -> str:
    """Flatten absurdly deep nesting, which makes HTML tree building quadratic.

    Tags deeper than ``_MAX_DEPTH`` lose their markup (their text stays), and
    thousands of ``<option>`` tags theirs. Pages with fewer opening tags than
    ``_SCAN_OVER`` cannot nest deep enough to matter and are left alone unscanned.
    """
    tags = html.count("<")
    if tags < _SCAN_OVER or tags - html.count("</") < _SCAN_OVER:
        return html
    for pattern in _NESTING_TAGS:
        html = _flatten_below(html, pattern)
    if html.count("<option") + html.count("<OPTION") > _SCAN_OVER // 2:
        html = _OPTION_TAG.sub(" ", html)
    return html


def _flatten_below(html: str, pattern: re.Pattern[str]) -> str:
    """Drop the tags matched by ``pattern`` that sit deeper than ``_MAX_DEPTH``."""
    depth = 0
    pieces: list[str] = []
    last = 0
    for m in pattern.finditer(html):
        if m.group(1):
            depth = max(depth - 1, 0)
            if depth < _MAX_DEPTH:
                continue
        else:
            depth += 1
            if depth <= _MAX_DEPTH:
                continue
        pieces.append(html[last : m.start()])
        pieces.append(" ")
        last = m.end()
    if not pieces:
        return html
    pieces.append(html[last:])
    return "".join(pieces)


# --------------------------------------------------------------------------- extraction

_DEK_SELECTOR = (
    ".dek, .standfirst, .subtitle, .sub-title, .subheadline, .sub-headline, .subhead, "
    ".article-dek, .article-summary, .article__dek, .article__standfirst, .article-subtitle, "
    ".post-excerpt, .entry-subtitle, .c-entry-summary, .summary, .deck, .excerpt, .lede-text, "
    ".headline-summary, .widget__subheadline, .gh-article-excerpt, .article-excerpt, "
    ".post-subtitle, [itemprop=description], [itemprop=alternativeHeadline], h2.subtitle"
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


def _byline_name(text: str) -> str:
    """The author names in a byline line: ``"By Ana Ruiz · 3 May 2025"`` -> ``"Ana Ruiz"``."""
    text = _BYLINE_HEAD.sub("", text.strip(), count=1)
    text = _BYLINE_TAIL.sub("", text).strip(" ,;:/")
    parts = [p.strip() for p in re.split(r",\s*", text) if p.strip()]
    names = []
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


def _featured_image(tree: LexborHTMLParser) -> tuple[str, str] | None:
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
                return value, _clean(attrs.get("alt"))
        srcset = (attrs.get("data-srcset") or attrs.get("srcset") or "").strip()
        if srcset and not srcset.startswith("data:"):
            return srcset.split()[0], _clean(attrs.get("alt"))
    return None


def extract(page: Page) -> Article:
    """Extract the article from a fetched page (see ``extract_html``)."""
    return extract_html(
        page.body,
        page.final_url or page.url,
        hints=page.hints,
        content_type=page.content_type,
    )


def extract_html(
    html: str | bytes,
    url: str,
    *,
    hints: EntryHints | None = None,
    content_type: str = "",
) -> Article:
    """Extract headline, standfirst, lead, body and metadata from one page.

    ``url`` is the page's own address (after redirects); ``hints`` (from a feed) fill
    only the fields the page lacks. Raises ``ExtractError`` naming ``url`` when the
    page is not text, or has neither a headline nor any body text.
    """
    hints = hints or EntryHints()
    if isinstance(html, bytes):
        try:
            html = decode_html(html, content_type)
        except ExtractError as exc:
            raise ExtractError(f"{url}: {exc}") from None
    tree = LexborHTMLParser(_defuse_nesting(html))
    meta = _read_meta(tree)
    props, ld = meta.props, meta.ld

    # Whatever never shows as text goes first, so nothing below can pick it up.
    declared_image = (
        _ld_image(ld.get("image"))
        or (
            props.get("og:image") or props.get("og:image:url") or props.get("twitter:image") or ""
        ).strip()
    )
    declared_alt = _clean_markup(props.get("og:image:alt") or props.get("twitter:image:alt"))
    # The article's own picture when the page declares none; else the declared
    # picture's alt text from its <img>, when the page shows it.
    featured = None if declared_image else _featured_image(tree)
    if declared_image and not declared_alt and '"' not in declared_image:
        shown = tree.css_first(f'img[src="{declared_image}"], img[data-src="{declared_image}"]')
        declared_alt = _clean(shown.attributes.get("alt")) if shown is not None else ""
    _drop(tree.css(_DROP_TAGS))
    _drop(
        [
            n
            for n in tree.css("[class*=caption], [class*=credit]")
            if n.tag not in ("html", "body", "main", "article")
        ]
    )
    for br in tree.css("br"):
        br.replace_with(_BREAK)
    body = tree.body
    if body is None:
        raise ExtractError(f"{url}: the page has no body; it is not an article page.")

    headline, headline_node = _headline(body, meta, urlsplit(url).hostname or "")
    headline = headline or _clean_markup(hints.title)
    # Deks and kickers sit by the headline; looking only there is faster and keeps
    # out the teasers of other articles that use the same class names.
    near = _around(headline_node, 5) if headline_node is not None else body
    dek, dek_node = _dek(near, meta, headline, headline_node)
    section = _section(near, meta, headline) or _clean_markup(hints.section)
    byline = _byline(body, meta)
    published = _published(body, meta) or hints.published
    image, image_alt = declared_image, declared_alt
    if featured:
        image, image_alt = featured
    image = image or hints.image or ""

    # Now the body: the dek and headline blocks go so they cannot pass for paragraphs.
    _drop(_outermost([n for n in (headline_node, dek_node) if n is not None]))
    for node in body.css("h1, h2, h3, h4, h5, h6, header"):
        if len(node.css("p")) < 3:
            node.decompose()
    headline_key = _key(headline)
    paragraphs = [
        p
        for p in _body_paragraphs(body)
        if len(p) > 2 * len(headline) + 20 or _key(p) != headline_key
    ]
    # Date lines and stray captions before the first sentence are not the lead.
    first = next((i for i, p in enumerate(paragraphs) if _reads_as_paragraph(p)), 0)
    paragraphs = paragraphs[first:]
    standfirst, paragraphs = _standfirst(meta, dek, hints, paragraphs, headline_key)
    if not headline and not paragraphs:
        raise ExtractError(f"{url}: found neither a headline nor any article text on the page.")

    lang = (meta.lang or props.get("og:locale", "") or _ld_text(ld.get("inLanguage"))).strip()
    article_url = _article_url(meta, url)
    return Article(
        url=canonical_url(article_url),
        headline=headline,
        standfirst=standfirst,
        lead=paragraphs[0] if paragraphs else "",
        paragraphs=tuple(paragraphs),
        image=urljoin(article_url, image) if image else None,
        image_alt=image_alt,
        section=section,
        published=published,
        byline=byline,
        language=re.split(r"[-_]", lang, maxsplit=1)[0].lower() if lang else "",
    )


_SENTENCE_CLOSE = re.compile(r"[.!?…:][\"'”’»)\]]*$")


def _reads_as_paragraph(text: str) -> bool:
    """A sentence or more of prose, not a date line or a label."""
    words = len(text.split())
    return words >= 25 or (words >= 3 and _SENTENCE_CLOSE.search(text) is not None)


def _headline(body: LexborNode, meta: _Meta, host: str) -> tuple[str, LexborNode | None]:
    """The article's own headline, and its element when it is shown as an ``<h1>``.

    The ``<h1>`` that matches a declared title (JSON-LD, Open Graph, ``<title>``)
    wins; else the declared headline; a title only ever loses its site name.
    """
    props, ld = meta.props, meta.ld
    declared = [
        _ld_text(ld.get("headline")),
        _clean_markup(props.get("og:title")),
        _clean_markup(props.get("twitter:title")),
        meta.title,
    ]
    declared = [d for d in declared if d]
    site = _clean_markup(props.get("og:site_name"))
    h1s = [(n, _clean(n.text(deep=True))) for n in body.css("h1")]
    h1s = [(n, t) for n, t in h1s if t]
    for node, h1 in h1s:
        k = _key(h1)
        # Most of a declared title, not a word of it (a logo's site name in an <h1>).
        if len(k) > 3 and any(k in _key(d) and 2 * len(k) >= len(_key(d)) for d in declared):
            return (_strip_site_name(h1, site, host) if h1 == meta.title else h1), node
    if declared and declared[0] != meta.title:
        return _strip_site_name(declared[0], site, host), None
    title = _strip_site_name(meta.title, site, host) if meta.title else ""
    if len(h1s) == 1:
        k = _key(h1s[0][1])
        if not (title and k in _key(meta.title) and k not in _key(title)):
            return h1s[0][1], h1s[0][0]
    return title, None


def _around(node: LexborNode, levels: int) -> LexborNode:
    """The ancestor ``levels`` up from ``node``, ``<body>`` at most."""
    for _ in range(levels):
        parent = node.parent
        if parent is None or parent.tag == "html":
            break
        node = parent
        if node.tag == "body":
            break
    return node


def _dek(
    body: LexborNode, meta: _Meta, headline: str, headline_node: LexborNode | None
) -> tuple[str, LexborNode | None]:
    """The visible standfirst under the headline, and its element, if the page shows one.

    A block marked up as a dek counts; so does an unmarked short block right after
    the headline when the page's own complete description says the same thing and
    no body paragraph follows it directly (then it would be the lead).
    """
    for node in body.css(_DEK_SELECTOR):
        candidate = _clean(node.text(deep=True))
        if 20 <= len(candidate) <= 600 and _key(candidate) != _key(headline):
            return candidate, node
    if headline_node is None:
        return "", None
    described = {
        _key(d)
        for d in (
            _ld_text(meta.ld.get("description")),
            _clean_markup(meta.props.get("og:description")),
            _clean_markup(meta.props.get("description")),
        )
        if d and not _is_truncated(d)
    }
    sibling = headline_node.next
    for _ in range(6):
        if sibling is None or not described:
            break
        if sibling.is_element_node:
            candidate = _clean(sibling.text(deep=True))
            if (
                candidate
                and (sibling.tag == "p" or sibling.css_first("p") is None)
                and len(candidate.split()) <= 60
                and _key(candidate) in described
            ):
                after = sibling.next
                while after is not None and (
                    not after.is_element_node
                    or (after.tag == "p" and not _is_prose(_clean(after.text(deep=True))))
                ):
                    after = after.next
                if after is not None and after.tag != "p":
                    return candidate, sibling
                break
        sibling = sibling.next
    return "", None


_HOSTLIKE = re.compile(r"[\w-]+(?:\.[\w-]+)+")  # "gizmodo.com" is no section


def _section(body: LexborNode, meta: _Meta, headline: str) -> str:
    """The site section: declared, else a visible kicker or category, else the breadcrumb."""
    section = _clean_markup(meta.props.get("article:section")) or _ld_text(
        meta.ld.get("articleSection")
    )
    if section and not _HOSTLIKE.fullmatch(section):
        return section
    for node in body.css(_SECTION_SELECTOR):
        label = _clean(node.text(deep=True))
        if 0 < len(label.split()) <= 6:
            return label.split("|")[-1].strip()  # "Analysis | Europe" -> "Europe"
    crumbs = [c for c in meta.breadcrumb if _key(c) != _key(headline)]
    return crumbs[-1] if len(crumbs) >= 2 else ""


def _byline(body: LexborNode, meta: _Meta) -> str:
    """The author names: JSON-LD, then ``<meta name=author>``, then the visible byline."""
    names = filter(None, map(_byline_name, _ld_names(meta.ld.get("author"))))
    byline = ", ".join(dict.fromkeys(names))
    if byline:
        return byline
    author = _clean_markup(meta.props.get("author") or meta.props.get("article:author"))
    if author and "://" not in author and (byline := _byline_name(author)):
        return byline
    for selector in _BYLINE_SELECTORS:
        for node in body.css(selector):
            if _in_comments(node):
                continue
            if byline := _byline_name(_clean(node.text(deep=True))):
                return byline
    return ""


def _in_comments(node: LexborNode) -> bool:
    """True inside a form or a comments block (a commenter's name is no byline)."""
    for _ in range(12):
        if node is None or node.tag == "body":
            return False
        if node.tag in ("form", "label") or "comment" in _attr_tokens(node).lower():
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


def _published(body: LexborNode, meta: _Meta) -> datetime | None:
    """Publication time, timezone-aware: JSON-LD, then ``<meta>``, then ``<time>``."""
    for value in (meta.ld.get("datePublished"), *map(meta.props.get, _DATE_PROPS)):
        if isinstance(value, str) and (published := _parse_date(value)):
            return published
    node = body.css_first("time[datetime]")
    return _parse_date(node.attributes.get("datetime") or "") if node is not None else None


def _standfirst(
    meta: _Meta, dek: str, hints: EntryHints, paragraphs: list[str], headline_key: str
) -> tuple[str, list[str]]:
    """The standfirst, and the paragraphs without a repeat of it.

    The visible dek, else the declared description, else the feed's summary; the
    complete text when another candidate is a truncated copy of it. A dek printed
    again as the first paragraph is dropped from the body; a description that is
    only the lead (whole or truncated), or the headline again, is no standfirst.
    """
    candidates = [
        dek,
        _ld_text(meta.ld.get("description")),
        _clean_markup(meta.props.get("og:description")),
        _clean_markup(meta.props.get("description")),
        _clean_markup(meta.props.get("twitter:description")),
        _clean_markup(hints.summary),
    ]
    candidates = [c for c in candidates if c and _key(c) != headline_key]
    standfirst = candidates[0] if candidates else ""
    for other in candidates[1:]:
        if _truncated_of(standfirst, other):
            standfirst = other
    if paragraphs and standfirst and _same_text(standfirst, paragraphs[0]):
        if dek and standfirst == dek:
            paragraphs = paragraphs[1:]
        else:
            standfirst = ""
    if standfirst and paragraphs and _truncated_of(standfirst, paragraphs[0]):
        standfirst = ""
    return standfirst, paragraphs


def _article_url(meta: _Meta, url: str) -> str:
    """The page's canonical URL when it is on the same site (or the page is a local
    file, whose canonical is its public address); otherwise the page URL."""
    canonical = meta.canonical or (meta.props.get("og:url") or "").strip()
    if canonical:
        resolved = urljoin(url, canonical)
        if urlsplit(resolved).scheme in ("http", "https") and (
            same_site(resolved, url) or urlsplit(url).scheme == "file"
        ):
            return resolved
    return url


def _outermost(nodes: list[LexborNode]) -> list[LexborNode]:
    """The nodes not inside another node of the list, in document order."""
    chosen = {n.mem_id for n in nodes}
    out = []
    for node in nodes:
        parent = node.parent
        inside = False
        steps = 0
        while parent is not None and steps < _MAX_DEPTH * 2:
            if parent.mem_id in chosen:
                inside = True
                break
            parent = parent.parent
            steps += 1
        if not inside:
            out.append(node)
    return out
