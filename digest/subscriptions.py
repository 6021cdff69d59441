"""The subscriptions service: every change of a subscriber's status happens here.

A status moves only through these functions, used by the CLI, the CSV import, the web
pages and the provider webhooks alike, and every change writes one history row
(``subscriber_events``) with its moment, ``source`` and a detail::

    (new) --request--> pending --confirm--> active --unsubscribe--> unsubscribed
    (new) --add------> active or pending
    unsubscribed --request (stays unsubscribed)--confirm--> active
    any --suppress/bounce--> bounced or complained  (complained outranks bounced)

The rules:

- An unsubscribed, bounced or complained status is one the subscriber chose or
  earned (``STICKY``). It stands until the person confirms again through a link
  mailed to the address; nothing else lifts it. Adding or importing them again
  leaves it as it is, and so does posting the form: anyone can type an address into
  the form, so a request only sends the confirmation link (it is recorded in the
  history, the status stays ``unsubscribed``) and following that link within
  ``CONFIRM_FOR`` is what brings the person back. A ``pending`` subscriber who held a
  sticky status before (a request made with an older version, which set them
  pending) is not made active by an import either.
- Bounced and complained addresses are never mailed from the form, not even to
  confirm; a bounce or a complaint outranks an unsubscription.
- An address on the global suppression list is never mailed again, not even to
  confirm.
- Letter case makes no second person: ``Ann@example.org`` and ``ann@example.org``
  are one subscriber to every decision (uniqueness per list, unsubscribe, complaint,
  suppression, soft bounces, rate limits, import). The decisions use the address's
  ``email_key``, the whole address lower-cased; the address as the person typed it
  (domain lower-cased) is what is shown and mailed. No provider a list reaches
  delivers ``Ann@`` and ``ann@`` to two people, and an unsubscribe that a capital
  letter undoes is the worse error.

Addresses are validated with email-validator (syntax only, no DNS).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from email_validator import EmailNotValidError, validate_email

from .errors import SubscriberError
from .models import Subscriber
from .store import Session, Store, subscriber_import, utcnow, webhook_events
from .store import subscribers as rows
from .store.status import SubscriberStatus
from .store.subscribers import Preferences, SubscriberRecord

Status = SubscriberStatus
# A status someone chose or earned; an import or an add must not overwrite it.
STICKY = frozenset({Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED})
# "send": a hard bounce the mail server gave while dispatch was sending.
SOURCES = ("import", "form", "confirm", "one-click", "preferences", "webhook", "cli", "send")
#: How long a confirmation link works after the last request to subscribe: an old link
#: found in a forwarded or leaked mailbox should not sign anyone up months later.
CONFIRM_FOR = timedelta(days=7)
#: How long a provider's webhook event ids are remembered. Signed providers' replays
#: are stopped by their timestamp window long before this; Postmark signs no timestamp.
KEEP_EVENT_IDS = timedelta(days=30)
# The status each suppression reason gives the address on every list; a manual
# suppression leaves statuses alone (the suppression alone stops sending).
_SUPPRESSED_AS = {
    "complaint": Status.COMPLAINED,
    "hard-bounce": Status.BOUNCED,
    "soft-bounces": Status.BOUNCED,
}


#: The longest name kept: the form, an import and ``add`` cut a longer one.
NAME_LIMIT = 200


def clean_text(value: str, limit: int) -> str:
    """``value`` as one line of at most ``limit`` characters: whitespace runs (line
    breaks included) become one space, other control characters and lone surrogates
    (which no database column or mail header can hold) are dropped."""
    text = " ".join(value.split())
    return "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cs"))[:limit]


def clean_name(name: str) -> str:
    """A subscriber's name as stored (``clean_text`` to ``NAME_LIMIT``)."""
    return clean_text(name, NAME_LIMIT)


def normalize_email(address: str) -> tuple[str, str]:
    """``(email, key)``: the address as stored, and its uniqueness key.

    The address keeps its local part as written, its domain lower-cased; the key is
    the whole address lower-cased (``email_key``). ``SubscriberError`` with the reason
    when invalid.
    """
    address = address.strip()
    if any(c in address for c in "\r\n"):
        raise SubscriberError("the address contains a line break")
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(str(exc)) from None
    local, _, domain = result.normalized.rpartition("@")
    email = f"{local}@{domain.lower()}"
    return email, email_key(email)


def email_key(address: str) -> str:
    """The uniqueness key of ``address``, valid or not: the address lower-cased, so
    that addresses differing only in letter case are one person."""
    return address.strip().lower()


