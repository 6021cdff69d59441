"""Subscriber lists as CSV files: import (streamed, in chunks) and export.

An import never brings back someone who unsubscribed, bounced or complained (the
subscriptions service's ``import_status`` decides each row's status); every status it
sets writes its history row, with the file's name as the detail.

An export is safe to open in a spreadsheet: a cell that would be read as a formula
(OWASP's CSV injection rule: it starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) is written with a ``'`` in front, which spreadsheets show as text.
The stored values are untouched, and the import takes that ``'`` off again, so an
export imports back to the same values.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import SubscriberError
from .store import Store, utcnow
from .store import subscriber_import as bulk
from .store import subscribers as rows
from .store.status import SubscriberStatus
from .subscriptions import (
    check_new_status,
    clean_name,
    import_status,
    left_since_active,
    normalize_email,
)

# Rows per statement during an import: large enough to amortise round trips, small
# enough that memory stays flat whatever the file size.
CHUNK = 2000
# The columns an export writes before the attributes.
COLUMNS = ("email", "name", "status", "status_source", "updated_at")
# The first characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _looks_quoted(value: str) -> bool:
    """Whether ``value``, once its leading quotes are taken off, starts a formula."""
    return value.lstrip("'")[:1] in FORMULA_STARTS


def export_cell(value: str) -> str:
    """``value`` as an export writes it: with a ``'`` in front when it starts a formula,
    or starts with quotes followed by one (so that ``import_cell`` gives it back)."""
    return "'" + value if _looks_quoted(value) else value


def import_cell(value: str) -> str:
    """A cell of an imported file with the ``'`` of ``export_cell`` taken off."""
    return value[1:] if value.startswith("'") and _looks_quoted(value) else value


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did, and every row it could not use (with its line number)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_status: int = 0
    problems: tuple[str, ...] = ()


