"""What every provider webhook parser shares: the parsed result, the keys, the checks.

A provider module (``digest.webhooks.<type>``) defines ``load_keys(config, environ)``
(its credentials, from the environment or ``config.web``; ``ConfigError`` when a
configured key cannot be used) and ``parse(request, body, keys, now)``, which
authenticates the request before reading anything from it and returns a ``Parsed``
or raises ``WebhookRejected`` (a 4xx that is logged and changes nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any, TypeVar

from ..errors import WebhookRejected

K = TypeVar("K")
#: The longest address there can be (RFC 5321's path limit, less the brackets).
ADDRESS_LIMIT = 254


@dataclass(frozen=True, slots=True)
class Event:
    """One bounce or complaint: ``kind`` is ``hard``, ``soft`` or ``complaint``."""

    email: str
    kind: str
    detail: str


@dataclass(slots=True)
class Parsed:
    """What a verified request says, and the ids that must not have been seen before."""

    events: list[Event] = field(default_factory=list)
    once: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WebhookKeys:
    """The keys of every provider (``providers``: name -> what its ``load_keys``
    returned) and the age past which a signed timestamp is refused."""

    max_age: int
    providers: Mapping[str, object] = field(default_factory=dict)

    def of(self, provider: str, kind: type[K]) -> K:
        """The keys of ``provider``, which its module loaded as a ``kind``."""
        keys = self.providers[provider]
        assert isinstance(keys, kind), f"{provider} keys are a {type(keys).__name__}"
        return keys


def json_body(body: bytes) -> Any:
    """The decoded JSON of ``body``; ``WebhookRejected`` (400) when it is not JSON, or
    holds a lone surrogate (``"\\ud800"``: valid JSON, but text no signature check,
    database or log line can encode)."""
    try:
        value = json.loads(body)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, json.JSONDecodeError) as exc:
        raise WebhookRejected(400, f"the body is not JSON text ({exc})") from None
    return value


def check_fresh(timestamp: float, now: float, max_age: int) -> None:
    """``WebhookRejected`` (401) when a signed ``timestamp`` is more than ``max_age``
    seconds from ``now``."""
    # Also refuses a timestamp from the future beyond the window (a clock far off, or
    # a request prepared in advance to be replayed later), and one too large for a float.
    try:
        age = now - timestamp
    except OverflowError:
        age = float("inf")
    if not abs(age) <= max_age:
        raise WebhookRejected(
            401, f"the signed timestamp is not within {max_age} s of now (stale or replayed)"
        )


def event_address(value: Any) -> str:
    """The address an event names; ``WebhookRejected`` (400) when it names none, or
    one no subscriber can have (control characters, longer than an address can be)."""
    if not isinstance(value, str) or "@" not in value:
        raise WebhookRejected(400, "an event has no recipient address")
    address = parseaddr(value)[1] or value.strip()
    if len(address) > ADDRESS_LIMIT or not address.isprintable():
        raise WebhookRejected(400, "an event's recipient is not an email address")
    return address


def object_field(value: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """``value[name]`` when it is a JSON object (``{}`` when absent);
    ``WebhookRejected`` (400) when it is something else."""
    found = value.get(name) or {}
    if not isinstance(found, dict):
        raise WebhookRejected(400, f"'{name}' is not an object")
    return found