def change(
    session: Session,
    record: SubscriberRecord,
    status: Status,
    source: str,
    detail: str = "",
    *,
    now: datetime | None = None,
) -> bool:
    """Give ``record`` ``status`` and write the history row; ``False`` when it already
    had it. Every status change goes through here (the import through ``import_status``).

    ``source`` is one of ``SOURCES``, optionally followed by ``:`` and who (``webhook:ses``
    is recorded as ``webhook``); ``ValueError`` otherwise (a bug, not bad input).
    """
    kind = source.partition(":")[0]
    if kind not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    status = Status(status)
    if record.status == status:
        return False
    rows.write_status(session, record.id, record.status, status, kind, detail, now or utcnow())
    return True


def import_status(current: str, wanted: Status, *, left_before: bool = False) -> Status | None:
    """The status an import gives a subscriber who has ``current`` when the file asks for
    ``wanted``: ``None`` when it stays as it is (a sticky status, or the same one).
    ``left_before``: the subscriber held a sticky status and was not active since
    (``left_since_active``); an import does not make them active."""
    if current in STICKY or current == wanted or (left_before and wanted == Status.ACTIVE):
        return None
    return wanted


def left_since_active(session: Session, ids: Sequence[int]) -> set[int]:
    """The subscribers among ``ids`` who held a sticky status and were not active since."""
    return subscriber_import.left_since_active(session, ids, STICKY) if ids else set()


def check_new_status(status: str, what: str) -> Status:
    """``status`` when it may be given to a new subscriber (active or pending);
    ``SubscriberError`` naming ``what`` otherwise."""
    if status not in (Status.ACTIVE, Status.PENDING):
        raise SubscriberError(f"'{status}' cannot be given to {what}; use active or pending.")
    return Status(status)


def add(
    store: Store,
    list_name: str,
    address: str,
    *,
    name: str = "",
    status: str = Status.ACTIVE,
    source: str = "cli",
) -> tuple[Subscriber, bool]:
    """Add ``address`` to ``list_name`` (created if new); ``(subscriber, created)``.

    An existing subscriber keeps a sticky status: adding them again is no way around
    their choice.
    """
    wanted = check_new_status(status, "a new subscriber")
    email, key = normalize_email(address)
    name = clean_name(name)
    with store.session() as session:
        record = rows.find(session, list_name, key)
        if record is None:
            record = rows.create(
                session,
                list_name,
                email,
                key,
                name=name,
                status=wanted,
                source=source,
                now=utcnow(),
            )
            return record.subscriber(), True
        if name:
            rows.rename(session, record.id, name)
        if record.status not in STICKY:
            change(session, record, wanted, source)
        return Subscriber(record.id, record.email, name or record.name, list_name), False


def request(store: Store, list_name: str, email: str, name: str, detail: str) -> Subscriber | None:
    """Someone asked on the form to receive ``list_name`` at ``email`` (normalised).

    A new address is added ``pending``; a pending one has its confirmation link renewed
    (valid for ``CONFIRM_FOR`` from now). An unsubscribed one stays unsubscribed: the
    request is recorded in its history and only following the link brings the person
    back (``confirm``). Returns whom to send a confirmation to, or ``None`` when nothing
    is to be sent: the address is suppressed, bounced or complained (never mailed, not
    even to confirm) or already active.
    """
    key = email_key(email)
    name = clean_name(name)
    now = utcnow()
    with store.session() as session:
        record = rows.find(session, list_name, key)
        if rows.is_suppressed(session, key) or (
            record is not None and record.status in (Status.BOUNCED, Status.COMPLAINED)
        ):
            return None
        if record is None:
            record = rows.create(
                session,
                list_name,
                email,
                key,
                name=name,
                status=Status.PENDING,
                source="form",
                detail=detail,
                now=now,
            )
            return record.subscriber()
        if record.status == Status.UNSUBSCRIBED:
            # Anyone can type an address into the form: the unsubscribe stands until the
            # person follows the link mailed to it.
            rows.note(session, record.id, Status.UNSUBSCRIBED, "form", detail, now)
        elif record.status != Status.PENDING:
            return None
        rows.touch(session, record.id, now=now, name=name)
        return Subscriber(record.id, record.email, name or record.name, list_name)


class Confirmation(StrEnum):
    """What following a confirmation link did."""

    CONFIRMED = "confirmed"
    ALREADY = "already confirmed"
    NOT_CURRENT = "not current"  # no longer pending, or suppressed since
    EXPIRED = "expired"


def confirm(store: Store, subscriber_id: int) -> Confirmation:
    """A subscriber followed their confirmation link: a pending one, or an unsubscribed
    one who asked to come back (``request``), becomes active, unless the link is
    older than ``CONFIRM_FOR`` or no longer current."""
    with store.session() as session:
        record = rows.get(session, subscriber_id)
        if record is None:
            return Confirmation.NOT_CURRENT
        if record.status == Status.ACTIVE:
            return Confirmation.ALREADY
        asked = _asked_at(session, record)
        if asked is None or rows.is_suppressed(session, record.email_key):
            return Confirmation.NOT_CURRENT
        if utcnow() - asked > CONFIRM_FOR:
            return Confirmation.EXPIRED
        change(session, record, Status.ACTIVE, "confirm")
        return Confirmation.CONFIRMED


