"""Summaries: an article's standfirst and lead paragraph, within a word budget.

Contract of ``summary_text``:

* a dateline that opens the standfirst or the lead ("STOCKHOLM, Nov 18 (Northlight) —",
  "LONDON —", "Lyon (AFP) -") belongs to the article, not to its summary: it is
  dropped and the summary starts after it;
* standfirst, then lead paragraph; when one restates the other (near-duplicate
  wording) only the fuller one is used; with neither, the feed's summary, then the
  article's first paragraph;
* at most ``budget`` words, cut at the last sentence end inside the budget so the
  summary reads as whole sentences; with no sentence end in the last two thirds of
  the budget the cut is mid-sentence, at a word, and an ellipsis ("…") marks it. No
  ellipsis is added where nothing was cut;
* abbreviations of the article's language (English, French, German, Spanish:
  "U.S.", "Dr.", "Nov.", "M.", "Mme.", "z. B.", "Sr.", "EE. UU.") and initials
  ("J. Smith") do not end a sentence; German ordinals ("am 3. Oktober") neither.

Input may be HTML (feed summaries often are): tags are dropped, entities decoded.
"""

from __future__ import annotations

import html
import re

from .models import Article, Item

ELLIPSIS = "…"

_COMMON = """
no nos vol pp fig approx ca cf etc vs e.g i.e a.m p.m
jan feb mar apr jun jul aug sep sept oct nov dec
""".split()

# Abbreviations after which a full stop does not end a sentence (lower-cased, no final dot).
ABBREVIATIONS: dict[str, frozenset[str]] = {
    "en": frozenset(
        _COMMON
        + """
        mr mrs ms dr prof sr jr st mt gen col lt sgt capt gov sen rep rev fr hon pres
        inc ltd co corp dept univ est u.s u.k u.n e.u a.k.a ph.d
        """.split()
    ),
    "fr": frozenset(
        _COMMON
        + """
        mm mme mmes mlle mlles dr pr me mgr st ste env av apr j.-c ex
        janv févr avr juil sept déc
        """.split()
    ),
    "de": frozenset(
        _COMMON
        + """
        dr prof hr fr bzw usw z.b d.h u.a s.o s.u vgl ggf evtl inkl nr str bspw sog jh
        """.split()
    ),
    "es": frozenset(
        _COMMON
        + """
        sr sra srta sres dr dra dña ud uds lic ing av pág núm art ee uu
        ene abr ago dic
        """.split()
    ),
}

_WORD = re.compile(r"\S+")
_CLOSERS = "\"'”’»)]"
_OPENERS = "\"'“‘«([¿¡"
_TERMINAL = re.compile(rf"[.!?…][{re.escape(_CLOSERS)}]*$")
_TAG = re.compile(r"<[^>]*>")
# A dateline: a place in capitals, or any place followed by an agency in brackets; then
# an optional date after a comma, the optional agency, and a dash.
_UPPER = "A-ZÀ-ÖØ-ÞĀ-Ž"
_DATE = r"(?:,\s*[^,—–()]{0,20}\d[^,—–()]{0,16})?"
_DATELINE = re.compile(
    rf"^(?:[{_UPPER}][{_UPPER}'’.-]{{2,}}(?: [{_UPPER}][{_UPPER}'’.-]*){{0,3}}{_DATE}(?:\s*\([^()]{{1,40}}\))?"
    rf"|[^\W\d_][\w'’. -]{{0,30}}{_DATE}\s*\([^()]{{1,40}}\))"
    r"\s*[—–-]{1,2}\s+(?=\S)"
)


def plain(text: str) -> str:
    """``text`` with HTML tags dropped, entities decoded and whitespace folded."""
    if "<" in text or "&" in text:
        text = html.unescape(_TAG.sub(" ", text))
    return " ".join(text.split())


def without_dateline(text: str) -> str:
    """``text`` without the dateline that opens it, if any (see the module docstring)."""
    return _DATELINE.sub("", text, count=1)


