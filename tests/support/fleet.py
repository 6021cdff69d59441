"""A fleet of `digest worker` processes for the worker tests, and a Redis of a test's
own that it may kill and start again (a broker restarted mid-send)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support import ROOT, free_port
from tests.support.schedule import Project

REDIS_SERVER = shutil.which("redis-server")


def start_worker(project: Project, log: Path) -> subprocess.Popen[bytes]:
    """A `digest worker --concurrency 1` on ``project``, its output into ``log``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "-c", str(project.config), "worker", "--concurrency", "1"],
        cwd=project.root,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its pool's children die with it
    )


def written(project: Project) -> int:
    """How many messages the outbox holds (cheap: no parsing)."""
    return len(os.listdir(project.outbox)) if project.outbox.is_dir() else 0


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` and its session (a worker's pool), and reap it."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


class PrivateRedis:
    """A ``redis-server`` on a free port of 127.0.0.1, its files in ``folder``; with
    ``persist`` every write is in its append-only file before it is answered, so a kill
    loses nothing, without it a restart starts empty."""

    def __init__(self, folder: Path, *, persist: bool) -> None:
        assert REDIS_SERVER is not None
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.persist = persist
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        assert REDIS_SERVER is not None
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--dir", str(self.folder), "--appendonly", "yes" if self.persist else "no"]
        args += ["--appendfsync", "always"]
        self.process = subprocess.Popen(
            args, stdout=(self.folder / "redis.log").open("ab"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start: {(self.folder / 'redis.log').read_text()}")

    def kill(self) -> None:
        """SIGKILL the server (no shutdown save) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


RABBITMQCTL = shutil.which("rabbitmqctl")


class SystemRabbit:
    """This machine's RabbitMQ, stopped and started again with ``rabbitmqctl``
    (``stop_app``/``start_app``: the node keeps running, the broker does not; durable
    queues and persistent messages survive, connections do not)."""

    def __init__(self, url: str) -> None:
        assert RABBITMQCTL is not None
        self.url = url
        self.port = 5672

    def start(self) -> None:
        """Start the broker and wait until it takes connections."""
        assert RABBITMQCTL is not None
        subprocess.run([RABBITMQCTL, "start_app"], check=True, capture_output=True, timeout=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("RabbitMQ did not take connections again within 60 s")

    def kill(self) -> None:
        """Stop the broker (every connection is dropped)."""
        assert RABBITMQCTL is not None
        subprocess.run([RABBITMQCTL, "stop_app"], check=True, capture_output=True, timeout=120)


def start_run(project: Project) -> subprocess.Popen[bytes]:
    """`digest run news` on ``project`` (its output piped: ``communicate()`` reads it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "-c", str(project.config), "run", "news"],
        cwd=project.root,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_written(project: Project, count: int, timeout: float = 120) -> int:
    """Wait until the outbox holds ``count`` messages (or ``timeout`` seconds pass);
    how many it holds."""
    deadline = time.monotonic() + timeout
    while written(project) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return written(project)
