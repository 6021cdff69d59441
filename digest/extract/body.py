"""The article body: one Readability-style scoring pass over paragraphs, widened to the blocks the
body was cut into."""

from __future__ import annotations

import re

from selectolax.lexbor import LexborNode

from .css import css_string
from .decode import MAX_DEPTH
from .paragraphs import (
    HEADLINE_MARK,
    Para,
    ancestor_in,
    direct_text,
    link_density,
    paragraph_nodes,
)
from .prose import _BODY_TOKEN, Boilerplate, attr_tokens, is_prose
from .text import block_text, clean, is_truncated, match_key, same_text

_CONTENT_HINT = re.compile(
    r"article|body|content|entry|main|post|story|text|prose|richtext|rich-text", re.I
)
_NEGATIVE_HINT = re.compile(
    r"comment|meta|footer|footnote|foot|sidebar|related|share|social|promo|sponsor|"
    r"widget|byline|author|caption|nav|menu|rail",
    re.I,
)


def _class_weight(node: LexborNode) -> float:
    """A factor for a block's score from its class and id: body-like up, aside-like down."""
    tokens = attr_tokens(node)
    weight = 1.2 if node.tag == "article" else 1.0
    if tokens:
        if _CONTENT_HINT.search(tokens):
            weight *= 1.25
        if _NEGATIVE_HINT.search(tokens):
            weight *= 0.5
    return weight


_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)]?(?:\s|$)")
# A paragraph's score goes to its parent in full and to its ancestors in shrinking
# shares (Readability's weights), so a container of many short blocks can win.
_ANCESTOR_SHARES = (1.0, 1 / 2, 1 / 6, 1 / 9, 1 / 12)


