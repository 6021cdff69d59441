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


def _inline_runs(
    node: LexborNode,
) -> list[tuple[bool, LexborNode | None, list[tuple[str, int]]]]:
    """Text of a block's direct text and inline children, split at nested blocks.

    Returns, for each stretch of text: whether it comes before any nested block, the
    nested block that follows it (``None`` after the last) and its ``(text,
    characters in links)`` runs.
    """
    chunks: list[tuple[str, int]] = []
    blocks: list[LexborNode] = []
    current: list[str] = []
    linked = 0
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
                    linked += len(text)
                elif child.child is not None and child.child.next is not None:
                    linked += sum(len(a.text(deep=True)) for a in child.css("a"))
            else:
                chunks.append(("".join(current), linked))
                blocks.append(child)
                current, linked = [], 0
        child = child.next
    chunks.append(("".join(current), linked))

    out: list[tuple[bool, LexborNode | None, list[tuple[str, int]]]] = []
    for index, (chunk, links) in enumerate(chunks):
        pieces = [clean(chunk)]
        if BREAK in chunk:
            # As in a <p>: lines broken with <br> are paragraphs, unless wrapped by hand.
            pieces = []
            for piece in BREAKS.split(chunk):
                lines = [t for t in map(clean, piece.split(BREAK)) if t]
                pieces.extend(_join_wrapped(lines))
        pieces = [p for p in pieces if p]
        if pieces:
            total = sum(len(p) for p in pieces) or 1
            following = blocks[index] if index < len(blocks) else None
            runs = [(p, links * len(p) // total) for p in pieces]
            out.append((index == 0, following, runs))
    return out


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

    Text that follows a nested block inside its parent block is held back until that
    block's paragraphs have been listed, so the order stays the reading order.
    """
    paras: list[Para] = []
    # <p>s written one sentence per source line: (index in paras, the lines).
    per_line: list[tuple[int, list[str]]] = []
    wrapped = False  # some <p>'s source is cut at a fixed width
    # Blocks with loose text after a nested block: (block, [(following block's
    # mem_id or -1, its paragraphs)]), innermost last.
    pending: list[tuple[LexborNode, list[tuple[int, list[Para]]]]] = []
    for node in root.css("body, p, li, div, td, section, article, blockquote, dd"):
        if pending:
            _release(node, pending, paras)
        tag = node.tag
        if tag == "li":
            paras.append(Para(node, None))
        elif tag == "p" and HEADLINE_MARK in node.attributes:
            paras.append(Para(node, ""))  # no text: only a place in the reading order
        elif tag == "p":
            raw = node.text(deep=True)
            if BREAK in raw:  # lines broken with <br> are paragraphs of their own
                lines = _join_wrapped([t for t in map(clean, raw.split(BREAK)) if t])
                if len(lines) == 1:
                    paras.append(Para(node, lines[0]))
                else:
                    share = link_density(node, sum(map(len, lines)))
                    paras.extend(Para(node, t, int(share * len(t))) for t in lines)
            elif text := clean(raw):
                if "\n" in (inner := raw.strip()):
                    lines = [t for t in map(clean, inner.split("\n")) if t]
                    if _sentence_lines(lines):
                        per_line.append((len(paras), lines))
                    elif _column_wrapped(lines):
                        wrapped = True
                paras.append(Para(node, text))
        elif direct_text(node) >= 25:
            waiting: list[tuple[int, list[Para]]] = []
            for first, following, runs in _inline_runs(node):
                found = [Para(node, run, links) for run, links in runs if len(run) >= 25]
                if first:
                    paras.extend(found)  # before any nested block: in its place now
                elif found:
                    waiting.append((following.mem_id if following is not None else -1, found))
            if waiting:
                pending.append((node, waiting))
    while pending:
        for _, found in pending.pop()[1]:
            paras.extend(found)
    if per_line and not wrapped:
        # The page's author ends source lines only where sentences end (one sentence
        # per line, as Markdown sources often are): each line reads as a paragraph.
        for index, lines in reversed(per_line):
            para = paras[index]
            share = para.link_density()
            paras[index : index + 1] = [Para(para.node, t, int(share * len(t))) for t in lines]
    return paras


_LINE_END = re.compile(r"[.!?…:;\"'”’»)\]]$")


def _release(
    node: LexborNode,
    pending: list[tuple[LexborNode, list[tuple[int, list[Para]]]]],
    paras: list[Para],
) -> None:
    """List the loose text that comes before ``node`` in reading order.

    Loose text waits for the nested block that follows it in its block; everything
    left waiting goes once the scan has left that block.
    """
    while pending:
        block, waiting = pending[-1]
        path: set[int] = set()
        current: LexborNode | None = node
        inside = False
        for _ in range(MAX_DEPTH):
            if current is None:
                break
            if current.mem_id == block.mem_id:
                inside = True
                break
            path.add(current.mem_id)
            current = current.parent
        if not inside:
            for _, found in waiting:
                paras.extend(found)
            pending.pop()
            continue
        last = max((i for i, (key, _) in enumerate(waiting) if key in path), default=-1)
        for _, found in waiting[: last + 1]:
            paras.extend(found)
        del waiting[: last + 1]
        return


def _join_wrapped(lines: list[str]) -> list[str]:
    """``lines`` as paragraphs: one paragraph when they are wrapped by hand at a width
    (short lines, one broken in mid-sentence), else with each line broken in
    mid-sentence joined to the next (a formula or a quotation run on into the text)."""
    if _hard_wrapped(lines) and all(len(line) <= 100 for line in lines[:-1]):
        return [" ".join(lines)]
    out: list[str] = []
    for line in lines:
        if out and not _LINE_END.search(out[-1]) and line[:1].islower():
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return out


def _hard_wrapped(lines: list[str]) -> bool:
    """True when ``<br>`` breaks a sentence in mid-flow (text wrapped by hand, line by
    line): a line without closing punctuation followed by one in lower case."""
    return any(
        not _LINE_END.search(line) and following[:1].islower()
        for line, following in pairwise(lines)
    )


_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*$")
_SENTENCE_START = re.compile(r"[\"'“‘«(\[]*[A-Z0-9]")


def _sentence_lines(lines: list[str]) -> bool:
    """True when every line but the last ends a sentence and the next starts one."""
    return len(lines) > 1 and all(
        _SENTENCE_END.search(line) and _SENTENCE_START.match(following)
        for line, following in pairwise(lines)
    )


def _column_wrapped(lines: list[str]) -> bool:
    """True when source lines are cut at a fixed width (every line but the last 50 to
    100 characters long) and one of them in mid-sentence."""
    return (
        len(lines) > 2
        and all(50 <= len(line) <= 100 for line in lines[:-1])
        and _hard_wrapped(lines)
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
