"""Rendering: an ``Issue`` becomes subject, preheader, HTML and plain text, once.

Jinja2 renders ``issue.mjml`` (autoescaped, strict) and the ``mjml`` package compiles
it to HTML; ``issue.txt`` gives the plain-text part. Per-recipient values are not
known here: the templates print ``slot.<name>``, which renders a unique token that
``digest.personalize`` later replaces in the built bytes.

The subject is the newsletter's ``subject`` template (by default the top headline cut to
``SUBJECT_LIMIT`` characters); the preheader (inbox preview line) is the newsletter's
``preheader`` or the headlines the subject does not show. Images get a box from their
own size (``image_box``). The compiled HTML keeps ``<style>`` for media queries and dark
mode only: MJML's reset stylesheet is dropped, since the template writes all it needs
inline for the clients that ignore ``<style>``.

``Renderer.fit`` keeps an issue under the newsletter's HTML budget (``max_html_kb``,
80 KB by default; Gmail clips a message whose HTML passes 102 KB): it drops the
lowest-priority items (the end of the email order: oldest of the last section
first) until the HTML fits, never the footer, and says so in ``Rendered.notes``.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from dataclasses import dataclass, replace
from datetime import date
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import nh3
from jinja2.sandbox import SandboxedEnvironment
from markdown_it import MarkdownIt
from markupsafe import Markup
from mjml import mjml_to_html

from .config import Config, NewsletterConfig
from .errors import RenderError
from .models import Issue, Item, Rendered, Section

# The per-recipient values a template may use; personalize fills each one in.
SLOTS = ("greeting", "unsubscribe_url", "preferences_url")
# Bytes a slot may take once filled in, counted when checking an issue's size.
SLOT_ALLOWANCE = {"greeting": 80, "unsubscribe_url": 200, "preferences_url": 200}
# Content width of the email: 600 px body minus 24 px padding on each side.
COLUMN = 552
GMAIL_CLIP_BYTES = 102 * 1024
# Image boxes: the top story's image spans the column at most, the others are thumbnails;
# a portrait image never fills a phone screen.
TOP_IMAGE_MAX_HEIGHT = 320
THUMBNAIL_WIDTH = 160
THUMBNAIL_MAX_HEIGHT = 120
# The default subject is the top headline, cut to what an inbox line shows.
SUBJECT_LIMIT = 60
ELLIPSIS = "…"
# Invisible characters after the preheader, so that inbox previews do not run on into
# the greeting and masthead text that follow it.
PREHEADER_FILLER = Markup("&#847;&zwnj;&nbsp;" * 40)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_RTL = frozenset({"ar", "arc", "ckb", "dv", "fa", "he", "ks", "ps", "sd", "ug", "ur", "yi"})

_PACKAGE_TEMPLATES = Path(__file__).parent / "templates" / "email"
_SOURCE_TEMPLATES = Path(__file__).parent.parent / "templates" / "email"


def default_template_dir() -> Path:
    """``templates/email`` of a source checkout, or the copy packed into the wheel."""
    return _SOURCE_TEMPLATES if _SOURCE_TEMPLATES.is_dir() else _PACKAGE_TEMPLATES


def one_line(text: str) -> str:
    """``text`` on one line: control characters dropped, every run of whitespace (CR, LF
    and Unicode line separators included) folded to one space."""
    return " ".join(_CONTROL.sub(" ", text).split())


def http_url(url: str | None) -> str:
    """``url`` when it is an absolute http(s) URL, else "" (no ``javascript:``, ``data:``...)."""
    if not url:
        return ""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return ""
    return url.strip()


@dataclass(frozen=True, slots=True)
class UiText:
    """The fixed words of the email in one language (templates print ``t.<name>``)."""

    top_story: str
    read_more: str
    in_this_issue: str
    back_to_top: str
    issue: str
    view_in_browser: str
    unsubscribe_from: str
    manage_preferences: str
    why: str
    greeting: str
    greeting_anonymous: str
    months: tuple[str, ...]
    date_format: str

    def date(self, day: date) -> str:
        """``day`` written out the way this language does (``23 November 2026``)."""
        return self.date_format.format(day=day.day, month=self.months[day.month - 1], year=day.year)

    def greet(self, name: str) -> str:
        """The greeting line for a reader called ``name`` ("" when unknown)."""
        name = " ".join(name.split())
        return self.greeting.format(name=name) if name else self.greeting_anonymous


UI_TEXT: dict[str, UiText] = {
    "en": UiText(
        top_story="Top story",
        read_more="Read more",
        in_this_issue="In this issue",
        back_to_top="Back to the top ↑",
        issue="Issue",
        view_in_browser="View this issue in your browser",
        unsubscribe_from="Unsubscribe from",
        manage_preferences="Manage your email preferences",
        why="You are receiving {title} because you subscribed to it.",
        greeting="Hi {name},",
        greeting_anonymous="Hello,",
        months=tuple(
            "January February March April May June July August September October "
            "November December".split()
        ),
        date_format="{day} {month} {year}",
    ),
    "fr": UiText(
        top_story="À la une",
        read_more="Lire la suite",
        in_this_issue="Dans ce numéro",
        back_to_top="Retour en haut ↑",
        issue="Numéro",
        view_in_browser="Voir ce numéro dans votre navigateur",
        unsubscribe_from="Se désabonner de",
        manage_preferences="Gérer vos préférences",
        why="Vous recevez {title} parce que vous y êtes abonné.",
        greeting="Bonjour {name},",
        greeting_anonymous="Bonjour,",
        months=tuple(
            "janvier février mars avril mai juin juillet août septembre octobre "
            "novembre décembre".split()
        ),
        date_format="{day} {month} {year}",
    ),
    "de": UiText(
        top_story="Topthema",
        read_more="Weiterlesen",
        in_this_issue="In dieser Ausgabe",
        back_to_top="Zurück nach oben ↑",
        issue="Ausgabe",
        view_in_browser="Diese Ausgabe im Browser ansehen",
        unsubscribe_from="Abmelden von",
        manage_preferences="E-Mail-Einstellungen verwalten",
        why="Sie erhalten {title}, weil Sie den Newsletter abonniert haben.",
        greeting="Hallo {name},",
        greeting_anonymous="Hallo,",
        months=tuple(
            "Januar Februar März April Mai Juni Juli August September Oktober "
            "November Dezember".split()
        ),
        date_format="{day}. {month} {year}",
    ),
    "es": UiText(
        top_story="Destacado",
        read_more="Leer más",
        in_this_issue="En este número",
        back_to_top="Volver arriba ↑",
        issue="Número",
        view_in_browser="Ver este número en el navegador",
        unsubscribe_from="Darse de baja de",
        manage_preferences="Gestionar sus preferencias",
        why="Recibe {title} porque se suscribió.",
        greeting="Hola, {name}:",
        greeting_anonymous="Hola:",
        months=tuple(
            "enero febrero marzo abril mayo junio julio agosto septiembre octubre "
            "noviembre diciembre".split()
        ),
        date_format="{day} de {month} de {year}",
    ),
}


def ui_text(language: str) -> UiText:
    """The email's fixed words for ``language`` (``fr-CA`` -> French); English otherwise."""
    return UI_TEXT.get(language.split("-")[0].split("_")[0].lower(), UI_TEXT["en"])


