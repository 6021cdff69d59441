"""Subscriber lists: import from CSV, list, and pick who gets an issue.

Addresses are validated with email-validator (syntax only, no DNS). An address is
unique per list by its local part as written and its domain lower-cased.
Re-importing never brings back someone who unsubscribed, bounced or complained.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import SubscriberError
from .models import Subscriber
from .store import Store
from .store.tables import ListRow, SubscriberRow, utcnow

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
# A status someone chose or earned; an import must not overwrite it.
STICKY = frozenset({"unsubscribed", "bounced", "complained"})


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did, and every row it could not use (with its line number)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_status: int = 0
    problems: tuple[str, ...] = ()


def normalize_email(address: str) -> tuple[str, str]:
    """``(email, key)``: the address as stored, and its uniqueness key.

    ``SubscriberError`` with the reason when it is not a valid address.
    """
    address = address.strip()
    if any(c in address for c in "\r\n"):
        raise SubscriberError("the address contains a line break")
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(str(exc)) from None
    local, _, domain = result.normalized.rpartition("@")
    email = f"{local}@{domain.lower()}"
    return email, email


def get_list(session: Session, name: str, *, create: bool = False) -> ListRow | None:
    """The list called ``name``; created when ``create`` is set."""
    row = session.scalar(select(ListRow).where(ListRow.name == name))
    if row is None and create:
        row = ListRow(name=name)
        session.add(row)
        session.flush()
    return row


def _lines(path: Path, problems: list[str]) -> Iterator[str]:
    # Decoded line by line so that one badly encoded line costs that line, not the file.
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubscriberError(f"{path} cannot be read ({exc.strerror}).") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    for number, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{path}, line {number}: is not valid UTF-8; skipped")
            yield "\n"


def read_csv(path: Path) -> tuple[list[tuple[int, str, str, dict[str, str]]], list[str]]:
    """Rows ``(line, email, name, attributes)`` of a subscriber CSV, and the problems met.

    The header must have an ``email`` column (any case); ``name`` is optional and
    every other column becomes an attribute.
    """
    problems: list[str] = []
    reader = csv.reader(io.StringIO("".join(_lines(path, problems))))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise SubscriberError(
            f"{path} is empty; it needs a header line with an 'email' column."
        ) from None
    if "email" not in header:
        raise SubscriberError(
            f"{path} has no 'email' column (the header line is: {', '.join(header) or 'empty'})."
        )
    rows = []
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(
                f"{path}, line {line}: has {len(values)} fields where the header has {len(header)}; skipped"
            )
            continue
        record = dict(zip(header, values, strict=True))
        email = record.pop("email")
        name = record.pop("name", "").strip()
        rows.append((line, email, name, {k: v for k, v in record.items() if k}))
    return rows, problems


def import_csv(store: Store, list_name: str, path: Path, *, status: str = "active") -> ImportReport:
    """Add or update the subscribers in ``path`` on ``list_name`` (created if new).

    Bad rows are reported and skipped; the good ones are imported in one transaction.
    """
    if status not in STATUSES:
        raise SubscriberError(f"'{status}' is not a subscriber status ({', '.join(STATUSES)}).")
    rows, problems = read_csv(path)
    added = updated = unchanged = kept = 0
    now = utcnow()
    with store.session() as session:
        list_row = get_list(session, list_name, create=True)
        assert list_row is not None
        existing = {
            row.email_key: row
            for row in session.scalars(
                select(SubscriberRow).where(SubscriberRow.list_id == list_row.id)
            )
        }
        for line, raw_email, name, attributes in rows:
            try:
                email, key = normalize_email(raw_email)
            except SubscriberError as exc:
                problems.append(
                    f"{path}, line {line}: '{raw_email}' is not a valid address ({exc}); skipped"
                )
                continue
            row = existing.get(key)
            if row is None:
                row = SubscriberRow(
                    list_id=list_row.id,
                    email=email,
                    email_key=key,
                    name=name,
                    status=status,
                    status_source="import",
                    attributes=attributes,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                existing[key] = row
                added += 1
                continue
            changed = False
            if name and name != row.name:
                row.name, changed = name, True
            if attributes and {**row.attributes, **attributes} != row.attributes:
                row.attributes, changed = {**row.attributes, **attributes}, True
            if row.status in STICKY:
                kept += 1
            elif row.status != status:
                row.status, row.status_source, changed = status, "import", True
            if changed:
                row.updated_at = now
                updated += 1
            else:
                unchanged += 1
    return ImportReport(added, updated, unchanged, kept, tuple(problems))


def list_subscribers(store: Store, list_name: str) -> list[tuple[Subscriber, str]]:
    """Every subscriber of ``list_name`` with its status; ``SubscriberError`` if no such list."""
    with store.session() as session:
        list_row = get_list(session, list_name)
        if list_row is None:
            raise SubscriberError(
                f"There is no list '{list_name}'; import subscribers into it first."
            )
        rows = session.scalars(
            select(SubscriberRow)
            .where(SubscriberRow.list_id == list_row.id)
            .order_by(SubscriberRow.id)
        )
        return [
            (Subscriber(id=r.id, email=r.email, name=r.name, list=list_name), r.status)
            for r in rows
        ]


def count_active(session: Session, list_name: str) -> int:
    """How many subscribers of ``list_name`` would get an issue now."""
    return (
        session.scalar(
            select(func.count(SubscriberRow.id))
            .join(ListRow, ListRow.id == SubscriberRow.list_id)
            .where(ListRow.name == list_name, SubscriberRow.status == "active")
        )
        or 0
    )
