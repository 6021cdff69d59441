"""Backends: how messages leave. One file per kind, each filling in ``Backend``'s hooks."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import Backend
from .mailgun import MailgunBackend
from .outbox import OutboxBackend
from .postmark import PostmarkBackend
from .resend import ResendBackend
from .sendgrid import SendgridBackend
from .ses import SesBackend
from .smtp import SmtpBackend

BACKENDS: dict[str, type[Backend]] = {
    cls.type: cls
    for cls in (
        OutboxBackend,
        SmtpBackend,
        PostmarkBackend,
        SendgridBackend,
        MailgunBackend,
        SesBackend,
        ResendBackend,
    )
}


def make_backend(name: str, config: Any) -> Backend:
    """The backend for the ``backends.<name>`` entry of schedules.yaml."""
    try:
        cls = BACKENDS[config.type]
    except KeyError:
        raise ConfigError(f"backends.{name}: unknown backend type '{config.type}'.") from None
    return cls(name, config)


__all__ = ["BACKENDS", "Backend", "make_backend"]
