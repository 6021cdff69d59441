"""Processes as holders of shared work: a ledger claim, a scheduled slot.

A holder is named ``host:pid``. Whether it still runs can be told only on its own
host; elsewhere the caller relies on what it keeps for that (a lease, a heartbeat).
"""

from __future__ import annotations

import os
import socket


def worker_id() -> str:
    """This process as a holder: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_alive(holder: str) -> bool | None:
    """Whether the process ``holder`` (``host:pid``) still runs; ``None`` when this host
    cannot tell (another host, or no pid in the name).

    A holder naming this very process counts as gone: a process never asks about what
    it holds itself, so a holder with its pid is a predecessor that had the same pid (a
    restarted container's daemon is often pid 1 again). A process this user may not
    signal exists, so it counts as alive.
    """
    host, _, pid_text = holder.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has ended but not been reaped (Linux; False where ``/proc`` is
    missing). A killed worker's pool process stays such a zombie for good in a container
    whose pid 1 reaps nothing, and it still answers signal 0."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # pid (comm) state ...: the name may hold spaces and parentheses.
            return stat.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
