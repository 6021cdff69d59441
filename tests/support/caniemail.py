"""What the email uses, and which clients support it, from the caniemail snapshot.

``tests/data/caniemail/caniemail.json`` is a trimmed copy of caniemail.com's data (see
``update.py`` there): for each CSS and HTML feature, the latest result of each client
checked here, ``y`` (supported), ``a`` (partial), ``n`` (not supported) or ``u``
(unknown), with the numbers of the notes that qualify it.
"""

from __future__ import annotations

import json
import re

import lxml.html

from tests.support import DATA

SNAPSHOT = json.loads((DATA / "caniemail" / "caniemail.json").read_text(encoding="utf-8"))
FEATURES: dict[str, dict] = SNAPSHOT["features"]
# Gmail (web, apps, mobile web), Outlook (Windows, Outlook.com), Yahoo, Apple Mail.
CLIENTS = tuple(sorted({c for f in FEATURES.values() for c in f["support"]}))
# Properties caniemail files under a feature of another name.
PROPERTY_FEATURES = {
    "left": "css-left-right-top-bottom",
    "right": "css-left-right-top-bottom",
    "top": "css-left-right-top-bottom",
    "bottom": "css-left-right-top-bottom",
    "font-family": "css-font",
    "background": "css-background",
}
# Properties with no caniemail entry: colour and the vendor properties a client that does
# not know them ignores (mso-* for Outlook for Windows, text size adjustment on phones).
UNLISTED = re.compile(r"color|font-family|mso-.*|-webkit-text-size-adjust|-ms-text-size-adjust")
_DECLARATION = re.compile(r"(?<![\w-])([a-z-]+)\s*:\s*([^;{}]*)")
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")


def unsupported(slug: str) -> list[str]:
    """The clients whose latest caniemail result for ``slug`` is "not supported"."""
    return sorted(c for c, result in FEATURES[slug]["support"].items() if result.startswith("n"))


def gmail_dropped_properties() -> set[str]:
    """CSS properties that some Gmail (web, app or mobile web) does not support."""
    dropped = set()
    for slug, feature in FEATURES.items():
        title = feature["title"].strip()
        if not slug.startswith("css-") or not re.fullmatch(r"[a-z-]+(, [a-z-]+)*", title):
            continue
        if any(c.startswith("gmail/") and r.startswith("n") for c, r in feature["support"].items()):
            dropped.update(title.split(", "))
    return dropped


def style_sheets(html: str) -> list[str]:
    """The content of every ``<style>`` element outside Outlook's conditional comments;
    one with a ``media`` attribute is written as the ``@media`` rule it amounts to."""
    root = lxml.html.document_fromstring(html.encode("utf-8"))
    return [
        f"@media {style.get('media')} {{{style.text or ''}}}"
        if style.get("media")
        else style.text or ""
        for style in root.iter("style")
    ]


def css_features(css: str, unknown: set[str]) -> set[str]:
    """The caniemail features of CSS declarations ``css``; properties with no entry
    that are not known to need none go into ``unknown``."""
    used = set()
    for name, value in _DECLARATION.findall(css):
        slug = PROPERTY_FEATURES.get(name, f"css-{name}")
        if slug not in FEATURES and re.fullmatch(r"(margin|padding|border)-\w+", name):
            slug = f"css-{name.split('-')[0]}"
        if slug in FEATURES:
            used.add(slug)
        elif not UNLISTED.fullmatch(name):
            unknown.add(name)
        if name == "display" and value.strip().startswith("none"):
            used.add("css-display-none")
        if "!important" in value:
            used.add("css-important")
        for unit, feature in (("%", "css-unit-percent"), ("px", "css-unit-px")):
            if re.search(rf"\d{re.escape(unit)}", value):
                used.add(feature)
    return used


def selector_features(selectors: str) -> set[str]:
    """The caniemail features of one rule's selector list."""
    used = set()
    if "," in selectors:
        used.add("css-selector-grouping")
    for selector in selectors.split(","):
        parts = selector.split()
        if len(parts) > 1:
            used.add("css-selector-descendant")
        for part in parts:
            if part.startswith("["):
                used.add("css-selector-attribute")
            if re.search(r"\w\.|\.[\w-]+\.", part):
                used.add("css-selector-chaining")
            if part.startswith("."):
                used.add("css-selector-class")
            if re.match(r"[a-z]", part):
                used.add("css-selector-type")
    return used


def features_used(html: str) -> tuple[set[str], set[str]]:
    """The caniemail features the email's HTML and CSS use, and the CSS properties that
    have no caniemail entry (Outlook's conditional comments are left out: only Outlook
    for Windows reads them)."""
    used: set[str] = set()
    unknown: set[str] = set()
    root = lxml.html.document_fromstring(html.encode("utf-8"))
    for element in root.iter():
        if not isinstance(element.tag, str):
            used.add("html-comments")
            continue
        tag = element.tag
        if re.fullmatch(r"h[1-6]", tag):
            used.add("html-h1-h6")
        elif tag in ("ul", "ol", "li"):
            used.add("html-lists")
        elif f"html-{tag}" in FEATURES:
            used.add(f"html-{tag}")
        for attribute in element.attrib:
            if f"html-{attribute}" in FEATURES:
                used.add(f"html-{attribute}")
        if tag == "a" and (element.get("href") or "").startswith("#"):
            used.add("html-anchor-links")
        if tag == "meta" and element.get("name") == "color-scheme":
            used.add("html-meta-color-scheme")
        used |= css_features(element.get("style") or "", unknown)
    if html.lstrip().lower().startswith("<!doctype"):
        used.add("html-doctype")
    for sheet in style_sheets(html):
        if "@media" in sheet:
            used.add("css-at-media")
        if "prefers-color-scheme" in sheet:
            used.add("css-at-media-prefers-color-scheme")
        for selectors, body in _RULE.findall(re.sub(r"@media[^{]*\{", "", sheet)):
            used |= selector_features(selectors.strip())
            used |= css_features(body, unknown)
    return used, unknown
