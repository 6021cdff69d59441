"""Telling article prose from boilerplate: class-name verdicts on blocks, labels and credits in text."""

from __future__ import annotations

import re
from functools import lru_cache

from selectolax.lexbor import LexborNode

# A hidden block with a React streaming id (``<div hidden id="S:0">``) is no hidden text:
# it holds the page's server-rendered content until a script moves it into place.
DROP_TAGS = (
    "script, style, template, noscript, svg, iframe, object, embed, canvas, button, select, "
    "textarea, input, nav, footer, figure, figcaption, picture, video, audio, dialog, "
    '[hidden]:not([id^="S:"]), [aria-hidden=true]'
)
# Class or id tokens of blocks that are never article text ...
_BOILERPLATE = re.compile(
    r"comment|sidebar|side-bar|footer|related|recommend|promo|newsletter|subscri|signup|"
    r"sign-up|share|sharing|social|advert|^ads?$|^ad[-_]|[-_]ads?$|[-_]ad[-_]|dfp|sponsor|"
    r"byline|author|caption|credit|breadcrumb|^nav|menu|popup|modal|tooltip|popover|cookie|"
    r"keep-?reading|read-?more|more-?stories|outbrain|taboola|donat|toolbar|most-?popular|trending|"
    r"disclaimer|copyright|visually-hidden|sr-only|screen-reader|"
    r"inline-?(?:link|promo|related)|podcast|listen|gallery|slideshow|consent|gdpr|privacy",
    re.I,
)
# ... and tokens that are, unless the same token also names the article body.
_WEAK_BOILERPLATE = re.compile(
    r"tags|topics|teaser|right-?rail|side-?rail|banner|cta|callout|embed|audio|video|photo|"
    r"image|img|figure|timestamp|meta|kicker|eyebrow|rubric|headline|title|dek|"
    r"standfirst|summary|header|masthead",
    re.I,
)
# ... and tokens that end in one of these words, whatever they start with: the last word
# names the block ("article-detail-banner" is a banner). Not "header": "article-header"
# often holds the whole article.
_WEAK_HEAD = re.compile(r"[-_](?:banner|masthead|eyebrow|kicker|rubric)$", re.I)
# ... but a summary, "key takeaways" or intro box is the article's own opening.
_INTRO_BOX = re.compile(r"summary|takeaway|intro|key-?points|tl-?dr", re.I)
_BODY_TOKEN = re.compile(r"body|content|text|article|story|entry|post|prose", re.I)
# Tokens that name the article body itself, whatever else they contain.
_BODY_CLASS = re.compile(
    r"(?:article|entry|post|story|body|main|rich)[-_]*(?:body|content|text)|name-+body|articlebody",
    re.I,
)

# Layout modifiers: "with-sidebar", "layout--has-image", "no-ads"; and the names of the
# layout around the article ("sidebar-layout", "sidebar-content": the content beside it).
_MODIFIER = re.compile(r"(?:^|[-_])(?:with|has|no)[-_]|sidebar[-_]*(?:layout|content)", re.I)

# Paragraph texts that are labels, bylines or calls to action, not article prose.
_NOT_PROSE = re.compile(
    r"^(?:by\s+\S|posted\s+by|written\s+by|words\s+by|photos?\s*(?:by|:)|"
    r"photograph(?:y|s)?\s*(?:by|:)|image\s*(?:by|:)|credit\s*:|illustration\s*(?:by|:)|"
    r"(?:file\s+)?photo\s*[/(]|listen to (?:this|the) (?:article|story)|advertisement|"
    r"advertising|sponsored|read more|keep reading|continue reading|related\s*:|see also|"
    r"sign up|subscribe|support (?:our|us)|donate|follow us|share (?:this|on)|sharing is caring|"
    r"click here|updated\s*:|published\s*:|last updated|this (?:article|story) (?:was|is) "
    r"(?:originally|first) published|all rights reserved|copyright|©)",
    re.I,
)
_CREDIT = re.compile(r"\((?:photo|image|picture|credit)s?(?: by)?:? [^)]*\)\.?$", re.I)
_CREDIT_LABEL = re.compile(
    r"\b(?:photo|foto|bild|image|picture|credit|illustration|photograph)s?\s*:", re.I
)
_BYLINE_START = re.compile(
    r"^\W*(?:(?i:\w+\W+){0,2}(?i:by)|[Vv]on|[Pp]ar|[Pp]or|[Dd]oor|[Aa]v)\s+[^\W\d_]"
)
_CAPTION_END = re.compile(
    r"(?:getty images|reuters|associated press|\bap\b|afp|shutterstock|epa|photo)\)?\.?$",
    re.I,
)


def attr_tokens(node: LexborNode) -> str:
    attrs = node.attributes
    return f"{attrs.get('class') or ''} {attrs.get('id') or ''}".strip()


def is_boilerplate_block(node: LexborNode) -> bool:
    if node.tag in ("html", "body", "main", "article", "p"):
        return False
    return _boilerplate_tokens(attr_tokens(node))


@lru_cache(maxsize=4096)
def _boilerplate_tokens(tokens: str) -> bool:
    """The verdict on a class-and-id string (pages repeat a few of them many times).

    A layout modifier (``with-sidebar``, ``card--has-image``) describes the block, it
    does not make it one; and a block whose classes name the article body is not
    boilerplate for a weak token beside that name (``article-content height-image``).
    """
    split = tokens.split()
    names_body = any(_BODY_CLASS.search(token) for token in split)
    for token in split:
        if _BODY_CLASS.search(token) or _INTRO_BOX.search(token) or _MODIFIER.search(token):
            continue
        if _BOILERPLATE.search(token):
            return True
        if not names_body and _WEAK_BOILERPLATE.search(token) and not _BODY_TOKEN.search(token):
            return True
        if not names_body and _WEAK_HEAD.search(token.split("--")[0]):
            return True  # (a BEM modifier after "--" is not the block's name)
    return False


