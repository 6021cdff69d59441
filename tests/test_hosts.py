"""Whether a holder (``host:pid``) of a claim or a slot still runs: one answer for
dispatch and the schedule."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

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


def test_a_holder_naming_this_process_is_a_predecessor_and_gone() -> None:
    assert is_alive(worker_id()) is False


def test_another_host_or_a_name_without_pid_cannot_be_told_here() -> None:
    assert is_alive(f"elsewhere.example:{os.getpid()}") is None
    assert is_alive(f"{socket.gethostname()}:worker-7") is None