def _asked_at(session: Session, record: SubscriberRecord) -> datetime | None:
    """When ``record`` last asked to be subscribed, if a confirmation may activate it:
    pending, or unsubscribed with a form request as the last thing in its history."""
    if record.status == Status.PENDING:
        return record.updated_at
    if record.status != Status.UNSUBSCRIBED:
        return None
    last = rows.last_event(session, record.id)
    if last is None or last.source != "form" or last.status != Status.UNSUBSCRIBED:
        return None
    return last.created_at


def leave(session: Session, record: SubscriberRecord, source: str, detail: str = "") -> bool:
    """Unsubscribe ``record`` if it is active or pending (a bounce or complaint outranks
    an unsubscription); ``False`` when nothing changed."""
    if record.status not in (Status.ACTIVE, Status.PENDING):
        return False
    return change(session, record, Status.UNSUBSCRIBED, source, detail)


def unsubscribe(
    store: Store, subscriber_id: int, source: str, detail: str = ""
) -> SubscriberRecord:
    """Unsubscribe subscriber ``subscriber_id`` (see ``leave``); the subscriber after it.
    ``SubscriberError`` when there is no such subscriber."""
    with store.session() as session:
        record = rows.get(session, subscriber_id)
        if record is None:
            raise SubscriberError(f"There is no subscriber {subscriber_id}.")
        leave(session, record, source, detail)
        after = rows.get(session, subscriber_id)
        assert after is not None
        return after


def unsubscribe_everywhere(store: Store, address: str, source: str, detail: str = "") -> int:
    """Unsubscribe ``address`` from every list it is on; how many lists changed."""
    with store.session() as session:
        return sum(
            leave(session, record, source, detail)
            for record in rows.with_key(session, email_key(address))
        )


def resubscribe(store: Store, subscriber_id: int, source: str, detail: str = "") -> bool:
    """Make an unsubscribed subscriber active again, without a new opt-in: only for a
    request that proves the address (a token mailed to it). Nothing for a suppressed
    address or another status; ``True`` when it changed."""
    with store.session() as session:
        record = rows.get(session, subscriber_id)
        if (
            record is None
            or record.status != Status.UNSUBSCRIBED
            or rows.is_suppressed(session, record.email_key)
        ):
            return False
        return change(session, record, Status.ACTIVE, source, detail)


def suppress(session: Session, address: str, reason: str, source: str, detail: str = "") -> bool:
    """Put ``address`` on the global suppression list and mark it on every list
    (``complained`` for a complaint, ``bounced`` for bounces; a ``manual`` suppression
    changes no status). ``False`` if it was already suppressed."""
    key = email_key(address)
    now = utcnow()
    new = rows.add_suppression(session, key, reason, source, detail, now)
    status = _SUPPRESSED_AS.get(reason)
    if status is not None:
        for record in rows.with_key(session, key):
            # A complaint outranks a bounce; nothing else changes a complained subscriber.
            if record.status != Status.COMPLAINED:
                change(session, record, status, source, detail, now=now)
    return new


def unsuppress(session: Session, address: str) -> bool:
    """Take ``address`` off the suppression list (its subscribers keep their status)."""
    return rows.remove_suppression(session, email_key(address))


def bounce(
    session: Session,
    address: str,
    kind: str,
    source: str,
    detail: str = "",
    *,
    soft_limit: int = 3,
) -> str:
    """Apply one bounce or complaint: ``kind`` is ``hard``, ``complaint`` or ``soft``.

    Hard bounces and complaints suppress the address at once; soft bounces are
    counted and suppress it at the ``soft_limit``-th. Returns what was done
    (``suppressed``, ``already suppressed``, ``counted``).
    """
    if kind in ("hard", "complaint"):
        reason = "complaint" if kind == "complaint" else "hard-bounce"
        done = suppress(session, address, reason, source, detail)
        return "suppressed" if done else "already suppressed"
    if kind != "soft":
        raise ValueError(f"unknown bounce kind {kind!r}")
    count = rows.count_soft_bounce(session, email_key(address), utcnow())
    if count >= soft_limit:
        done = suppress(session, address, "soft-bounces", source, f"{count} soft bounces; {detail}")
        return "suppressed" if done else "already suppressed"
    return "counted"


@dataclass(frozen=True, slots=True)
class Standing:
    """A subscriber with their preferences and whether their address is suppressed."""

    record: SubscriberRecord
    preferences: Preferences
    suppressed: bool