def abbreviations(language: str) -> frozenset[str]:
    """The abbreviations of ``language`` (``fr-CA`` -> French); English when unknown."""
    return ABBREVIATIONS.get(language.split("-")[0].split("_")[0].lower(), ABBREVIATIONS["en"])


def _starts_sentence(token: str) -> bool:
    first = token.lstrip(_OPENERS)[:1]
    return not first or first.isupper() or first.isdigit() or token[:1] in "¿¡«“\"'‘"


def _is_sentence_end(
    token: str, next_token: str | None, known: frozenset[str], language: str
) -> bool:
    if not _TERMINAL.search(token):
        return False
    if next_token is not None and not _starts_sentence(next_token):
        return False
    core = token.rstrip(_CLOSERS)
    if core.endswith("."):
        bare = core.rstrip(".").lstrip(_OPENERS).lower()
        if bare in known:
            return False
        # A single letter with a dot is an initial ("J. Smith") or part of an
        # abbreviation written with spaces ("z. B.", "d. h."), not a sentence end.
        if re.fullmatch(r"[^\W\d_]", bare):
            return False
        # German writes ordinals with a dot: "am 3. Oktober", "im 19. Jahrhundert".
        if language == "de" and bare.isdigit():
            return False
    return True


def trim(text: str, budget: int, language: str = "en") -> str:
    """``text`` cut to at most ``budget`` words, at the last sentence end inside the budget.

    Whole text (whitespace folded) when it fits. With no sentence end in the later
    two thirds of the budget the cut is at a word and ends with an ellipsis.
    """
    tokens = _WORD.findall(text)
    if len(tokens) <= budget:
        return " ".join(tokens)
    lang = language.split("-")[0].lower()
    known = abbreviations(lang)
    last_end = 0
    for i in range(budget):
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if _is_sentence_end(tokens[i], following, known, lang):
            last_end = i + 1
    # A sentence end in the first third would leave a summary too short to be useful.
    if last_end and last_end >= budget // 3:
        return " ".join(tokens[:last_end])
    return " ".join(tokens[:budget]).rstrip(",;:—–-") + ELLIPSIS


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def near_duplicate(a: str, b: str, threshold: float = 0.8) -> bool:
    """True when most words of the shorter text are in the longer one."""
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return False
    small, large = (ta, tb) if len(ta) <= len(tb) else (tb, ta)
    return len(small & large) / len(small) >= threshold


def summary_text(
    article: Article, budget: int = 60, *, fallback: str = "", language: str = ""
) -> str:
    """The summary of ``article`` (see the module docstring for the contract).

    ``fallback`` is the feed's summary, used when the page gave neither standfirst nor
    lead; ``language`` applies when the article does not declare its own.
    """
    lang = article.language or language or "en"
    openings = (without_dateline(plain(text)) for text in (article.standfirst, article.lead))
    parts = [p for p in openings if p]
    if len(parts) == 2 and near_duplicate(parts[0], parts[1]):
        parts = [max(parts, key=len)]
    if not parts:
        first_paragraph = plain(article.paragraphs[0]) if article.paragraphs else ""
        parts = [p for p in (without_dateline(plain(fallback) or first_paragraph),) if p]
    if not parts:
        return ""
    first = trim(parts[0], budget, lang)
    used = len(first.split())
    if len(parts) == 1 or first.endswith(ELLIPSIS) or used >= budget - 5:
        return first
    rest = trim(parts[1], budget - used, lang)
    # A lead cut to a fragment adds little; stop at the standfirst instead.
    if rest.endswith(ELLIPSIS) and len(rest.split()) < 12:
        return first
    return f"{first} {rest}"


def summarize(
    article: Article, budget: int = 60, *, fallback: str = "", language: str = ""
) -> Item:
    """The ``Item`` that stands for ``article`` in an issue. Titles are made plain text."""
    return Item(
        title=plain(article.headline),
        summary=summary_text(article, budget, fallback=fallback, language=language),
        url=article.url,
        image=article.image,
        image_alt=plain(article.image_alt),
        image_width=article.image_width if article.image else None,
        image_height=article.image_height if article.image else None,
        section=plain(article.section),
        published=article.published,
    )
