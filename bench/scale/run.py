"""Scaling benchmarks, each compared with a peer measured in the same run.

    python bench/scale/run.py ledger [--quick] [--db sqlite|postgresql|both]

``ledger``: an issue sent after ``--history`` settled rows of earlier issues, against
the same issue on an empty ledger, on SQLite and PostgreSQL, each with the planner's
statistics fresh (``ANALYZE``) and absent (a freshly loaded table that no ANALYZE or
autovacuum has seen). The send is the real dispatch (claim, build, settle) through a
backend that accepts every message at once, so the ledger is what is measured. The
rate is taken over the first ``--sample`` messages of the ``--recipients``-row issue
(the cost of a claim depends on the table and its indexes, not on how far the send
got), and the time of one claim of 50 rows is measured alone as well.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from digest.backends.base import Backend, sent  # noqa: E402
from digest.dispatch import SendOptions, send_issue  # noqa: E402
from digest.models import Delivery, Message  # noqa: E402
from digest.store import Store, ledger  # noqa: E402

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
PG_DATABASE = "digest_bench_scale"


class AcceptAll(Backend):
    """A backend whose server accepts every message at once."""

    type = "accept-all"

    async def deliver_batch(self, messages: Sequence[Message]) -> list[Delivery]:
        await self.limiter.acquire(len(messages))
        return [sent(message, f"<{message.subscriber_id}@bench>") for message in messages]


def fresh_url(kind: str, work: Path, tag: str) -> str:
    """An empty database of ``kind``."""
    if kind == "sqlite":
        return f"sqlite:///{work / tag}.db"
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
        c.execute(f"CREATE DATABASE {PG_DATABASE}")
    return f"{PG_SERVER}/{PG_DATABASE}"


def populate(store: Store, recipients: int, history: int) -> int:
    """``recipients`` subscribers on list ``news``, ``history`` rows settled ``sent`` for
    earlier issues (one issue per ``recipients`` rows), and a new issue queued; its id."""
    dialect = store.engine.dialect.name
    series = (
        "generate_series(1, :n) AS s(n)"
        if dialect == "postgresql"
        else "(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < :n) "
        "SELECT n FROM c) AS s"
    )
    now = "CURRENT_TIMESTAMP"
    with store.session() as session:
        session.execute(text(f"INSERT INTO lists (name, created_at) VALUES ('news', {now})"))
        session.execute(
            text(
                "INSERT INTO subscribers (list_id, email, email_key, name, status, status_source,"
                " attributes, created_at, updated_at) SELECT 1, 'r' || s.n || '@example.test',"
                f" 'r' || s.n || '@example.test', '', 'active', 'import', '{{}}', {now}, {now}"
                f" FROM {series}"
            ),
            {"n": recipients},
        )
    number = 0
    left = history
    while True:
        number += 1
        with store.session() as session:
            session.execute(
                text(
                    "INSERT INTO issues (newsletter, number, issue_date, status, subject,"
                    " preheader, html, text, slots, created_at) VALUES ('weekly', :number,"
                    f" '2026-01-01', 'sending', 'Weekly', '', '<p>@@g@@</p>', '@@g@@', '{{}}', {now})"
                ),
                {"number": number},
            )
            issue_id = session.execute(text("SELECT max(id) FROM issues")).scalar_one()
            ledger.queue(session, issue_id, "news")
            if left <= 0:
                return int(issue_id)
            size = min(left, recipients)
            session.execute(
                text(
                    "UPDATE deliveries SET status = 'sent', attempts = 1, provider_id = 'p'"
                    " WHERE issue_id = :issue AND subscriber_id <= :size"
                ),
                {"issue": issue_id, "size": size},
            )
            session.execute(
                text("DELETE FROM deliveries WHERE issue_id = :issue AND status = 'queued'"),
                {"issue": issue_id},
            )
            session.execute(
                text("UPDATE issues SET status = 'sent' WHERE id = :issue"), {"issue": issue_id}
            )
            left -= size


def statistics_mode(store: Store, fresh: bool) -> None:
    """Give the planner fresh statistics, or take away all it has."""
    with store.engine.begin() as connection:
        if store.engine.dialect.name == "postgresql":
            if fresh:
                connection.exec_driver_sql("ANALYZE")
            else:
                for table in ("deliveries", "subscribers", "issues"):
                    connection.exec_driver_sql(
                        f"ALTER TABLE {table} SET (autovacuum_enabled = false)"
                    )
                connection.exec_driver_sql(
                    "DELETE FROM pg_statistic WHERE starelid = 'deliveries'::regclass"
                )
        else:
            connection.exec_driver_sql("ANALYZE" if fresh else "DROP TABLE IF EXISTS sqlite_stat1")


def claim_seconds(store: Store, issue_id: int, rounds: int = 20) -> float:
    """The median time of one claim of 50 rows (released again, so each claim is alike)."""
    times = []
    for n in range(rounds):
        worker = f"bench:{n}"
        start = time.perf_counter()
        with store.session() as session:
            ledger.claim(session, issue_id, worker, 50, 60)
        times.append(time.perf_counter() - start)
        ledger.release(store, issue_id, worker)
    return statistics.median(times)


def plan(store: Store, issue_id: int) -> str:
    """The database's plan for the claim query."""
    # The statement itself, compiled for the database (private: only a bench reads it).
    compiled = ledger._claimable().compile(dialect=store.engine.dialect)
    values = {"issue": issue_id, "size": 50, "now": "2030-01-01 00:00:00.000000"}
    with store.engine.begin() as connection:
        if store.engine.dialect.name == "postgresql":
            params = compiled.construct_params(values)
            rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", params).all()
            return "\n".join(row[0] for row in rows)
        params = compiled.construct_params(values)
        positional = tuple(params[name] for name in compiled.positiontup or ())
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional).all()
        return "\n".join(str(row[-1]) for row in rows)


