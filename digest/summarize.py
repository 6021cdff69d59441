"""Summaries: an article's standfirst and lead paragraph, within a word budget.

The cut falls at a sentence boundary when one exists inside the budget (so a
summary reads as whole sentences); an ellipsis marks text that was cut. Known
abbreviations ("U.S.", "Dr.", "Nov.") do not end a sentence.
"""

from __future__ import annotations

import re

from .models import Article, Item

ELLIPSIS = "…"

# Abbreviations after which a full stop does not end a sentence (lower-cased, no dot).
ABBREVIATIONS = frozenset(
    """
mr mrs ms dr prof sr jr st mt gen col lt sgt capt gov sen rep rev fr hon
jan feb mar apr jun jul aug sep sept oct nov dec
no nos vol pp fig approx est inc ltd co corp dept univ vs etc
u.s u.k u.n e.u e.g i.e a.m p.m
mme mlle m cf bzw usw ca nr sra srta ud uds
    """.split()
)

_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")


def _is_sentence_end(token: str, next_token: str | None) -> bool:
    if not _SENTENCE_END.search(token):
        return False
    if next_token is not None and next_token[:1].islower():
        return False
    bare = token.rstrip("\"'”’)]").rstrip(".").lower().lstrip("(\"'“‘")
    if token.rstrip("\"'”’)]").endswith(".") and bare in ABBREVIATIONS:
        return False
    # A single capital with a dot is an initial ("J. Smith"), not a sentence end.
    return not re.fullmatch(r"[A-Z]\.", token)


def trim(text: str, budget: int) -> str:
    """``text`` cut to at most ``budget`` words, at the last sentence end inside the budget.

    Whole text when it fits. With no sentence end inside the budget the cut is at a
    word boundary and ends with an ellipsis.
    """
    tokens = _WORD.findall(text)
    if len(tokens) <= budget:
        return " ".join(tokens)
    last_end = 0
    for i in range(budget):
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if _is_sentence_end(tokens[i], following):
            last_end = i + 1
    # A sentence end in the first third would leave a summary too short to be useful.
    if last_end and last_end >= budget // 3:
        return " ".join(tokens[:last_end])
    return " ".join(tokens[:budget]).rstrip(",;:—–-") + ELLIPSIS


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def near_duplicate(a: str, b: str, threshold: float = 0.8) -> bool:
    """True when most words of the shorter text are in the longer one."""
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return False
    small, large = (ta, tb) if len(ta) <= len(tb) else (tb, ta)
    return len(small & large) / len(small) >= threshold


def summary_text(article: Article, budget: int = 60) -> str:
    """Standfirst then lead, without saying the same thing twice, trimmed to ``budget`` words."""
    parts = [p for p in (article.standfirst.strip(), article.lead.strip()) if p]
    if len(parts) == 2 and near_duplicate(parts[0], parts[1]):
        parts = [max(parts, key=len)]
    if not parts:
        return ""
    first = trim(parts[0], budget)
    used = len(first.split())
    if len(parts) == 1 or first.endswith(ELLIPSIS) or used >= budget - 5:
        return first
    rest = trim(parts[1], budget - used)
    # A lead cut to a fragment adds little; stop at the standfirst instead.
    if rest.endswith(ELLIPSIS) and len(rest.split()) < 12:
        return first
    return f"{first} {rest}"


def summarize(article: Article, budget: int = 60) -> Item:
    """The ``Item`` that stands for ``article`` in an issue."""
    return Item(
        title=article.headline,
        summary=summary_text(article, budget),
        url=article.url,
        image=article.image,
        image_alt=article.image_alt,
        section=article.section,
        published=article.published,
    )
