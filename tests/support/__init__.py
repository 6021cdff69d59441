"""What the tests share: where things are, and the small helpers every area needs.

The rest of this package holds the heavier pieces: real servers (``collect_server``:
a site on loopback; ``mailserver``: Postfix, Dovecot, fault-injecting SMTP servers and
fake provider APIs), sample issues (``email_samples``), a served demo project
(``subscribers``), a scheduler project (``schedule``) and the caniemail data
(``caniemail``).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.headerregistry import Address, AddressHeader
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
FIXTURES = TESTS / "fixtures"
DATA = TESTS / "data"
GOLDEN = TESTS / "golden"
#: A PostgreSQL server where tests may create databases (CI sets it); unset: those skip.
PG_ENV = "DIGEST_TEST_DATABASE_URL"


def write(path: Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8) to ``path`` and return the path."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def write_config(folder: Path, text: str) -> Path:
    """``folder/schedules.yaml`` holding ``text``."""
    return write(folder / "schedules.yaml", text)


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def body_text(message: EmailMessage, subtype: str) -> str:
    """The decoded ``text/<subtype>`` body of ``message`` (``plain`` or ``html``)."""
    part = message.get_body((subtype,))
    assert part is not None, f"the message has no text/{subtype} body"
    return str(part.get_content())


def to_address(message: EmailMessage) -> Address:
    """The message's first To: recipient (its ``addr_spec`` and ``display_name``)."""
    to = message["To"]
    assert isinstance(to, AddressHeader), to  # typeshed types every header as str
    return to.addresses[0]


def emails(n: int, local: str = "reader") -> list[str]:
    """``n`` distinct addresses: ``reader0@example.test``, ``reader1@example.test``, ..."""
    return [f"{local}{i}@example.test" for i in range(n)]


def postgres_server() -> str | None:
    """The URL of ``$DIGEST_TEST_DATABASE_URL`` when it names a PostgreSQL server."""
    url = os.environ.get(PG_ENV, "")
    return url if url.startswith("postgresql") else None


@contextmanager
def postgres_database(server: str) -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL ``server``, dropped (even if still in
    use) afterwards; yields its URL."""
    name = f"digest_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def caught_sql(connection: Connection) -> Iterator[list[tuple[str, Any]]]:
    """The statements ``connection`` hands its driver inside the block, as (SQL,
    parameters), expanded as they ran: what a plan test EXPLAINs."""
    ran: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        ran.append((sql, parameters))

    event.listen(connection, "before_cursor_execute", catch)
    try:
        yield ran
    finally:
        event.remove(connection, "before_cursor_execute", catch)
