"""Whether a holder (``host:pid``) of a claim or a slot still runs: one answer for
dispatch and the schedule."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digest.hosts import is_alive, worker_id


def test_this_process_names_itself_host_colon_pid() -> None:
    assert worker_id() == f"{socket.gethostname()}:{os.getpid()}"


def test_a_process_of_this_host_is_alive_until_it_ends() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    holder = f"{socket.gethostname()}:{child.pid}"
    try:
        assert is_alive(holder) is True
    finally:
        child.kill()
        child.wait()
    assert is_alive(holder) is False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_process_that_ended_unreaped_is_gone() -> None:
    # A zombie still answers signal 0; a killed worker's pool process stays one for good
    # where pid 1 reaps nothing (many containers), and its claims must be freed.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{child.pid}/stat")
    try:
        deadline = time.monotonic() + 30
        while stat.read_bytes().rpartition(b")")[2].split()[0] != b"Z":
            assert time.monotonic() < deadline, "the child never ended"
            time.sleep(0.01)
        assert is_alive(f"{socket.gethostname()}:{child.pid}") is False
    finally:
        child.wait()


def test_a_holder_naming_this_process_is_a_predecessor_and_gone() -> None:
    assert is_alive(worker_id()) is False


def test_another_host_or_a_name_without_pid_cannot_be_told_here() -> None:
    assert is_alive(f"elsewhere.example:{os.getpid()}") is None
    assert is_alive(f"{socket.gethostname()}:worker-7") is None