def _score(
    paras: list[Para], boilerplate: Boilerplate
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
        if "orem ipsum" in para.text:
            continue  # a template's placeholder text (often hidden by a style) is no body
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
        if direct_text(span):
            continue
        text = clean(span.text(deep=True))
        if len(text) >= 20 and link_density(span, len(text)) > 0.5:
            span.decompose()


def body_paragraphs(body: LexborNode, descriptions: tuple[str, ...] = ()) -> list[str]:
    """The article's paragraphs, in reading order.

    ``descriptions`` are the page's declared summaries: set apart between the headline
    and the body, one of them is the standfirst, not the opening paragraph.
    """
    _drop_hover_cards(body)
    # Text wrapped in spans reads as text written straight into its block.
    body.unwrap_tags(["span", "font"])
    paras = paragraph_nodes(body)
    boilerplate = Boilerplate()
    scores, nodes = _score(paras, boilerplate)
    if not scores:  # nothing long enough to score: whatever prose the page has
        return [p.text for p in paras if p.text and is_prose(p.text) and p.link_density() <= 0.5]
    containers = _containers(scores, nodes, boilerplate)
    within = _Within(containers)
    chosen: list[int] = []
    for index, para in enumerate(paras):
        container = within(para.node)
        if container is None or not para.text or not is_prose(para.text):
            continue
        if boilerplate.inside(para.node, container, MAX_DEPTH):
            continue
        limit = 0.3 if para.node.tag == "li" else 0.6
        if para.link_density() > limit:
            continue
        chosen.append(index)
    # A pitch in the page's hero block (a teaser by the headline) is no paragraph,
    # even inside the body's block; it comes first.
    while chosen and _teaser(paras[chosen[0]].text) and _in_hero(paras[chosen[0]].node):
        chosen.pop(0)
    if chosen:
        chosen = _same_class(paras, chosen, containers[0], boilerplate)
        chosen[:0] = _lead_before(paras, chosen[0], containers[0], boilerplate)
        chosen[:0] = _after_headline(paras, chosen[0], boilerplate, descriptions)
    return _without_excerpts([paras[i].text for i in chosen])


def _without_excerpts(texts: list[str]) -> list[str]:
    """``texts`` without excerpts: a paragraph cut off with an ellipsis (``[…]``) whose
    text the next paragraphs go on to give in full, as a blog prints its own excerpt
    above the post."""
    out = []
    for index, text in enumerate(texts):
        if is_truncated(text) and index + 1 < len(texts):
            stem = match_key(text.rstrip(".…[] "))
            following = match_key(texts[index + 1])
            if len(following) >= 20 and (
                stem.startswith(following) or following.startswith(stem)
            ):
                continue
        out.append(text)
    return out


def _containers(
    scores: dict[int, float], nodes: dict[int, LexborNode], boilerplate: Boilerplate
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
                    text = clean(child.text(deep=True))
                    if len(text) > 80 and link_density(child, len(text)) < 0.25:
                        containers.append(child)
            child = child.next
    # The body cut into chunks under separate wrappers (page builders' modules, a
    # guide's sections): blocks with the very class of the chosen block anywhere on the
    # page are chunks of the same body, even a short one (an opening sentence in a
    # block of its own), unless it is one quotation (a pull quote).
    if best_class and best.tag != "p":
        keys = {c.mem_id for c in containers}
        top = best
        for _ in range(MAX_DEPTH):
            if top.parent is None or top.parent.tag in ("body", "html"):
                break
            top = top.parent
        # The class goes into the selector only as an escaped CSS string.
        # A text component's first class names it ("rich-text"); utility classes after
        # it ("mt-4", "text-lg") vary from chunk to chunk.
        first_name = best_class.split()[0] if best_class.split() else ""
        selector = (
            f"[class~={css_string(first_name)}]"
            if first_name and _BODY_TOKEN.search(first_name)
            else f"[class={css_string(best_class)}]"
        )
        for chunk in top.css(selector):
            if (
                chunk.mem_id not in keys
                and chunk.tag == best.tag
                and scores.get(chunk.mem_id, 0.0) >= best_score * 0.05
                and not _QUOTATION.match(block_text(chunk))
            ):
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
    paras: list[Para], chosen: list[int], container: LexborNode, boilerplate: Boilerplate
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
            and is_prose(para.text)
            and ancestor_in(para.node, region, 12) is not None
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
        while node is not None and len(path) < MAX_DEPTH:
            key = node.mem_id
            if key in self.found:
                result = self.found[key]
                break
            path.append(key)
            node = node.parent
        for key in path:
            self.found[key] = result
        return result


def _lead_before(
    paras: list[Para], first: int, container: LexborNode, boilerplate: Boilerplate
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
        if ancestor_in(para.node, region, 12) is None:
            break
        if boilerplate.inside(para.node, None, 4) or para.node.tag == "li":
            break
        if len(para.text.split()) < 12 or not is_prose(para.text) or _teaser(para.text):
            skipped += 1
            continue
        if para.link_density() > 0.3:
            break
        found.insert(0, index + 1)
    return found


# Blocks by the headline that set a teaser apart from the body (a blurb, an excerpt,
# a short description, a subtitle) or that address the reader (a call to action, the
# author's bio); the prose in them is no opening paragraph.
_SET_APART = re.compile(
    r"blurb|excerpt|descr|subtitle|subhead|tagline|strapline|standfirst|dek\b|deck|"
    r"(?:^|[-_])(?:cta|bio)(?:$|[-_])",
    re.I,
)
# A line about the author: "Sam is a writer from ...", "Kim has been a reporter ...".
_ABOUT_AUTHOR = re.compile(
    r"^(?:[A-Z][\w'’.-]+\s){1,3}(?:is|has been|was)\s+an?\s+(?:[\w-]+\s+){0,4}?"
    r"(?:writer|journalist|author|editor|reporter|contributor|columnist|freelancer|blogger)",
)
# A teaser that sells the article instead of opening it: "Here are ten tips ...",
# "Check out these ...", "Explore our picks", "We've broken down ...".
_TEASER = re.compile(
    r"\b(?:here (?:are|is)|here's|check out|find (?:out|options)|explore (?:our|these|the)|"
    r"discover (?:our|these|the|how|what|why)|read on|"
    r"we(?:'ve|’ve| have) (?:broken down|rounded up|compiled|put together|gathered)|"
    r"i(?:'m|’m) sharing|this is a (?:quick|short|brief) (?:review|guide|look)|"
    r"our (?:ranking|picks|guide|list) (?:of|can|will|to)|our picks\b)",
    re.I,
)


def _teaser(text: str) -> bool:
    """A short blurb that points at the article rather than telling it."""
    if len(text) > 400:  # far more than 45 words: no need to count them
        return False
    return len(text.split()) <= 45 and _TEASER.search(text) is not None


# A block that is one quotation: a pull quote, or the claim a fact check examines.
_QUOTATION = re.compile(r"^[\"“„«‘].*[\"”“»’]$", re.S)


_PROSE_END = re.compile(r"[.!…][\"'”’»)\]]*$")
_TEASER_BLOCK = re.compile(r"teaser", re.I)


def prose_heading(node: LexborNode, headline: str) -> str:
    """The text of a heading that is really a paragraph, else ``""``.

    Sites set an intro in large type with an ``<h2>`` or ``<h5>``: a heading (not the
    ``<h1>``) of twenty words or more that ends a sentence is such prose, unless it is
    a teaser or subtitle block or the headline run on into its subtitle.
    """
    if node.tag not in ("h2", "h3", "h4", "h5", "h6") or len(node.text(deep=True)) < 80:
        return ""
    text = block_text(node)
    if len(text.split()) < 20 or not _PROSE_END.search(text):
        return ""
    if _set_apart(node) or _TEASER_BLOCK.search(attr_tokens(node)):
        return ""
    key = match_key(headline)
    if key and match_key(text).startswith(key):
        return ""
    return text


_HERO = re.compile(r"hero|masthead|jumbotron", re.I)


def _in_hero(node: LexborNode | None) -> bool:
    """True when ``node`` or one of its three nearest ancestors is a hero block."""
    for _ in range(4):
        if node is None or node.tag in ("body", "html"):
            return False
        if _HERO.search(attr_tokens(node)):
            return True
        node = node.parent
    return False


def _set_apart(node: LexborNode | None) -> bool:
    """True when ``node`` or one of its three nearest ancestors is a teaser or bio block."""
    for _ in range(4):
        if node is None or node.tag in ("body", "html"):
            return False
        tokens = attr_tokens(node)
        if tokens and _SET_APART.search(tokens):
            return True
        node = node.parent
    return False


def _after_headline(
    paras: list[Para], first: int, boilerplate: Boilerplate, descriptions: tuple[str, ...]
) -> list[int]:
    """Prose between the headline and the body: the article's opening, set apart.

    Page builders and hero blocks put the first paragraphs in a block of their own,
    far from the rest of the body. What reads as prose (a sentence, or a line ending
    in a colon that introduces what follows) after the headline's mark and before the
    body's first paragraph opens the article, unless it sits in a boilerplate block or
    a teaser or bio block, is a list item, is mostly links, is about the author, is one
    quotation or is a declared description printed as a dek.
    """
    mark = next(
        (
            i
            for i in range(first)
            if paras[i].node.tag == "p"
            and not paras[i].text
            and HEADLINE_MARK in paras[i].node.attributes
        ),
        -1,
    )
    if mark < 0:
        return []
    return [
        i
        for i in range(mark + 1, first)
        if paras[i].node.tag != "li"
        and len(paras[i].text.split()) >= 12
        and (_SENTENCE_END.search(paras[i].text) or paras[i].text.endswith(":"))
        and is_prose(paras[i].text)
        and paras[i].link_density() <= 0.3
        and not boilerplate.inside(paras[i].node, None, 8)
        and not _set_apart(paras[i].node)
        and not _ABOUT_AUTHOR.match(paras[i].text)
        and not _QUOTATION.match(paras[i].text)
        and not _teaser(paras[i].text)
        and not any(_printed_description(paras[i].text, d) for d in descriptions)
    ]


def _printed_description(text: str, description: str) -> bool:
    """True when ``text`` is the declared description printed as a dek: the same text,
    not a longer paragraph that the description was cut from (its first characters)."""
    if not same_text(text, description):
        return False
    key, declared = match_key(text), match_key(description)
    return not (len(key) > len(declared) + 12 and key.startswith(declared[:-8]))
