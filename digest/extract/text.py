"""Text helpers shared by the extraction modules: cleaning, comparison keys."""

from __future__ import annotations

import re
import unicodedata
from html import unescape

from selectolax.lexbor import LexborNode

_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")


def clean(text: str | None) -> str:
    """Fold whitespace (no-break spaces included) and drop invisible characters."""
    if not text:
        return ""
    return " ".join(_INVISIBLE.sub("", text).split())


_TAG = re.compile(r"<[^>]*>")
# What a <br> becomes: whitespace to clean, and a paragraph break when doubled in a block.
BREAK = "\u2029"
BREAKS = re.compile(r"\u2029\s*\u2029")


def clean_markup(text: str | None) -> str:
    """Clean text that may still carry markup or entities (meta content, feed summaries)."""
    if not text:
        return ""
    if "<" in text:
        text = _TAG.sub(" ", text)
    return clean(unescape(text))


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


def match_key(text: str) -> str:
    """A comparison key: NFKC, ASCII quotes and dashes, lower case, word characters only."""
    return "".join(_WORD.findall(unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()))


def is_truncated(text: str) -> bool:
    return text.endswith(("…", "...", "[…]", "[...]"))


def truncated_of(short: str, full: str) -> bool:
    """True when ``short`` is ``full`` cut off and marked with an ellipsis."""
    if not is_truncated(short):
        return False
    stem = match_key(short.rstrip(".…[] "))
    return len(stem) >= 20 and match_key(full).startswith(stem) and len(match_key(full)) > len(stem)


def same_text(a: str, b: str) -> bool:
    """Equal or nearly equal: same words, or one a truncated start of the other."""
    ka, kb = match_key(a), match_key(b)
    if not ka or not kb:
        return False
    if ka == kb:
        return True
    short, long_ = sorted((ka, kb), key=len)
    if len(short) >= 40 and long_.startswith(short[: max(40, len(short) - 8)]):
        return True
    ta, tb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    return len(ta & tb) / max(len(ta | tb), 1) >= 0.9


_BLOCK_TAGS = frozenset(
    {"p", "div", "li", "ul", "ol", "dd", "dt", "td", "th", "tr", "table", "section", "article",
     "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "header", "figcaption", "pre"}
)  # fmt: skip


def block_text(node: LexborNode) -> str:
    """The clean text of ``node`` with a space where one block ends and the next begins
    (``<p>the harbour.</p><p>The ministry</p>`` does not read ``harbour.The``)."""
    parts: list[str] = []
    for item in node.traverse(include_text=True):
        if item.is_text_node:
            parts.append(item.text_content or "")
        elif item.tag in _BLOCK_TAGS:
            parts.append(" ")
    return clean("".join(parts))
