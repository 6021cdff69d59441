"""Personalisation: one ``Rendered`` issue, many recipients, no re-rendering.

``MessageFactory`` builds the MIME skeleton of an issue once: headers that are the
same for everyone, and both body parts already quoted-printable encoded and cut at
the slot tokens. ``build(subscriber)`` then only encodes the few per-recipient
values and joins bytes, which is what lets a large list go out quickly.

Each message also carries the same content as fields: the issue's shared
``Content`` and the recipient's values and headers, so a JSON API takes the fields
without parsing the MIME, and a provider batch API fills in up to a thousand
recipients from one request instead of taking one MIME message each.

A subscriber's display name never becomes an address: it is written as typed when
it is plain words, and RFC 2047-encoded otherwise (``mailbox``), so that a name such
as ``Zoë, attacker@evil.example, thanks`` reads as one name to every parser, folded
or not. Backends send to ``Message.recipient`` alone, never to a parsed ``To``.

Every message is ``multipart/alternative`` (text/plain, then text/html, UTF-8) with
From, To, Subject, Date, Message-ID, List-Id, List-Unsubscribe (URL, plus mailto
when configured) and List-Unsubscribe-Post (RFC 8058).
"""

from __future__ import annotations

import binascii
import hashlib
import html
import os
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from email import policy
from email.header import Header
from email.utils import format_datetime, parseaddr

from .errors import SubscriberError
from .models import Content, Message, Rendered, Slot, Subscriber

_SMTP = policy.SMTP
_SIMPLE_NAME = re.compile(r"[A-Za-z0-9 .'-]*")


# Text that quoted-printable leaves as it is: short, printable ASCII, no "=", no
# trailing space, no leading ".". Per-recipient values (names, URLs) mostly are, and
# skip the encoder.
_QP_AS_IS = re.compile(r"[!-\-/-<>-~][ !-<>-~]{0,70}[!-<>-~]|[!-\-/-<>-~]?")


def _qp(text: str) -> bytes:
    """``text`` quoted-printable encoded with CRLF line ends, soft breaks included.

    Every piece of a body starts a line, and a "." that starts a line is written "=2E"
    (the same character in quoted-printable), so SMTP never has to double it.
    """
    if _QP_AS_IS.fullmatch(text):
        return text.encode("ascii")
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    # b2a_qp ends its soft line breaks with a bare LF when the input has no CRLF
    # (a one-line value): SMTP needs CRLF everywhere.
    encoded = encoded.replace(b"\r\n", b"\n").replace(b"\n.", b"\n=2E").replace(b"\n", b"\r\n")
    return b"=2E" + encoded[1:] if encoded.startswith(b".") else encoded


def _fold(name: str, value: str) -> bytes:
    # The policy refolds (and so RFC 2047-encodes) only a value too long for one line;
    # a short non-ASCII value (a subject such as "Gdańsk…") goes through the header
    # class, which always encodes.
    return _SMTP.header_factory(name, value).fold(policy=_SMTP).encode("ascii")


def address_domain(address: str) -> str:
    """The domain of an address such as ``Name <user@host>``; ``localhost`` if none."""
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


class _RandomPool(threading.local):
    """Random bytes from the OS drawn 4 KiB at a time: one system call per 256
    Message-IDs instead of one each. Per thread, and emptied in a forked child (a
    worker process), so no two messages ever share bytes."""

    def __init__(self) -> None:
        self.empty()

    def empty(self) -> None:
        self.data, self.used = b"", 0

    def take(self, size: int) -> bytes:
        if self.used + size > len(self.data):
            self.data, self.used = secrets.token_bytes(4096), 0
        self.used += size
        return self.data[self.used - size : self.used]


_POOL = _RandomPool()
os.register_at_fork(after_in_child=_POOL.empty)


def globally_unique_id(key: str, subscriber_id: int, domain: str) -> str:
    """A globally unique Message-ID: ``key`` and the subscriber id say what it is, 128
    random bits make it unique even across a reset database or a staging copy sharing
    the From domain (clients drop a reused Message-ID as a duplicate), and unguessable,
    so a forged bounce cannot name another reader's message."""
    return f"<{key}.{subscriber_id}.{_POOL.take(16).hex()}@{domain}>"


def list_id(newsletter: str, list_name: str, sender: str) -> str:
    """A List-Id (RFC 2919) identifier: ``<newsletter.list.domain>`` in dot-atom form."""
    atom = re.sub(r"[^a-z0-9-]+", "-", f"{newsletter}.{list_name}".lower()).strip("-")
    return f"{atom.replace('-.', '.')}.{address_domain(sender)}"


