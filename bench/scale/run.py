"""Scaling benchmarks, each compared with a peer measured in the same run.

    python bench/scale/run.py ledger [--quick] [--db sqlite|postgresql|both]
    python bench/scale/run.py workers [--quick] [--processes 1 2 4]
    python bench/scale/run.py killed [--quick]

``ledger``: an issue sent after ``--history`` settled rows of earlier issues, against
the same issue on an empty ledger, on SQLite and PostgreSQL, each with the planner's
statistics fresh (``ANALYZE``) and absent (a freshly loaded table that no ANALYZE or
autovacuum has seen). The send is the real dispatch (claim, build, settle) through a
backend that accepts every message at once, so the ledger is what is measured. Both
ledgers are loaded once; their send rates are measured in ``--rounds`` alternating
rounds of ``--sample`` messages each (the best round counts: on a shared machine the
load of other jobs falls on both alike), continuing the same issue (the cost of a claim
depends on the table and its indexes, not on how far the send got). The time of one
claim of 50 rows is measured alone as well.

``workers``: an issue sent by ``digest run`` through 1, 2 and 4 ``digest worker``
processes (RabbitMQ at 127.0.0.1, PostgreSQL) into Postfix's ``smtp-sink``: msg/s from
the first to the last settled row, the scaling efficiency against one worker, and the
workers' CPU seconds per 1,000 messages.

``killed``: three workers, one killed with SIGKILL once a third of the list is sent,
into an aiosmtpd sink that counts every recipient: lost (never received), received
twice, and the seconds until the rows the killed worker held were sent by the others.
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

    name = f"{PG_DATABASE}_{tag}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")
    return f"{PG_SERVER}/{name}"


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
    from tests.support.mailserver.issue import make_factory

    backend = AcceptAll("bench", SimpleNamespace(connections=4))
    counted = {"sent": 0}

    def progress(snapshot) -> None:
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
        f"recipients {args.recipients:,}, history {args.history:,} settled rows; "
        f"rates over {args.rounds} alternating rounds of {args.sample:,} messages "
        "(best round), batches of 50, 4 connections"
    )
    print(f"{'database':>10} {'statistics':>10} {'ledger':>8} {'claim ms':>9} {'msg/s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            stores: dict[int, tuple[Store, int]] = {}
            for history in (0, args.history):
                store = Store(fresh_url(kind, Path(tmp), f"h{history}"))
                stores[history] = (store, populate(store, args.recipients, history))
            # Without statistics first: PostgreSQL cannot forget what ANALYZE told it.
            for fresh in (False, True):
                stats = "fresh" if fresh else "none"
                claims = {}
                for history, (store, issue_id) in stores.items():
                    statistics_mode(store, fresh)
                    claims[history] = claim_seconds(store, issue_id)
                    if args.plans:
                        print(plan(store, issue_id))
                # Alternating rounds, so that the load of a shared machine falls on both.
                rates: dict[int, list[float]] = {history: [] for history in stores}
                for _ in range(args.rounds):
                    for history, (store, issue_id) in stores.items():
                        rates[history].append(send_rate(store, issue_id, args.sample))
                for history in stores:
                    label = "empty" if history == 0 else "history"
                    print(
                        f"{kind:>10} {stats:>10} {label:>8} {claims[history] * 1000:>9.2f}"
                        f" {max(rates[history]):>8.0f}",
                        flush=True,
                    )
                ratio = max(rates[args.history]) / max(rates[0])
                print(f"{kind:>10} {stats:>10} ratio history/empty {ratio:.2f}", flush=True)
            for store, _ in stores.values():
                store.close()


BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def fleet_project(work: Path, recipients: int, port: int) -> tuple[Path, Store]:
    """A schedules.yaml in ``work`` sending newsletter ``bench`` (the demo feed) to
    ``recipients`` readers through the SMTP sink at ``port``, on workers; its store."""
    import uuid

    import yaml

    url = fresh_url("postgresql", work, "fleet")
    store = Store(url)
    populate(store, recipients, 0)
    with store.session() as session:  # populate's own issue is not the one under test
        session.execute(text("DELETE FROM issues"))
    config = {
        "database": url,
        "workers": {"broker": BROKER, "batch": 500, "queue": f"bench-{uuid.uuid4().hex}"},
        "backends": {
            "sink": {"type": "smtp", "host": "127.0.0.1", "port": port, "security": "none"}
        },
        "newsletters": {
            "bench": {
                "title": "Bench",
                "from": "Bench <news@digest.test>",
                "sources": [{"feed": str(ROOT / "examples" / "site" / "feed.xml")}],
                "list": "news",
                "backend": "sink",
                "postal_address": "1 Bench Street",
            }
        },
    }
    path = work / "schedules.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, store


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT), "DIGEST_SECRET_KEY": "bench-" + "k" * 40}


def start_workers(config: Path, n: int) -> list:
    import subprocess

    return [
        subprocess.Popen(
            [sys.executable, "-m", "digest", "-c", str(config), "worker"],
            cwd=config.parent,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(n)
    ]


def sent_span(store: Store) -> tuple[int, float]:
    """Rows sent, and seconds from the first to the last settlement."""
    with store.session() as session:
        n, first, last = session.execute(
            text(
                "SELECT count(*), min(updated_at), max(updated_at) FROM deliveries WHERE status = 'sent'"
            )
        ).one()
    return int(n), (last - first).total_seconds() if n else 0.0


def workers_bench(args: argparse.Namespace) -> None:
    import resource
    import signal
    import subprocess

    from bench.send.run import SmtpSink

    print(
        f"{args.recipients:,} recipients into smtp-sink, PostgreSQL, RabbitMQ, one task per 500 rows"
    )
    print(f"{'workers':>8} {'msg/s':>8} {'efficiency':>10} {'CPU s/1000':>10}")
    base = None
    for n in args.processes:
        with tempfile.TemporaryDirectory() as tmp:
            sink = SmtpSink()
            config, store = fleet_project(Path(tmp), args.recipients, sink.port)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            workers = start_workers(config, n)
            subprocess.run(
                [sys.executable, "-m", "digest", "-c", str(config), "-q", "run", "bench"],
                cwd=tmp,
                env=_env(),
                check=True,
                stdout=subprocess.DEVNULL,
            )
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(60)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            sent, seconds = sent_span(store)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            rate = sent / seconds
            base = base or rate
            print(
                f"{n:>8} {rate:>8.0f} {rate / (base * n):>10.2f} {cpu / sent * 1000:>10.2f}",
                flush=True,
            )
            store.close()
            sink.stop()


def killed_bench(args: argparse.Namespace) -> None:
    import os
    import signal
    import subprocess

    from bench.send.run import RecordingSink
    from digest.hosts import is_alive

    with tempfile.TemporaryDirectory() as tmp:
        sink = RecordingSink()
        config, store = fleet_project(Path(tmp), args.recipients, sink.port)
        workers = start_workers(config, 3)
        run = subprocess.Popen(
            [sys.executable, "-m", "digest", "-c", str(config), "-q", "run", "bench"],
            cwd=tmp,
            env=_env(),
            stdout=subprocess.DEVNULL,
        )
        while sink.total() < args.recipients // 3:
            time.sleep(0.05)
        os.killpg(workers[0].pid, signal.SIGKILL)
        killed_at = time.monotonic()
        workers[0].wait()
        with store.session() as session:
            held = session.execute(
                text(
                    "SELECT id, claimed_by FROM deliveries WHERE status = 'queued' AND claimed_by != ''"
                )
            ).all()
        orphans = [row_id for row_id, holder in held if is_alive(holder) is False]
        while True:
            with store.session() as session:
                left = session.execute(
                    text(
                        "SELECT count(*) FROM deliveries WHERE status = 'queued' AND id = ANY(:ids)"
                    ),
                    {"ids": orphans},
                ).scalar_one()
            if not left:
                break
            time.sleep(0.1)
        recovered = time.monotonic() - killed_at
        run.wait()
        for worker in workers[1:]:
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
        received = sink.received
        lost = args.recipients - len(received)
        twice = sum(n - 1 for n in received.values())
        print(
            f"{args.recipients:,} recipients, 3 workers, one killed at {args.recipients // 3:,} sent: "
            f"{lost} lost, {twice} received twice (in-flight window per worker: 200), "
            f"its {len(orphans)} held rows sent by the others within {recovered:.1f} s"
        )
        store.close()
        sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    led = sub.add_parser("ledger", help="an issue after a long history vs an empty ledger")
    led.add_argument("--quick", action="store_true", help="100,000 after 200,000")
    led.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    led.add_argument("--recipients", type=int, default=1_000_000)
    led.add_argument("--history", type=int, default=2_000_000)
    led.add_argument("--sample", type=int, default=50_000)
    led.add_argument("--rounds", type=int, default=3)
    led.add_argument("--plans", action="store_true", help="print the claim query's plan")
    work = sub.add_parser("workers", help="1, 2 and 4 worker processes into smtp-sink")
    work.add_argument("--quick", action="store_true", help="20,000 recipients")
    work.add_argument("--recipients", type=int, default=1_000_000)
    work.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    kill = sub.add_parser("killed", help="3 workers, one killed with SIGKILL mid-send")
    kill.add_argument("--quick", action="store_true", help="20,000 recipients")
    kill.add_argument("--recipients", type=int, default=200_000)
    args = parser.parse_args()
    if args.bench == "ledger":
        if args.quick:
            args.recipients, args.history, args.sample = 100_000, 200_000, 10_000
        ledger_bench(args)
        return
    if args.quick:
        args.recipients = 20_000
    (workers_bench if args.bench == "workers" else killed_bench)(args)


if __name__ == "__main__":
    main()
