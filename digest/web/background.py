"""Work the web service does after it has answered (the confirmation message), watched.

Such a task has nobody to report to: the visitor already has their page (sent first,
so that its timing tells nothing about the address). A task that fails is therefore
logged at ERROR (with its traceback when it is a bug rather than a ``DigestError``)
and counted, and ``GET /healthz`` shows the count and the last failure, its
``status`` saying ``degraded`` while the most recent task failed: a monitor that
alerts on anything but ``ok`` tells the operator that sign-ups are not confirmed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import DigestError

log = logging.getLogger("digest.web")


@dataclass
class BackgroundHealth:
    """How the service's background tasks went since it started. Used on the event
    loop only (tasks run there; ``/healthz`` reads a snapshot)."""

    failed: int = 0
    last_error: str = ""
    last_failed_at: datetime | None = None
    latest_failed: bool = False

    async def run(self, what: str, task: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Await ``task(*args)``; a failure is logged, counted and never raised.
        ``what`` names the task in the log and on ``/healthz``."""
        try:
            await task(*args)
        except DigestError as exc:
            log.error("%s failed: %s", what, exc)
            self._failure(f"{what} failed: {exc}")
        except Exception as exc:
            log.exception("%s failed with an unexpected error", what)
            self._failure(f"{what} failed with an unexpected error: {exc!r}")
        else:
            self.latest_failed = False

    def _failure(self, text: str) -> None:
        self.failed += 1
        self.last_error = text
        self.last_failed_at = datetime.now(UTC)
        self.latest_failed = True

    def report(self) -> dict[str, Any]:
        """What ``/healthz`` shows of the background tasks."""
        return {
            "failed": self.failed,
            "last_error": self.last_error or None,
            "last_failed_at": self.last_failed_at.isoformat() if self.last_failed_at else None,
        }