def check_recipient(email: str) -> None:
    """``SubscriberError`` when ``email`` cannot be put in a header safely."""
    if "\r" in email or "\n" in email or "@" not in email or any(c in email for c in '<>,"\x00'):
        raise SubscriberError(f"'{email!r}' is not a usable email address.")


def _plain_name(name: str) -> bool:
    return _SIMPLE_NAME.fullmatch(name) is not None


def mailbox(name: str, address: str) -> str:
    """``name <address>`` on one line, for an API's recipient field: the display name
    as typed when it is plain words, RFC 2047-encoded otherwise, so that no parser
    reads a second address out of a name holding commas, quotes or "@"."""
    name = " ".join(name.split())
    if not name:
        return address
    if _plain_name(name):
        return f'"{name}" <{address}>'
    return f"{Header(name, 'utf-8').encode(maxlinelen=0)} <{address}>"


def to_header(email: str, name: str) -> bytes:
    """The ``To:`` header line for ``email`` and a display ``name`` with its
    whitespace already folded (written as in ``mailbox``, folded between encoded words
    when long; an internationalised address travels as UTF-8, RFC 6532)."""
    check_recipient(email)
    if not name:
        return f"To: {email}\r\n".encode()
    line = f'To: "{name}" <{email}>\r\n'
    if _plain_name(name) and len(line) <= 80:
        return line.encode()
    encoded = Header(name, "utf-8", header_name="To").encode(linesep="\r\n")
    return f"To: {encoded}\r\n <{email}>\r\n".encode()


class _Part:
    """One body part cut into encoded static pieces and slot names, joined per recipient."""

    def __init__(self, text: str, tokens: dict[str, str]) -> None:
        self.pieces: list[bytes | str] = []
        if not tokens:
            self.pieces.append(_qp(text))
            return
        by_token = {token: name for name, token in tokens.items()}
        pattern = re.compile("|".join(re.escape(t) for t in by_token))
        position = 0
        for match in pattern.finditer(text):
            self._static(text[position : match.start()])
            self.pieces.append(by_token[match.group()])
            position = match.end()
        self._static(text[position:])

    def _static(self, text: str) -> None:
        encoded = _qp(text)
        # A soft line break before each slot keeps every encoded line under 76 columns
        # whatever length the value has.
        if encoded and not encoded.endswith(b"\r\n"):
            encoded += b"=\r\n"
        self.pieces.append(encoded)

    def join(self, values: dict[str, bytes]) -> bytes:
        return b"".join(p if isinstance(p, bytes) else values[p] for p in self.pieces)