def image_url(url: str | None) -> str:
    """``url`` when it is an absolute https URL, else "": an http image is mixed content
    that clients block or warn about, and anything else is not an image we can link."""
    url = http_url(url)
    return url if url[:8].lower() == "https://" else ""


def text_direction(language: str) -> str:
    """``rtl`` for a right-to-left language tag (``ar``, ``he-IL``...), else ``ltr``."""
    return "rtl" if language.split("-")[0].split("_")[0].lower() in _RTL else "ltr"


def html_size(rendered: Rendered) -> int:
    """Bytes of ``rendered.html`` once filled in for a recipient (slots at their allowance)."""
    size = len(rendered.html.encode("utf-8"))
    for name, token in rendered.slots:
        size += rendered.html.count(token) * (SLOT_ALLOWANCE.get(name, 100) - len(token))
    return size


def keep_first(issue: Issue, count: int) -> Issue:
    """``issue`` with only its first ``count`` items in email order (empty sections go)."""
    top = issue.top if issue.top and count > 0 else None
    left = count - (1 if top else 0)
    sections = []
    for section in issue.sections:
        if left <= 0:
            break
        sections.append(Section(section.name, section.items[:left]))
        left -= len(section.items[:left])
    return replace(issue, top=top, sections=tuple(sections))