def _lines(handle: IO[bytes], path: Path, problems: list[tuple[int, str]]) -> Iterator[str]:
    # Decoded line by line so that one badly encoded line costs that line, not the file,
    # and so that the file is streamed rather than read whole.
    for number, raw in enumerate(handle, start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append((number, f"{path}, line {number}: is not valid UTF-8; skipped"))
            yield "\n"


def iter_csv(
    handle: IO[bytes], path: Path, problems: list[tuple[int, str]]
) -> Iterator[tuple[int, str, str, dict[str, str]]]:
    """Rows ``(line, email, name, attributes)`` of a subscriber CSV, streamed.

    The header must have an ``email`` column (any case); ``name`` is optional and
    every other column but those an export adds (``COLUMNS``) becomes an attribute. Rows that cannot be used are appended
    to ``problems`` with their line number. ``SubscriberError`` when the header is
    unusable (nothing can be imported then).
    """
    reader = csv.reader(_lines(handle, path, problems))
    try:
        header = [import_cell(h.strip()).lower() for h in next(reader)]
    except StopIteration:
        raise SubscriberError(
            f"{path} is empty; it needs a header line with an 'email' column."
        ) from None
    except csv.Error as exc:
        raise SubscriberError(f"{path}, line 1: the header is not valid CSV ({exc}).") from None
    if problems and problems[0][0] == 1:
        raise SubscriberError(
            f"{path} is not UTF-8 text (its first line cannot be read); "
            "save it as CSV UTF-8 and import it again."
        )
    if "email" not in header:
        raise SubscriberError(
            f"{path} has no 'email' column (the header line is: {', '.join(header) or 'empty'})."
        )
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.line_num
            problems.append((line, f"{path}, line {line}: is not valid CSV ({exc}); skipped"))
            continue
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(
                (
                    line,
                    f"{path}, line {line}: has {len(values)} fields where the header has {len(header)}; skipped",
                )
            )
            continue
        record = dict(zip(header, map(import_cell, values), strict=True))
        email = record.pop("email")
        name = clean_name(record.pop("name", ""))
        # An export's own columns (status, ...) are not attributes when it is imported.
        yield line, email, name, {k: v for k, v in record.items() if k and k not in COLUMNS}


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in items:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _wanted(
    chunk: list[tuple[int, str, str, dict[str, str]]],
    path: Path,
    problems: list[tuple[int, str]],
) -> dict[str, dict[str, Any]]:
    """The valid rows of ``chunk`` by uniqueness key; the invalid ones go to ``problems``."""
    wanted: dict[str, dict[str, Any]] = {}
    for line, raw_email, name, attributes in chunk:
        try:
            email, key = normalize_email(raw_email)
        except SubscriberError as exc:
            problems.append(
                (
                    line,
                    f"{path}, line {line}: '{raw_email}' is not a valid address ({exc}); skipped",
                )
            )
            continue
        if key in wanted:  # the same address twice in a file: the later row wins
            wanted[key]["name"] = name or wanted[key]["name"]
            wanted[key]["attributes"].update(attributes)
            continue
        wanted[key] = {"email": email, "name": name, "attributes": attributes}
    return wanted


def import_csv(store: Store, list_name: str, path: Path, *, status: str = "active") -> ImportReport:
    """Add or update the subscribers in ``path`` on ``list_name`` (created if new).

    The file is streamed and written in chunks of ``CHUNK`` rows with multi-row
    statements, in one transaction: memory stays flat and 100,000 rows take seconds.
    Bad rows are reported and skipped; the good ones are all imported. An existing
    subscriber gets the file's name and attributes, and the file's status unless they
    unsubscribed, bounced or complained.
    """
    wanted_status = check_new_status(status, "imported subscribers")
    problems: list[tuple[int, str]] = []
    added = updated = unchanged = kept = 0
    now = utcnow()
    event = {"source": "import", "detail": path.name, "created_at": now}
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SubscriberError(f"{path} cannot be read ({exc.strerror}).") from None
    with handle, store.session() as session:
        list_id = rows.list_id(session, list_name, create=True)
        assert list_id is not None
        for chunk in _chunks(iter_csv(handle, path, problems), CHUNK):
            wanted = _wanted(chunk, path, problems)
            existing = bulk.existing(session, list_id, wanted)
            new = [
                {
                    "list_id": list_id,
                    "email": values["email"],
                    "email_key": key,
                    "name": values["name"],
                    "status": wanted_status,
                    "status_source": "import",
                    "attributes": values["attributes"],
                    "created_at": now,
                    "updated_at": now,
                }
                for key, values in wanted.items()
                if key not in existing
            ]
            if new:
                ids = bulk.insert_many(session, new)
                bulk.insert_events(
                    session,
                    [
                        {"subscriber_id": i, "status": wanted_status, "previous": "", **event}
                        for i in ids
                    ],
                )
                added += len(new)
            changes: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            left = left_since_active(
                session,
                [old.id for old in existing.values() if old.status == SubscriberStatus.PENDING],
            )
            for key, old in existing.items():
                values = wanted[key]
                change: dict[str, Any] = {}
                if values["name"] and values["name"] != old.name:
                    change["name"] = values["name"]
                merged = {**old.attributes, **values["attributes"]}
                if merged != old.attributes:
                    change["attributes"] = merged
                becomes = import_status(old.status, wanted_status, left_before=old.id in left)
                if old.status != wanted_status and becomes is None:
                    kept += 1
                elif becomes is not None:
                    change.update(status=becomes, status_source="import")
                    events.append(
                        {
                            "subscriber_id": old.id,
                            "status": becomes,
                            "previous": old.status,
                            **event,
                        }
                    )
                if change:
                    changes.append({"id": old.id, "updated_at": now, **change})
                    updated += 1
                else:
                    unchanged += 1
            bulk.update_many(session, changes)
            bulk.insert_events(session, events)
    problems.sort(key=lambda problem: problem[0])
    return ImportReport(added, updated, unchanged, kept, tuple(text for _, text in problems))


def export_csv(store: Store, list_name: str, out: IO[str]) -> int:
    """Write ``list_name`` as CSV (email, name, status, status_source, updated_at, then
    one column per attribute) to ``out``, every cell through ``export_cell``; returns
    the number of rows. The file imports back with ``import_csv``. ``SubscriberError``
    when there is no such list."""
    with store.session() as session:
        rows.require_list(session, list_name)
        extra = sorted(rows.attribute_names(session, list_name) - set(COLUMNS))
        writer = csv.writer(out)
        writer.writerow([*COLUMNS, *map(export_cell, extra)])
        count = 0
        for record in rows.members(session, list_name):
            cells = [
                record.email,
                record.name,
                record.status,
                record.status_source,
                record.updated_at.isoformat(),
                *(str(record.attributes.get(k, "")) for k in extra),
            ]
            writer.writerow(map(export_cell, cells))
            count += 1
        return count
