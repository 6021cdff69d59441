"""Paragraphs in reading order: ``<p>`` elements, ``<br>``-broken lines and loose text in blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from selectolax.lexbor import LexborNode

from .decode import MAX_DEPTH
from .text import BREAK, BREAKS, clean

#: The attribute of the empty ``<p>`` that ``article`` leaves where the headline stood.
HEADLINE_MARK = "data-digest-headline"


@dataclass(slots=True)
class Para:
    """A paragraph's text and the element it came from (a block may give several)."""

    node: LexborNode
    _text: str | None  # None: a list item, read only if it turns out to be in the body
    linked: int = -1  # characters inside links, when counted while reading the text

    @property
    def text(self) -> str:
        if self._text is None:
            # Lexbor's selectors match the element itself too: only blocks inside count.
            own = self.node.mem_id
            nested = any(n.mem_id != own for n in self.node.css("p, div, li"))
            self._text = "" if nested else clean(self.node.text(deep=True))
        return self._text

    def link_density(self) -> float:
        """Share of the paragraph's text inside links."""
        if self.linked >= 0:
            return self.linked / max(len(self.text), 1)
        return link_density(self.node, len(self.text))


_INLINE = frozenset(
    {
        *("a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "dfn", "em", "font", "i"),
        *("kbd", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup", "time"),
        *("tt", "u", "var", "wbr", "ins", "del", "img"),
    }
)


_BLOCKS = "p, div, li, ul, ol, table, section, article, blockquote, h1, h2, h3, h4, h5, h6"


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
            # An inline element around paragraphs (<a> around a card) is a block here.
            if child.tag in _INLINE and child.css_first(_BLOCKS) is None:
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
        out: list[tuple[str, int]] = []
        for offset, chunk in enumerate(chunks):
            pieces = [c for c in map(clean, BREAKS.split(chunk)) if c]
            links = linked.get(first + offset, 0)
            total = sum(len(p) for p in pieces) or 1
            out.extend((p, links * len(p) // total) for p in pieces)
        return out

    return split(before, 0), split(after, len(before))


def direct_text(node: LexborNode) -> int:
    """Characters of text written straight into ``node`` (not in its children)."""
    total = 0
    child = node.child
    while child is not None:
        if child.is_text_node:
            total += len((child.text_content or "").strip())
        child = child.next
    return total


def paragraph_nodes(root: LexborNode) -> list[Para]:
    """Paragraphs in document order: ``<p>`` elements, and text written straight into blocks.

    The headline's mark (``HEADLINE_MARK``) is listed too, as a paragraph without text.

    Text that follows a nested block inside its parent block is held back until the
    nested paragraphs have been listed, so the order stays the reading order.
    """
    paras: list[Para] = []
    pending: list[tuple[LexborNode, list[Para]]] = []
    for node in root.css("p, li, div, td, section, article, blockquote, dd"):
        while pending and ancestor_in(node, {pending[-1][0].mem_id}, MAX_DEPTH) is None:
            paras.extend(pending.pop()[1])
        tag = node.tag
        if tag == "li":
            paras.append(Para(node, None))
        elif tag == "p" and HEADLINE_MARK in node.attributes:
            paras.append(Para(node, ""))  # no text: only a place in the reading order
        elif tag == "p":
            raw = node.text(deep=True)
            if BREAK in raw:  # lines broken with <br> are paragraphs of their own
                lines = [t for t in map(clean, raw.split(BREAK)) if t]
                if _hard_wrapped(lines):
                    lines = [" ".join(lines)]
                if len(lines) == 1:
                    paras.append(Para(node, lines[0]))
                else:
                    share = link_density(node, sum(map(len, lines)))
                    paras.extend(Para(node, t, int(share * len(t))) for t in lines)
            elif text := clean(raw):
                paras.append(Para(node, text))
        elif direct_text(node) >= 25:
            before, after = _inline_runs(node)
            paras.extend(Para(node, run, links) for run, links in before if len(run) >= 25)
            later = [Para(node, run, links) for run, links in after if len(run) >= 25]
            if later:
                pending.append((node, later))
    while pending:
        paras.extend(pending.pop()[1])
    return paras


_LINE_END = re.compile(r"[.!?…:;\"'”’»)\]]$")


def _hard_wrapped(lines: list[str]) -> bool:
    """True when ``<br>`` breaks a sentence in mid-flow (text wrapped by hand, line by
    line): a line without closing punctuation followed by one in lower case."""
    return any(
        not _LINE_END.search(line) and following[:1].islower()
        for line, following in pairwise(lines)
    )


def link_density(node: LexborNode, length: int) -> float:
    if not length:
        return 0.0
    linked = sum(len(clean(a.text(deep=True))) for a in node.css("a"))
    return linked / length


def ancestor_in(node: LexborNode | None, keys: set[int], levels: int) -> LexborNode | None:
    """``node`` or its nearest ancestor (at most ``levels`` up) whose ``mem_id`` is in ``keys``."""
    while node is not None and levels >= 0:
        if node.mem_id in keys:
            return node
        node = node.parent
        levels -= 1
    return None
