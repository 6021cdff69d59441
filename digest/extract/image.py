"""The size of an article's picture, as the page declares it.

The email reserves the picture's height and never shows it larger than it is, so it
needs the intrinsic size. Pages say it in three places, read in this order: Open
Graph (``og:image:width``/``og:image:height``, for the ``og:image``), the JSON-LD
``ImageObject`` (``width``/``height`` as a number, a numeric string or a
``QuantitativeValue``), and the ``width``/``height`` attributes of the ``<img>`` that
shows the picture. A size is used only when both numbers are read from one place.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser

from .css import css_string

#: Larger than any picture a page would show; a bigger number is a typo or a trap.
_MAX_SIDE = 20_000


def _pixels(value: object) -> int | None:
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = int(value)
    elif isinstance(value, str):
        text = value.strip().removesuffix("px").strip()
        if not text.isascii() or not text.isdigit():
            return None
        number = int(text)
    else:
        return None
    return number if 0 < number <= _MAX_SIDE else None


def _pair(width: object, height: object) -> tuple[int, int] | None:
    w, h = _pixels(width), _pixels(height)
    return (w, h) if w is not None and h is not None else None


def declared_size(
    tree: LexborHTMLParser,
    props: dict[str, str],
    ld_image: object,
    image: str,
) -> tuple[int, int] | None:
    """``(width, height)`` of ``image`` as the page declares it, or ``None``."""
    if not image:
        return None
    og = (props.get("og:image") or props.get("og:image:url") or "").strip()
    if og == image:
        size = _pair(props.get("og:image:width"), props.get("og:image:height"))
        if size:
            return size
    candidates = ld_image if isinstance(ld_image, list) else [ld_image]
    for candidate in candidates:
        if isinstance(candidate, dict):
            url = candidate.get("url") or candidate.get("contentUrl")
            if url == image:
                size = _pair(candidate.get("width"), candidate.get("height"))
                if size:
                    return size
    value = css_string(image)
    for node in tree.css(f"img[src={value}], img[data-src={value}]"):
        size = _pair(node.attributes.get("width"), node.attributes.get("height"))
        if size:
            return size
    return None
