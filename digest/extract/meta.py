"""What a page declares about itself: ``<meta>``, JSON-LD, canonical link, language, title."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

from .text import clean, clean_markup

_ARTICLE_TYPES = re.compile(r"Article|BlogPosting|Posting|Report|Story|Review", re.I)
_LD_WANTED = re.compile(r"Article|Posting|Report|Story|Review|Breadcrumb|WebPage", re.I)


@dataclass(slots=True)
class Meta:
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


def read_meta(tree: LexborHTMLParser) -> Meta:
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
                            breadcrumb.append(clean_markup(name))
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
    title = clean(title_node.text()) if title_node is not None else ""
    return Meta(props, ld, breadcrumb, canonical, lang, title)


def ld_text(value: object) -> str:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), "")
    return clean_markup(value) if isinstance(value, str) else ""


def ld_names(value: object) -> list[str]:
    items = value if isinstance(value, list) else [value]
    names = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("name", "")
        if isinstance(item, str) and item.strip() and "://" not in item:
            names.append(clean_markup(item))
    return names


def ld_image(value: object) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        value = value.get("url") or value.get("contentUrl") or ""
    return value.strip() if isinstance(value, str) else ""


def ld_caption(value: object) -> str:
    """The caption a JSON-LD ``image`` declares (its first one, when it is a list)."""
    if isinstance(value, list):
        value = value[0] if value else ""
    caption = value.get("caption") if isinstance(value, dict) else ""
    return caption.strip() if isinstance(caption, str) else ""