def wrap(text: str, width: int = 78, indent: str = "") -> str:
    """Plain text wrapped at ``width`` columns; long words and URLs are never broken."""
    return textwrap.fill(
        one_line(text),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word to at most ``limit`` characters (plus "…")."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    return text[: limit + 1].rsplit(" ", 1)[0].rstrip(" ·;,:") + ELLIPSIS


def preheader_text(issue: Issue, subject: str = "", limit: int = 140) -> str:
    """The inbox preview line: what ``subject`` does not already say, i.e. the issue's
    first headlines except one the subject shows (in full or cut), cut at a word
    within ``limit``."""
    said = one_line(subject).casefold()
    titles = [
        item.title
        for item in issue.items
        if shorten(item.title, SUBJECT_LIMIT).rstrip(ELLIPSIS).casefold() not in said
    ]
    return shorten(" · ".join(titles[:4]), limit)


@dataclass(frozen=True, slots=True)
class ImageBox:
    """The size an item's image is shown at: ``width`` and ``height`` attributes (height
    None when the image's size is unknown) and the height it may never pass."""

    width: int
    height: int | None
    max_height: int


def image_box(item: Item, top: bool) -> ImageBox:
    """How big ``item``'s image is shown: the top story's within the column and
    ``TOP_IMAGE_MAX_HEIGHT``, the others' within ``THUMBNAIL_WIDTH`` x
    ``THUMBNAIL_MAX_HEIGHT``; the image's own proportions, and never larger than the
    image itself (no upscaling). With the size unknown the box is the full width
    allowed and the template keeps the image at its own size within it (CSS)."""
    max_width, max_height = (
        (COLUMN, TOP_IMAGE_MAX_HEIGHT) if top else (THUMBNAIL_WIDTH, THUMBNAIL_MAX_HEIGHT)
    )
    width, height = item.image_width, item.image_height
    if not width or not height:
        return ImageBox(max_width, None, max_height)
    scale = min(1.0, max_width / width, max_height / height)
    return ImageBox(max(1, round(width * scale)), max(1, round(height * scale)), max_height)


@dataclass(frozen=True, slots=True)
class Links:
    """Issue-wide URLs built from ``base_url``."""

    archive: str
    subscribe: str


def issue_links(base_url: str, issue: Issue) -> Links:
    """Where "view in browser" and "subscribe" point for ``issue``."""
    name = quote(issue.newsletter, safe="")
    return Links(
        archive=f"{base_url}/archive/{name}/{issue.number}",
        subscribe=f"{base_url}/subscribe/{name}",
    )


def slot_tokens(issue: Issue) -> dict[str, str]:
    """A token per slot, fixed for the issue, that article text cannot guess.

    It is derived from the issue's content, so the same issue renders the same bytes
    (golden files, preview == send), while a page author cannot plant a token in an
    article without knowing every other item of the issue in advance.
    """
    digest = hashlib.sha256(
        "\n".join([issue.newsletter, str(issue.number)] + [i.url for i in issue.items]).encode()
    ).hexdigest()[:16]
    return {name: f"x{digest}{name.replace('_', '')}x" for name in SLOTS}


# MJML's reset stylesheet (body margin, paragraph margins, image borders...): the template
# sets all of it inline, since Gmail with a non-Google account drops <style>, so the
# HTML keeps <style> only for media queries and dark mode.
_MJML_RESET = re.compile(r'<style type="text/css">\s*#outlook a \{[^<]*</style>\s*')
_BODY = '<body style="'
_BODY_RESET = "margin:0;padding:0;-webkit-text-size-adjust:100%;-ms-text-size-adjust:100%;"
_MJ_TEXT = re.compile(r"(<mj-text\b[^>]*(?<!/)>)(.*?)(</mj-text>)", re.S)


def compile_mjml(source: str) -> str:
    """The HTML of an MJML document; ``RenderError`` when MJML reports an error.

    The content of each ``<mj-text>`` is HTML that MJML copies through unchanged (an
    "ending tag"), yet the Python compiler parses and re-serialises it, which is most of
    its time on a long issue. So that content is set aside behind a placeholder while
    MJML compiles the layout, then put back as written.

    MJML's reset stylesheet (``#outlook a``, ``body``, ``p``, ``img`` rules) is dropped
    and the body's margin set inline: a template states inline what it needs, so a
    client without ``<style>`` shows what every other client shows.
    """
    blocks: list[str] = []
    tag = hashlib.sha256(source.encode()).hexdigest()[:12]

    def set_aside(match: re.Match[str]) -> str:
        block = match.group(2)
        # The template's indentation is only bytes on the wire (outside <pre>).
        if "<pre" not in block.lower():
            block = re.sub(r"\n[ \t]+", "\n", block).strip()
        blocks.append(block)
        return f"{match.group(1)}mjtext{tag}n{len(blocks) - 1}x{match.group(3)}"

    try:
        result = mjml_to_html(_MJ_TEXT.sub(set_aside, source))
    except ValueError as exc:  # the compiler raises on a document it cannot read at all
        raise RenderError(f"The MJML template does not compile: {exc}") from None
    if result.errors:
        raise RenderError(f"The MJML template does not compile: {result.errors[0]}.")
    html = _MJML_RESET.sub("", result.html, count=1).replace(_BODY, _BODY + _BODY_RESET, 1)
    return re.sub(rf"mjtext{tag}n(\d+)x", lambda m: blocks[int(m.group(1))], html)


def _environment(template_dir: Path | None, *, autoescape: bool) -> jinja2.Environment:
    search = [str(template_dir)] if template_dir else []
    search.append(str(default_template_dir()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap
    env.filters["http_url"] = http_url
    env.filters["image_url"] = image_url
    env.filters["one_line"] = one_line
    return env


# The editor's note: CommonMark without raw HTML, then sanitised again (a note may be
# pasted from anywhere), links to the web and mail only.
_markdown = MarkdownIt("commonmark", {"html": False})
_NOTE_TAGS = {"p", "a", "em", "strong", "code", "ul", "ol", "li", "blockquote", "br", "h3", "h4"}


def note_html(note: str) -> Markup:
    """The editor's note (Markdown) as sanitised HTML: CommonMark without raw HTML,
    cleaned by ``nh3`` to a few text tags and http(s)/mailto links."""
    if not note.strip():
        return Markup("")
    html = _markdown.render(note)
    return Markup(
        nh3.clean(
            html,
            tags=_NOTE_TAGS,
            attributes={"a": {"href"}},
            url_schemes={"http", "https", "mailto"},
            link_rel="noopener",
        ).strip()
    )


def note_text(note: str, width: int = 78) -> str:
    """The editor's note (Markdown) as plain text for the text part: paragraphs wrapped
    at ``width``, list items with "- ", a link's URL in brackets after its words."""
    blocks: list[str] = []
    prefix = ""
    for token in _markdown.parse(note):
        if token.type == "list_item_open":
            prefix = "- "
        elif token.type == "inline":
            words: list[str] = []
            href = ""
            for child in token.children or ():
                if child.type in ("text", "code_inline"):
                    words.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    words.append(" ")
                elif child.type == "link_open":
                    href = str(child.attrs.get("href", ""))
                elif child.type == "link_close" and href:
                    words.append(f" <{href}>")
            text = "".join(words)
            blocks.append(wrap(prefix + text, width) if text.strip() else "")
            prefix = ""
    return "\n\n".join(block for block in blocks if block)


def with_review_box(rendered: Rendered, *, intro: str, approve_url: str, open_url: str) -> Rendered:
    """``rendered`` with a box on top for a reviewer: ``intro`` (one sentence) and
    links to approve the issue and to open it in the web app. The rest of the email
    is as readers get it."""
    link = "color:#0b5cad;display:inline-block;padding:10px 0;line-height:24px;font-weight:bold"
    box = (
        '<div role="note" style="margin:0 auto;max-width:552px;padding:12px 24px;'
        "background:#fff8c5;border:2px solid #d4a72c;font:15px/1.5 Georgia,serif;"
        f'color:#1f2328"><p style="margin:0">{escape(intro)}</p><p style="margin:0">'
        f'<a href="{escape(approve_url)}" style="{link}">Approve this issue</a> · '
        f'<a href="{escape(open_url)}" style="{link}">Open it in the web app to edit</a>'
        "</p></div>"
    )
    html = rendered.html
    start = html.find(">", html.find("<body")) + 1
    text = (
        f"{wrap(intro)}\n\nApprove this issue:\n{approve_url}\n\n"
        f"Open it in the web app to edit:\n{open_url}\n\n{'=' * 78}\n\n"
    )
    return replace(rendered, html=html[:start] + box + html[start:], text=text + rendered.text)


_subject_env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


class Renderer:
    """Renders issues of one newsletter; templates are loaded once and reused."""

    def __init__(self, config: Config, newsletter: NewsletterConfig) -> None:
        self.config = config
        self.newsletter = newsletter
        self.text = ui_text(newsletter.language)
        template_dir = Path(newsletter.template_dir) if newsletter.template_dir else None
        try:
            self._html = _environment(template_dir, autoescape=True).get_template("issue.mjml")
            self._text = _environment(template_dir, autoescape=False).get_template("issue.txt")
            self._subject = _subject_env.from_string(newsletter.subject)
        except jinja2.TemplateNotFound as exc:
            where = template_dir or default_template_dir()
            raise RenderError(f"The email template '{exc.name}' is not in {where}.") from None
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(
                f"{exc.filename or 'the subject'}: line {exc.lineno}: {exc.message}"
            ) from None

    def subject(self, issue: Issue) -> str:
        """The subject line: the newsletter's subject template, on one line.

        The template's ``top_headline`` is the first item's headline cut at a word to
        ``SUBJECT_LIMIT`` characters (the default subject is just that: the From name
        already says which newsletter it is)."""
        if issue.subject:  # the editor's own (digest.editorial)
            return one_line(issue.subject)
        top = issue.items[0].title if issue.items else ""
        # Titles are untrusted: whitespace (CR/LF included) folds before it reaches the
        # template, and the result is folded again in case the template adds any.
        try:
            text = self._subject.render(
                title=issue.title,
                number=issue.number,
                date=issue.date,
                top_headline=shorten(top, SUBJECT_LIMIT),
            )
        except jinja2.TemplateError as exc:
            raise RenderError(f"The subject template cannot be rendered: {exc}.") from None
        return one_line(text)

    def render(self, issue: Issue) -> Rendered:
        """Subject, preheader, HTML and text of ``issue``, with slot tokens for recipients."""
        tokens = slot_tokens(issue)
        subject = self.subject(issue)
        preheader = one_line(self.newsletter.preheader) or preheader_text(issue, subject)
        context: dict[str, Any] = {
            "issue": issue,
            "newsletter": self.newsletter,
            "top": issue.top,
            "sections": issue.sections,
            "dir": text_direction(self.newsletter.language),
            "column": COLUMN,
            "image_box": image_box,
            "links": issue_links(self.config.base_url, issue),
            "preheader": preheader,
            "preheader_filler": PREHEADER_FILLER,
            "slot": tokens,
            "t": self.text,
            "date": self.text.date(issue.date),
            "note_html": note_html(issue.note),
            "note_text": note_text(issue.note),
        }
        try:
            mjml = self._html.render(context)
            text = self._text.render(context)
        except jinja2.TemplateError as exc:
            raise RenderError(f"The email template failed: {exc}.") from None
        html = re.sub(r"\n\s*\n+", "\n", compile_mjml(mjml))
        return Rendered(
            subject=subject,
            preheader=preheader,
            html=html,
            text=text,
            slots=tuple(tokens.items()),
        )

    def fit(self, issue: Issue) -> tuple[Issue, Rendered]:
        """``issue`` rendered within ``max_html_kb``, dropping its lowest-priority items
        when it would go over; returns the issue actually rendered (the dropped items
        are not in it, so they stay unsent) and its ``Rendered`` with a note saying what
        was dropped. An issue whose first item alone is too big is returned whole with
        a note, since an email with no item helps nobody."""
        budget = self.newsletter.max_html_kb * 1024
        rendered = self.render(issue)
        total = len(issue.items)
        if html_size(rendered) <= budget or total <= 1:
            return issue, rendered
        # Binary search for the most items that fit: size grows with every item.
        low, high, best = 1, total - 1, None
        while low <= high:
            middle = (low + high) // 2
            candidate = keep_first(issue, middle)
            attempt = self.render(candidate)
            if html_size(attempt) <= budget:
                low, best = middle + 1, (candidate, attempt)
            else:
                high = middle - 1
        if best is None:
            note = (
                f"The HTML is {html_size(rendered) // 1024} KB, over the "
                f"{self.newsletter.max_html_kb} KB budget, even with one item; "
                "Gmail clips messages over 102 KB."
            )
            return issue, replace(rendered, notes=(*rendered.notes, note))
        kept, fitted = best
        dropped = issue.items[len(kept.items) :]
        titles = "; ".join(f"“{item.title}”" for item in dropped)
        note = (
            f"Dropped {len(dropped)} lowest-priority item(s) to keep the HTML under "
            f"{self.newsletter.max_html_kb} KB (Gmail clips messages over 102 KB); they "
            f"stay unsent for the next issue: {titles}."
        )
        return kept, replace(fitted, notes=(*fitted.notes, note))
