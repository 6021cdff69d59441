"""Frozen values passed between the stages of the pipeline.

Each stage takes values of one kind and returns values of the next; none of them
is mutated after it is built. Configuration values (``Newsletter`` and friends) live
in ``digest.config``; database rows live in ``digest.store``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class EntryHints:
    """What a feed, sitemap or listing page said about an article before it was fetched.

    Extraction uses these only where the page itself lacks the field.
    """

    title: str = ""
    summary: str = ""
    image: str | None = None
    published: datetime | None = None
    section: str = ""
    guid: str = ""


@dataclass(frozen=True, slots=True)
class Corrections:
    """A source's CSS selectors for its own pages (``extract:`` in schedules.yaml).

    What they name wins over extraction's heuristics: ``headline`` and ``standfirst``
    the first element matched, ``body`` the paragraphs inside every element matched;
    ``drop`` removes elements before anything is read.
    """

    headline: str = ""
    standfirst: str = ""
    body: str = ""
    drop: tuple[str, ...] = ()

    def selectors(self) -> tuple[tuple[str, str], ...]:
        """``(field, selector)`` for every selector given."""
        named = (("headline", self.headline), ("standfirst", self.standfirst), ("body", self.body))
        return (*((f, s) for f, s in named if s), *(("drop", s) for s in self.drop))


@dataclass(frozen=True, slots=True)
class Page:
    """One fetched article page: raw bytes, not yet decoded.

    ``url`` is the address the source listed; ``final_url`` the one after redirects
    (for a local file, its ``file://`` URL unless the source gave a base URL);
    ``corrections`` the source's own selectors for extraction.
    """

    url: str
    final_url: str
    body: bytes
    content_type: str = ""
    hints: EntryHints = field(default_factory=EntryHints)
    source: str = ""
    corrections: Corrections = field(default_factory=Corrections)


@dataclass(frozen=True, slots=True)
class Article:
    """What extraction read from one page.

    ``url`` is the canonical URL (the dedupe key). Text fields are clean text: tags
    dropped, entities decoded, whitespace folded; ``""`` where the page has none.
    ``published`` is timezone-aware or ``None``.
    """

    url: str
    headline: str
    standfirst: str = ""
    lead: str = ""
    paragraphs: tuple[str, ...] = ()
    image: str | None = None
    image_alt: str = ""
    section: str = ""
    published: datetime | None = None
    byline: str = ""
    language: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``published`` as ISO 8601 or ``None``)."""
        return {
            "url": self.url,
            "headline": self.headline,
            "standfirst": self.standfirst,
            "lead": self.lead,
            "paragraphs": list(self.paragraphs),
            "image": self.image,
            "image_alt": self.image_alt,
            "section": self.section,
            "published": self.published.isoformat() if self.published else None,
            "byline": self.byline,
            "language": self.language,
        }


@dataclass(frozen=True, slots=True)
class Item:
    """One article as it appears in an issue: a title, a short summary and a link.

    ``image_width``/``image_height`` are the image's intrinsic size when known; the
    template uses them to reserve the right height before the image loads.
    """

    title: str
    summary: str
    url: str
    image: str | None = None
    image_alt: str = ""
    section: str = ""
    published: datetime | None = None
    image_width: int | None = None
    image_height: int | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """A named group of items, in the order they appear in the email."""

    name: str
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Issue:
    """One edition of a newsletter, its content fixed once composed.

    ``top`` is the optional top story, shown first with a larger treatment and not
    repeated in its section.
    """

    newsletter: str
    title: str
    number: int
    date: date
    sections: tuple[Section, ...]
    top: Item | None = None

    @property
    def items(self) -> tuple[Item, ...]:
        """Every item of the issue, in email order (the top story first)."""
        rest = tuple(item for section in self.sections for item in section.items)
        return (self.top, *rest) if self.top else rest


@dataclass(frozen=True, slots=True)
class Rendered:
    """An issue rendered once: subject, preheader, HTML and text with per-recipient slots.

    ``html`` and ``text`` contain the tokens of ``slots`` (slot name -> token) where
    per-recipient values go; ``digest.personalize`` substitutes them without rendering
    again. ``notes`` are remarks for the preview and run report (e.g. items dropped
    to stay under Gmail's clipping limit).
    """

    subject: str
    preheader: str
    html: str
    text: str
    slots: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A recipient on a list, as the sender sees it."""

    id: int
    email: str
    name: str = ""
    list: str = ""


@dataclass(frozen=True, slots=True)
class Template:
    """What an issue's message is for every recipient, for provider batch APIs that
    fill in each recipient's values themselves (SendGrid substitutions, Mailgun
    recipient variables).

    ``text`` and ``html`` carry the token of each slot (``slots``: name -> token)
    where a recipient's value goes; ``text_with``/``html_with`` swap the tokens for a
    provider's placeholders, named after the keys of ``Personal.values``: the slot's
    name in the text, ``<name>_html`` (the value HTML-escaped) in the HTML.
    ``headers`` are the ones every recipient gets besides From, Subject, Reply-To and
    Date (List-Id, List-Unsubscribe-Post, ...). Built once per issue by
    ``MessageFactory`` and shared by every ``Personal`` of the issue.
    """

    sender: str
    subject: str
    reply_to: str | None
    text: str
    html: str
    slots: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys each recipient needs a value for."""
        return tuple(key for name, _ in self.slots for key in (name, f"{name}_html"))

    def text_with(self, placeholder: Callable[[str], str]) -> str:
        """The text body with each slot token replaced by ``placeholder(key)``."""
        return _swap(self.text, self.slots, placeholder, "")

    def html_with(self, placeholder: Callable[[str], str]) -> str:
        """The HTML body with each slot token replaced by ``placeholder(key)``."""
        return _swap(self.html, self.slots, placeholder, "_html")


def _swap(
    text: str, slots: tuple[tuple[str, str], ...], placeholder: Callable[[str], str], suffix: str
) -> str:
    for name, token in slots:
        text = text.replace(token, placeholder(name + suffix))
    return text


@dataclass(frozen=True, slots=True)
class Personal:
    """One recipient's side of a ``Template``: their display name, a value for each of
    ``template.keys``, and the headers that differ per recipient (Message-ID,
    List-Unsubscribe). Filling ``template`` with ``values`` gives the bodies of the
    MIME message built for the same recipient."""

    template: Template
    name: str
    values: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Message:
    """A complete MIME message for one recipient, ready for a backend.

    ``personal`` is set when the factory was asked for templates (backends whose
    ``wants_templates`` is true): the same message as a shared template and this
    recipient's values, so a provider can fill in a whole batch itself.
    """

    subscriber_id: int
    recipient: str
    sender: str
    message_id: str
    data: bytes
    personal: Personal | None = None
    #: ``data`` ends every line in CRLF and starts none with ".": SMTP's DATA sends it
    #: as it is (``MessageFactory`` builds messages so); otherwise it is checked first.
    smtp_ready: bool = False


class DeliveryStatus(StrEnum):
    """Outcome of one message. ``TRANSIENT`` may be retried; ``FAILED`` never is."""

    SENT = "sent"
    TRANSIENT = "transient"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a backend reports for one message. ``bounced``: the address does not exist."""

    subscriber_id: int
    recipient: str
    status: DeliveryStatus
    provider_id: str = ""
    error: str = ""
    bounced: bool = False
