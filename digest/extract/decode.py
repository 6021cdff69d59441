"""From bytes to a string lexbor can parse: charset detection, and a guard against deep nesting."""

from __future__ import annotations

import codecs
import re

from digest.errors import ExtractError

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
MAX_DEPTH = 400
_SCAN_OVER = 5000


def defuse_nesting(html: str) -> str:
    """Flatten absurdly deep nesting, which makes HTML tree building quadratic.

    Tags deeper than ``MAX_DEPTH`` lose their markup (their text stays), and
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
    """Drop the tags matched by ``pattern`` that sit deeper than ``MAX_DEPTH``."""
    depth = 0
    pieces: list[str] = []
    last = 0
    for m in pattern.finditer(html):
        if m.group(1):
            depth = max(depth - 1, 0)
            if depth < MAX_DEPTH:
                continue
        else:
            depth += 1
            if depth <= MAX_DEPTH:
                continue
        pieces.append(html[last : m.start()])
        pieces.append(" ")
        last = m.end()
    if not pieces:
        return html
    pieces.append(html[last:])
    return "".join(pieces)
