"""Frozen values passed between the stages of the pipeline.

Each stage takes values of one kind and returns values of the next; none of them
is mutated after it is built. Configuration values (``Newsletter`` and friends) live
in ``digest.config``; database rows live in ``digest.store``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

# One vocabulary for a delivery: what a backend reports and what the ledger keeps.
from .store.status import DeliveryStatus as DeliveryStatus


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
    #: The picture's intrinsic size as the page declares it (``None``: not declared).
    image_width: int | None = None
    image_height: int | None = None

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
            "image_width": self.image_width,
            "image_height": self.image_height,
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
    repeated in its section. ``note`` is the editor's note (Markdown, shown above the
    first item) and ``subject`` the editor's subject line ("" for the newsletter's
    subject template); both are set only by an editorial review (``digest.editorial``).
    """

    newsletter: str
    title: str
    number: int
    date: date
    sections: tuple[Section, ...]
    top: Item | None = None
    note: str = ""
    subject: str = ""

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


class Slot:
    """The names of the per-recipient values an issue leaves open (``Rendered.slots``):
    the one list of them, which rendering, personalisation and backends share.

    Plain strings rather than an enum: they key the dictionaries filled for every
    recipient, where an enum's Python-level hash halves the speed of ``build``.
    """

    GREETING: Final = "greeting"
    UNSUBSCRIBE_URL: Final = "unsubscribe_url"
    PREFERENCES_URL: Final = "preferences_url"
    ALL: Final = (GREETING, UNSUBSCRIBE_URL, PREFERENCES_URL)


@dataclass(frozen=True, slots=True)
class Content:
    """What a message is for every recipient of it, built once per issue by
    ``MessageFactory`` and shared by all its ``Message`` values.

    ``text`` and ``html`` (``""`` for a text-only message) carry the token of each
    slot (``slots``: name -> token) where a recipient's value goes;
    ``text_with``/``html_with`` swap the tokens for a provider's placeholders, named
    after the keys of ``Message.values``: the slot's name in the text, ``<name>_html``
    (the value HTML-escaped) in the HTML. ``sender`` is the From header; ``headers``
    are the ones every recipient gets besides From, To, Subject, Reply-To, Date and
    the MIME headers (List-Id, List-Unsubscribe-Post, ...).
    """

    sender: str
    subject: str
    reply_to: str | None
    text: str
    html: str
    slots: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

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
class Message:
    """One recipient's message, in the two forms backends take, built together once.

    ``data`` is the complete MIME message (SMTP, outbox, raw-MIME APIs). The same
    message as fields, for JSON APIs: the shared ``content``, the recipient's display
    ``name``, their value of each slot (``slot_values``, as shown in the text; see
    ``values``) and the ``headers`` that differ per recipient (Message-ID,
    List-Unsubscribe); ``text``, ``html`` and ``all_headers`` put them together. No
    backend parses ``data``.

    ``recipient`` is the address recorded for the subscriber and the only one any
    backend sends to (SMTP envelope, API recipient field); ``sender`` is the envelope
    sender (a bare address).
    """

    subscriber_id: int
    recipient: str
    sender: str
    message_id: str
    data: bytes
    content: Content
    name: str = ""
    slot_values: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    #: ``data`` ends every line in CRLF and starts none with ".": SMTP's DATA sends it
    #: as it is (``MessageFactory`` builds messages so); otherwise it is checked first.
    smtp_ready: bool = False

    @property
    def values(self) -> tuple[tuple[str, str], ...]:
        """A value for each of ``content.keys``: each slot's value, and HTML-escaped
        under ``<slot>_html``."""
        return tuple(
            pair
            for key, value in self.slot_values
            for pair in ((key, value), (f"{key}_html", html.escape(value)))
        )

    @property
    def text(self) -> str:
        """The text body as this recipient gets it."""
        return self.content.text_with(dict(self.values).__getitem__)

    @property
    def html(self) -> str:
        """The HTML body as this recipient gets it (``""`` for a text-only message)."""
        return self.content.html_with(dict(self.values).__getitem__)

    @property
    def all_headers(self) -> tuple[tuple[str, str], ...]:
        """Every header besides From, To, Subject, Reply-To, Date and the MIME ones."""
        return self.content.headers + self.headers


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a backend reports for one message: ``status`` ``SENT``, ``TRANSIENT`` (may be
    retried) or ``FAILED`` (never is). ``bounced``: the address does not exist.
    ``refused``: the failure says nothing about the recipient (a policy refusal, or the
    server unreachable); dispatch never settles a row failed for it."""

    subscriber_id: int
    recipient: str
    status: DeliveryStatus
    provider_id: str = ""
    error: str = ""
    bounced: bool = False
    refused: bool = False
