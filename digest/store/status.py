"""The status vocabularies of the store's rows, beside the tables that hold them.

Each is a ``StrEnum``: a member compares equal to, and is stored as, its text.
"""

from __future__ import annotations

from enum import StrEnum


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
