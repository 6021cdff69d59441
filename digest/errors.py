"""The one exception tree of digest.

Every error a user can cause or fix is a ``DigestError`` whose ``str()`` is a sentence
that says what went wrong and what to do. The CLI catches ``DigestError`` once, prints
it and exits 1; anything else is a bug and keeps its traceback.

::

    DigestError
     ├── ConfigError            schedules.yaml missing or invalid, unknown newsletter/list
     ├── SourceError            one source (feed, sitemap, page) could not be read
     │    └── SourceGone        the server says the source is gone for good (HTTP 410)
     ├── ExtractError           a page is not an article we can read
     ├── RenderError            a template or the MJML compiler failed
     ├── SubscriberError        a subscriber file or address is unusable
     │    └── NothingWanted     the reader chose none of the sections this issue has
     ├── StoreError             the database cannot be opened or migrated
     │    └── RunConflict       another run recorded the same issue at the same time
     ├── ReviewError            an editorial action that does not apply: no draft to edit,
     │                          an unknown story, a stale draft version (digest.editorial)
     ├── WebhookRejected        a provider webhook request is refused (unsigned, forged,
     │                          stale, replayed, malformed): a 4xx, logged, nothing changed
     └── BackendError           a backend could not send
          ├── TransientError    try again later (timeout, 4xx SMTP)
          │    ├── ThrottledError   the server asks us to slow down (421/451/452/454, 429)
          │    └── Unreachable  the server cannot be reached or dropped us: nothing
          │                     about the recipient; exhausting the retries stops the send
          ├── PermanentError    never retry this message (5xx SMTP, invalid address)
          │    ├── HardBounce   the address does not exist: suppress it
          │    ├── Refusal      a policy, relay, authentication or content refusal
          │    │                (RFC 3463 5.7.x, 5.3.x, 5.4.x): nothing about the address
          │    └── RequestRefused   a provider refused a whole batch for some of its
          │                     recipients (or its size): narrowed down, never raised out
          └── SendAborted       the backend cannot send at all (wrong credentials, TLS
               │                failure): the send stops, nothing more is marked
               ├── SendRefused  too many refusals (or a server gone through every
               │                retry): the send stops, the rest stays queued
               └── OutboxFull   the outbox folder takes no more files (disk full,
                                read-only): the send stops, what was written is recorded

Per-source and per-recipient errors are collected into reports rather than raised
to the CLI: one bad source or recipient never stops the others.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error digest raises on purpose; ``str()`` is a user-facing sentence."""


class ConfigError(DigestError):
    """schedules.yaml is missing or invalid, or names something that does not exist."""


class SourceError(DigestError):
    """A source could not be fetched or parsed. Reported per source, never fatal to a run."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class SourceGone(SourceError):
    """The server answered 410 Gone: the source should be removed from schedules.yaml."""


class ExtractError(DigestError):
    """A page could not be read as an article (no headline and no body text)."""


class RenderError(DigestError):
    """A template could not be rendered or the MJML could not be compiled."""


class SubscriberError(DigestError):
    """A subscriber file or address is unusable."""


class NothingWanted(SubscriberError):
    """The reader chose sections and this issue has none of them: nothing to send,
    which is not a failure (dispatch records the delivery ``skipped``)."""


class StoreError(DigestError):
    """The database cannot be opened, migrated or written."""


class RunConflict(StoreError):
    """Another process recorded the same row at the same moment (two ``digest run`` of
    one newsletter started together): this one stops with a sentence, nothing of its
    own recorded, and the next run carries on with what the other recorded."""


class ReviewError(DigestError):
    """An editorial action (edit, approve) that does not apply to the draft as it is."""


class WebhookRejected(DigestError):
    """A webhook request that is refused: ``status`` (4xx) and the logged ``reason``.

    Raised before anything is changed; ``digest.web.webhooks`` answers with it.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BackendError(DigestError):
    """A backend could not send a message or a batch."""


class TransientError(BackendError):
    """A failure worth retrying later: throttling, a timeout, a temporary SMTP reply."""


class PermanentError(BackendError):
    """A failure that retrying will not fix: bad credentials, a rejected address."""


class ThrottledError(TransientError):
    """The server asked us to slow down; ``retry_after`` is its hint in seconds, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unreachable(TransientError):
    """The server could not be reached, or dropped the connection: a failure of the
    sending side, not of the recipient. Retried like any transient failure; a row that
    exhausts its attempts on it stops the send instead of being marked failed."""


class HardBounce(PermanentError):
    """The address does not exist (e.g. SMTP 550 5.1.1): it is suppressed from the list."""


class Refusal(PermanentError):
    """The server refused for a reason that says nothing about the address: a policy,
    relay, authentication or content refusal (RFC 3463 5.7.x, 5.3.x, 5.4.x, or a 550
    whose text speaks of relaying or policy). Never suppresses anyone; dispatch stops the
    send once a few rows are refused and leaves them queued."""


class RequestRefused(PermanentError):
    """The provider refused a whole request because of some of its recipients, or its
    size; nothing was sent.

    ``rejected`` maps positions in the request to the provider's reason; empty when
    the provider did not say which recipient (or that the request is too large): the
    request is then halved.
    """

    def __init__(self, message: str, rejected: dict[int, str] | None = None) -> None:
        super().__init__(message)
        self.rejected = rejected or {}


class SendAborted(BackendError):
    """The backend cannot send anything (wrong credentials, TLS failure, no answer).

    The send stops at once; rows not yet settled stay queued for the next run.
    ``partial`` holds the deliveries of the same ``send`` call that were already made
    (a backend's business to fill), so they are recorded rather than sent again.
    """

    partial: list = []  # noqa: RUF012  (replaced per instance by the backend base)


class SendRefused(SendAborted):
    """The send stops because the server refuses us rather than the recipients (past
    the refusal threshold), or could not be reached through every retry: the refused
    rows stay queued, no subscriber changes, the issue stays unfinished."""


class OutboxFull(SendAborted):
    """The outbox folder cannot take another file (disk full, file-size limit,
    read-only): the partial file is removed, the messages written before are recorded."""