# Notices a site puts around (often before) its articles: affiliate disclosures,
# newsletter promotions, cookie and rights notices, placeholder text. Read anywhere in
# a short paragraph, not only at its start: they open with the site's own name.
_NOTICE = re.compile(
    r"\b(?:earn|earns|receive|receives|get|make|makes|paid)\b[^.]{0,40}\bcommissions?\b|"
    r"\bcommissions?\b[^.]{0,30}\b(?:at no (?:extra |additional )?cost|qualifying purchases)|"
    r"\baffiliate (?:links?|commissions?|disclosure)|\breader[- ]supported\b|"
    r"\bparticipant in the amazon services|\bpaid promotion\b|"
    r"\bindependently (?:selected|chosen|reviewed) by\b|"
    r"\b(?:sign up|subscribe)\b[^.]{0,40}\bnewsletters?\b|"
    r"\bnewsletters?\b[^.]{0,80}\b(?:to|in) your inbox\b|"
    r"\b(?:we|this (?:web)?site) uses? cookies\b|\blorem ipsum\b|"
    r"\byou have no rights to\b|\bmay not be (?:reproduced|republished)\b|"
    # Government banners ("An official website of the United States government ...").
    r"\bofficial website of the united states government\b|\.gov website|"
    # How the site's own text was written: "This article was created using automation",
    # "All of our content is written by humans".
    r"\b(?:this|our)\b[^.]{0,20}\b(?:article|post|story|content|newsletter|page|review|guide|"
    r"issue)\b[^.]{0,30}\b(?:generated|written|created|produced|drafted)\b[^.]{0,12}"
    r"\b(?:by|using|with)\b[^.]{0,25}\b(?:ai|artificial intelligence|automation|humans?)\b",
    re.I,
)


# One of these is in every notice (in lower case): a cheap test before the long expression.
_NOTICE_WORDS = (
    *("commission", "affiliate", "supported", "amazon", "promotion", "independently"),
    *("newsletter", "cookie", "lorem", "rights", "reproduced", "republished"),
    *("states government", ".gov", "human", "automation", "artificial", " ai"),
)


# A plug for the site's own product that asks the reader a question first: "Looking
# for sales leads? Check out our database ...", "Want to go further? Our course ...".
_PLUG = re.compile(
    r"^(?:looking (?:for|to)|want (?:to|more|the)|need (?:to|more|a|an|help)|"
    r"interested in|ready to)\b[^?!]{0,100}\?\s+"
    r"(?:check out|try|explore|discover|download|sign up|join|get|our)\b",
    re.I,
)


def _has_notice_word(lower: str) -> bool:
    return any(word in lower for word in _NOTICE_WORDS)


@lru_cache(maxsize=8192)  # the body scan asks about the same paragraph several times
def is_prose(text: str) -> bool:
    """True unless the paragraph is a label, byline, credit, call to action or notice."""
    words = len(text.split())
    if words < 70 and _has_notice_word(text.lower()) and _NOTICE.search(text):
        return False
    if words < 60 and _PLUG.match(text):
        return False
    if _NOT_PROSE.match(text) and words < 40:
        return False
    if words < 40 and _CREDIT.search(text):
        return False
    if words < 30 and _CREDIT_LABEL.search(text):
        return False
    if words < 16 and _BYLINE_START.match(text):
        return False
    return not (words < 16 and _CAPTION_END.search(text))


def drop(nodes: list[LexborNode]) -> None:
    # Innermost first, so no node is touched after an ancestor has been freed.
    for node in reversed(nodes):
        node.decompose()


class Boilerplate:
    """Memoised class-name verdicts, so each element is judged once."""

    def __init__(self) -> None:
        self.cache: dict[int, bool] = {}

    def __call__(self, node: LexborNode) -> bool:
        key = node.mem_id
        verdict = self.cache.get(key)
        if verdict is None:
            verdict = self.cache[key] = is_boilerplate_block(node)
        return verdict

    def inside(self, node: LexborNode | None, stop: LexborNode | None, levels: int) -> bool:
        """True when ``node`` or an ancestor below ``stop`` (at most ``levels`` up) is one."""
        stop_key = stop.mem_id if stop is not None else -1
        while node is not None and levels > 0 and node.mem_id != stop_key:
            if node.tag in ("body", "html"):
                return False
            if self(node):
                return True
            node = node.parent
            levels -= 1
        return False


# A caption and its credit run into the paragraph after it when the page puts them in
# one block: "Workers queue at the border [Reuters] The talks resumed ...".
_GLUED_CAPTION = re.compile(
    r"^(?P<caption>[^.!?\[\]()]{10,300}?)\s*[\[(]"
    r"(?i:(?:photo|image|picture|foto|credit)s?\s*(?:by|:)?\s*)?[^\[\]()]{0,40}?"
    r"\b(?i:reuters|getty images|associated press|afp|epa|ap|shutterstock|dpa|anadolu)\b"
    r"[^\[\]()]{0,20}[\])]\s+(?=[\"“‘A-Z])"
)


def without_caption(text: str) -> str:
    """``text`` without a photo caption and credit glued to its start.

    The caption must read like one (four words or more, in lower case too), so a
    wire dateline (``LONDON (Reuters) - ...``) stays.
    """
    head = text[:360]
    m = _GLUED_CAPTION.match(text) if "[" in head or "(" in head else None
    if m is None:
        return text
    caption = m.group("caption")
    if len(caption.split()) < 4 or caption.upper() == caption:
        return text
    return text[m.end() :]
