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
     ├── StoreError             the database cannot be opened or migrated
     └── BackendError           a backend could not send
          ├── TransientError    try again later (throttled, timeout, 4xx SMTP)
          └── PermanentError    never retry (bad credentials, 5xx SMTP, invalid address)

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


class StoreError(DigestError):
    """The database cannot be opened, migrated or written."""


class BackendError(DigestError):
    """A backend could not send a message or a batch."""


class TransientError(BackendError):
    """A failure worth retrying later: throttling, a timeout, a temporary SMTP reply."""


class PermanentError(BackendError):
    """A failure that retrying will not fix: bad credentials, a rejected address."""