def standing(store: Store, subscriber_id: int, list_name: str | None = None) -> Standing | None:
    """Subscriber ``subscriber_id`` (only if on ``list_name``, when given) as the
    preferences page shows them; ``None`` when there is no such subscriber."""
    with store.session() as session:
        record = rows.get(session, subscriber_id, list_name)
        if record is None:
            return None
        return Standing(
            record,
            rows.get_preferences(session, subscriber_id),
            rows.is_suppressed(session, record.email_key),
        )


def save_preferences(
    store: Store, subscriber_id: int, *, sections: Sequence[str] | None, pause_weeks: int
) -> Preferences:
    """Save a subscriber's sections (``None``: all) and pause them for ``pause_weeks``
    from now (0 resumes sending)."""
    with store.session() as session:
        return rows.set_preferences(
            session, subscriber_id, sections=sections, pause_weeks=pause_weeks
        )


def suppress_address(store: Store, address: str, source: str = "cli") -> bool:
    """Suppress ``address`` by hand (``suppress`` with reason ``manual``)."""
    with store.session() as session:
        return suppress(session, address, "manual", source)


def unsuppress_address(store: Store, address: str) -> bool:
    """``unsuppress`` in a transaction of its own."""
    with store.session() as session:
        return unsuppress(session, address)


@dataclass(frozen=True, slots=True)
class ProviderEvents:
    """What ``apply_provider_events`` did: each event's outcome (see ``bounce``), or
    nothing and ``replay_of`` set (the id seen before, or ``concurrently``)."""

    outcomes: tuple[str, ...] = ()
    replay_of: str | None = None


def apply_provider_events(
    store: Store,
    provider: str,
    event_ids: Sequence[str],
    events: Sequence[tuple[str, str, str]],
    *,
    soft_limit: int,
) -> ProviderEvents:
    """Apply a provider's webhook ``events`` (address, bounce kind, detail) and record
    its ``event_ids``, in one transaction; when any id was seen before (a replay),
    nothing changes. Ids are kept ``KEEP_EVENT_IDS`` long."""
    try:
        with store.session() as session:
            seen = webhook_events.first_seen(session, provider, event_ids)
            if seen is not None:
                raise _Replay(seen)
            forget_before = utcnow() - KEEP_EVENT_IDS
            if not webhook_events.record(session, provider, event_ids, forget_before=forget_before):
                raise _Replay("concurrently")
            source = f"webhook:{provider}"
            return ProviderEvents(
                tuple(
                    bounce(session, address, kind, source, detail, soft_limit=soft_limit)
                    for address, kind, detail in events
                )
            )
    except _Replay as replay:
        return ProviderEvents(replay_of=replay.seen)


class _Replay(Exception):
    """Ends the transaction of a replayed request (rolled back, nothing applied)."""

    def __init__(self, seen: str) -> None:
        super().__init__(seen)
        self.seen = seen


def reactivate(
    store: Store, address: str, list_name: str | None = None, source: str = "cli"
) -> list[str]:
    """Make ``address`` active again where a bounce made it ``bounced`` (on ``list_name``,
    or on every list), and take it off the suppression list when a bounce put it there:
    the operator's way back from bounces that were not about the address (a relay's
    policy refusal recorded as a hard bounce, a mailbox restored). Each change is
    recorded with ``source``. Returns the lists it is active on again.

    ``SubscriberError`` with the reason when nothing may change: the address is not
    bounced there, or it was suppressed by hand or for a complaint (the person's own
    word; only they can come back, through the confirmation link).
    """
    key = email_key(address)
    with store.session() as session:
        found = [r for r in rows.with_key(session, key) if list_name in (None, r.list_name)]
        where = f"on '{list_name}'" if list_name else "on any list"
        if not found:
            raise SubscriberError(f"{address} is not subscribed {where}.")
        suppressed = rows.suppression(session, key)
        if suppressed is not None and suppressed.reason not in ("hard-bounce", "soft-bounces"):
            raise SubscriberError(
                f"{address} is suppressed ({suppressed.reason}, since "
                f"{suppressed.created_at:%Y-%m-%d}); a bounce is not why, so it stays."
            )
        bounced = [r for r in found if r.status == Status.BOUNCED]
        if not bounced:
            statuses = ", ".join(sorted({r.status for r in found}))
            raise SubscriberError(
                f"{address} is {statuses} {where}, not bounced: reactivate only undoes a "
                "bounce (an unsubscription or complaint stands until the person confirms again)."
            )
        if suppressed is not None:
            rows.remove_suppression(session, key)
        for record in bounced:
            change(session, record, Status.ACTIVE, source, "reactivated after a bounce")
        return [record.list_name for record in bounced]


def lists_with_status(store: Store, address: str, status: Status) -> list[str]:
    """The lists on which ``address`` has ``status``."""
    with store.session() as session:
        return [
            r.list_name for r in rows.with_key(session, email_key(address)) if r.status == status
        ]