def send_rate(store: Store, issue_id: int, sample: int) -> float:
    """Messages per second over the first ``sample`` messages of the issue."""
    from tests.mailserver.issue import make_factory

    backend = AcceptAll("bench", SimpleNamespace(connections=4))
    counted = {"sent": 0}

    def progress(snapshot) -> None:  # type: ignore[no-untyped-def]
        counted["sent"] = snapshot.sent

    async def go() -> float:
        start = time.perf_counter()
        async with backend:
            await send_issue(
                store,
                issue_id,
                make_factory(),
                backend,
                options=SendOptions(batch_size=50),
                progress=progress,
                stop=lambda: counted["sent"] >= sample,
            )
        return counted["sent"] / (time.perf_counter() - start)

    return asyncio.run(go())


def ledger_bench(args: argparse.Namespace) -> None:
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(
        f"recipients {args.recipients:,}, history {args.history:,} settled rows, "
        f"rate over the first {args.sample:,} messages, batches of 50, 4 connections"
    )
    print(f"{'database':>10} {'statistics':>10} {'ledger':>8} {'claim ms':>9} {'msg/s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for fresh in (False, True):
                rates = {}
                for history in (0, args.history):
                    tag = f"{kind}-{history}-{fresh}"
                    url = fresh_url(kind, Path(tmp), tag)
                    store = Store(url)
                    issue_id = populate(store, args.recipients, history)
                    statistics_mode(store, fresh)
                    claim = claim_seconds(store, issue_id)
                    if args.plans:
                        print(plan(store, issue_id))
                    rates[history] = send_rate(store, issue_id, args.sample)
                    label = "empty" if history == 0 else "history"
                    stats = "fresh" if fresh else "none"
                    print(
                        f"{kind:>10} {stats:>10} {label:>8} {claim * 1000:>9.2f}"
                        f" {rates[history]:>8.0f}",
                        flush=True,
                    )
                    store.close()
                ratio = rates[args.history] / rates[0]
                print(
                    f"{kind:>10} {'fresh' if fresh else 'none':>10} ratio history/empty {ratio:.2f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    led = sub.add_parser("ledger", help="an issue after a long history vs an empty ledger")
    led.add_argument("--quick", action="store_true", help="100,000 after 200,000")
    led.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    led.add_argument("--recipients", type=int, default=1_000_000)
    led.add_argument("--history", type=int, default=2_000_000)
    led.add_argument("--sample", type=int, default=50_000)
    led.add_argument("--plans", action="store_true", help="print the claim query's plan")
    args = parser.parse_args()
    if args.quick:
        args.recipients, args.history, args.sample = 100_000, 200_000, 10_000
    ledger_bench(args)


if __name__ == "__main__":
    main()
