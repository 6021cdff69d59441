"""CSS selectors written by people (a source's corrections): checking them, finding misses."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from digest.errors import ExtractError
from digest.models import Page

from .decode import decode_html

_PROBE = LexborHTMLParser("<p></p>")


def css_is_valid(selector: str) -> bool:
    """True when ``selector`` is not blank and lexbor can parse it."""
    try:
        _PROBE.css(selector)
    except SelectolaxError:
        return False
    return bool(selector.strip())


def css_string(value: str) -> str:
    """``value`` as a quoted CSS string, every character that could end or break it
    escaped, so a page's own values can be looked up by selector safely."""
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 32 or char == "\x7f":
            out.append(f"\\{ord(char):x} ")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def unmatched(page: Page) -> list[str]:
    """``"field 'selector'"`` for each of the page's corrections that matches nothing on it.

    Checked on the page as served, before anything is dropped.
    """
    selectors = page.corrections.selectors()
    if not selectors:
        return []
    try:
        tree = LexborHTMLParser(decode_html(page.body, page.content_type))
    except ExtractError:
        return []  # not a page at all: extraction says so
    return [
        f"{name} '{selector}'" for name, selector in selectors if tree.css_first(selector) is None
    ]