class MessageFactory:
    """Builds the message of one issue for each recipient.

    ``links(subscriber)`` returns the recipient's value of each link slot
    (``Slot.UNSUBSCRIBE_URL``, ``Slot.PREFERENCES_URL``); ``message_key`` makes
    Message-IDs unique per issue; ``greet(name)`` writes the greeting line (the
    newsletter's language).
    """

    def __init__(
        self,
        rendered: Rendered,
        *,
        sender: str,
        list_id: str,
        links: Callable[[Subscriber], dict[str, str]],
        message_key: str,
        date: datetime,
        reply_to: str | None = None,
        unsubscribe_mailto: str | None = None,
        subject: str | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        greet: Callable[[str], str] = lambda name: f"Hi {name}," if name else "Hello,",
    ) -> None:
        self.greet = greet
        self.sender = sender
        self.envelope_sender = parseaddr(sender)[1]
        self.links = links
        self.domain = address_domain(sender)
        self.message_key = re.sub(r"[^A-Za-z0-9.-]", "-", message_key)
        tokens = dict(rendered.slots)
        self._text = _Part(rendered.text, tokens)
        self._html = _Part(rendered.html, tokens)
        seed = hashlib.sha256((rendered.html + rendered.text).encode()).hexdigest()[:24]
        self.boundary = f"=={seed}=="
        subject = subject if subject is not None else rendered.subject
        headers = [
            _fold("From", sender),
            _fold("Subject", subject),
            _fold("Date", format_datetime(date)),
            _fold("List-Id", list_id),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            b"MIME-Version: 1.0\r\n",
        ]
        if reply_to:
            headers.append(_fold("Reply-To", reply_to))
        headers.extend(_fold(name, value) for name, value in extra_headers)
        self._headers = b"".join(headers)
        # Folded header lines start with a space and the bodies are quoted-printable
        # (see ``_qp``): only an odd header name could start a line with ".".
        self._smtp_ready = b"\n." not in self._headers and not self._headers.startswith(b".")
        self._body_head = (
            f'Content-Type: multipart/alternative; boundary="{self.boundary}"\r\n\r\n'
            f"--{self.boundary}\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        self._between = (
            f"\r\n--{self.boundary}\r\n"
            'Content-Type: text/html; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        self._tail = f"\r\n--{self.boundary}--\r\n".encode("ascii")
        # List-Unsubscribe: the URL, then the mailto when one is configured (on a folded
        # line of its own in MIME, on the same line for provider APIs).
        mailto = f"<mailto:{unsubscribe_mailto}?subject=unsubscribe>" if unsubscribe_mailto else ""
        self._mailto_flat = f", {mailto}" if mailto else ""
        self._mailto_folded = f",\r\n {mailto}\r\n".encode("ascii") if mailto else b"\r\n"
        self.content = Content(
            sender=sender,
            subject=subject,
            reply_to=reply_to,
            text=rendered.text,
            html=rendered.html,
            slots=rendered.slots,
            headers=(
                ("List-Id", list_id),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                *extra_headers,
            ),
        )

    def build(self, subscriber: Subscriber) -> Message:
        """The complete message for ``subscriber``; ``SubscriberError`` for an unusable address."""
        name = " ".join(subscriber.name.split())
        to = to_header(subscriber.email, name)
        links = self.links(subscriber)
        values = ((Slot.GREETING, self.greet(name)), *links.items())
        text_values: dict[str, bytes] = {}
        html_values: dict[str, bytes] = {}
        for key, value in values:
            text_values[key] = _qp(value) + b"=\r\n"
            html_values[key] = _qp(html.escape(value)) + b"=\r\n"
        message_id = globally_unique_id(self.message_key, subscriber.id, self.domain)
        unsubscribe = f"<{links[Slot.UNSUBSCRIBE_URL]}>"
        data = b"".join(
            (
                self._headers,
                to,
                f"Message-ID: {message_id}\r\nList-Unsubscribe: {unsubscribe}".encode("ascii"),
                self._mailto_folded,
                self._body_head,
                self._text.join(text_values),
                self._between,
                self._html.join(html_values),
                self._tail,
            )
        )
        return Message(
            subscriber_id=subscriber.id,
            recipient=subscriber.email,
            sender=self.envelope_sender,
            message_id=message_id,
            data=data,
            content=self.content,
            name=name,
            slot_values=values,
            headers=(
                ("Message-ID", message_id),
                ("List-Unsubscribe", unsubscribe + self._mailto_flat),
            ),
            smtp_ready=self._smtp_ready,
        )


def standalone(
    subscriber: Subscriber,
    *,
    sender: str,
    subject: str,
    text: str,
    date: datetime,
    message_id: str,
    headers: Sequence[tuple[str, str]] = (),
) -> Message:
    """A one-off text-only message to ``subscriber`` (a subscription confirmation),
    built like an issue's message: MIME and fields from the same values, the To
    header written by ``to_header``. ``headers`` go to this message only
    (Auto-Submitted, ...)."""
    name = " ".join(subscriber.name.split())
    to = to_header(subscriber.email, name)
    head = b"".join(
        (
            _fold("From", sender),
            _fold("Subject", subject),
            _fold("Date", format_datetime(date)),
            _fold("Message-ID", message_id),
            *(_fold(name, value) for name, value in headers),
            b"MIME-Version: 1.0\r\n",
        )
    )
    body = _qp(text)
    data = b"".join(
        (
            head,
            to,
            b'Content-Type: text/plain; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            body,
            b"" if body.endswith(b"\r\n") else b"\r\n",
        )
    )
    return Message(
        subscriber_id=subscriber.id,
        recipient=subscriber.email,
        sender=parseaddr(sender)[1],
        message_id=message_id,
        data=data,
        content=Content(
            sender=sender,
            subject=subject,
            reply_to=None,
            text=text,
            html="",
            headers=tuple(headers),
        ),
        name=name,
        headers=(("Message-ID", message_id),),
        smtp_ready=b"\n." not in head and not head.startswith(b"."),
    )


def fill_slots(text: str, rendered: Rendered, values: dict[str, str]) -> str:
    """``text`` (the rendered HTML or text) with each slot token replaced by its value.

    For previews: values are inserted as given, so escape them for HTML first.
    """
    for name, token in rendered.slots:
        text = text.replace(token, values[name])
    return text
