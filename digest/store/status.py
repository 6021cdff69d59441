"""The status vocabularies of the store's rows, beside the tables that hold them.

Each is a ``StrEnum``: a member compares equal to, and is stored as, its text, so a
column holds the plain value and a row read back compares with the member.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """A message's delivery, as a backend reports it and as the ledger keeps it.

    The ledger row (``deliveries.status``) is ``QUEUED`` until settled as ``SENT``,
    ``FAILED`` or ``SKIPPED`` (not sent: the subscriber is no longer active, or wants
    none of the issue's sections). ``TRANSIENT`` is a backend's answer only: the
    message may be retried, so its ledger row goes back to ``QUEUED`` with a backoff.
    A backend reports ``SENT``, ``TRANSIENT`` or ``FAILED`` (never retried).
    """

    QUEUED = "queued"
    SENT = "sent"
    TRANSIENT = "transient"
    FAILED = "failed"
    SKIPPED = "skipped"


class IssueStatus(StrEnum):
    """An issue row: ``SENDING`` from the moment deliveries may start until every
    delivery is settled, then ``SENT``."""

    SENDING = "sending"
    SENT = "sent"


class SubscriberStatus(StrEnum):
    """``subscribers.status``: where a subscriber stands on one list."""

    PENDING = "pending"  # asked to subscribe; waits for the confirmation link
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class RunStatus(StrEnum):
    """``schedule_runs.status``: the state of one scheduled slot of a newsletter."""

    RUNNING = "running"
    DONE = "done"
    NOTHING = "nothing"  # nothing new to send
    FAILED = "failed"
    MISSED = "missed"  # too late, beyond misfire_grace
    INTERRUPTED = "interrupted"  # stopped between batches; the next start resumes it
