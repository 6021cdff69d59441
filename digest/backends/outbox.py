"""The ``outbox`` backend: each message becomes a real ``.eml`` file in a Maildir.

The embedded default, so the whole pipeline runs on a machine with no mail server.
Any mail client can open the files; ``new/`` holds what was "sent".

A file that cannot be written whole (disk full, a file-size limit, a read-only
folder) is removed from ``tmp/`` and stops the send with ``OutboxFull``: the
messages already in ``new/`` are recorded sent, the rest stays queued for the run
after the operator made room.
"""

from __future__ import annotations

import asyncio
import contextlib
import mailbox
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from ..errors import OutboxFull, PermanentError
from ..models import Message
from .base import Backend, BackendConfig


class OutboxBackendConfig(BackendConfig):
    """Writes each message as a ``.eml`` file into a Maildir (the embedded default)."""

    type: Literal["outbox"]
    path: str = "outbox"

    def resolved(self, resolve: Callable[[str], str]) -> OutboxBackendConfig:
        return self.model_copy(update={"path": resolve(self.path)})


class OutboxBackend(Backend):
    """Writes messages into the Maildir at ``config.path`` (created when missing)."""

    dispatch_batch = 20
    config_model = OutboxBackendConfig
    config: OutboxBackendConfig

    async def open(self) -> None:
        try:
            self.maildir = mailbox.Maildir(Path(self.config.path), create=True)
        except OSError as exc:
            raise PermanentError(
                f"The outbox folder {self.config.path} cannot be created ({exc.strerror})."
            ) from None

    async def deliver(self, message: Message) -> str:
        return await asyncio.to_thread(self._write, message)

    def _write(self, message: Message) -> str:
        # Written into tmp/ and renamed into new/ (the Maildir protocol): a reader sees
        # a whole file or none.
        name = f"{time.time_ns()}.{uuid.uuid4().hex}.eml"
        root = Path(self.config.path)
        tmp = root / "tmp" / name
        try:
            tmp.write_bytes(message.data)
            os.replace(tmp, root / "new" / name)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise OutboxFull(
                f"The outbox folder {root} cannot take another message ({exc.strerror}): "
                "the send stops. The messages written before are recorded sent and the "
                "rest stays queued; make room (or make the folder writable) and run again."
            ) from None
        return name
