"""Benchmark: importing a subscriber CSV, digest's streaming importer against a naive
per-row ORM insert, measured in the same run.

Each measurement runs in a fresh Python process on a fresh database (a SQLite file,
or with ``--db postgresql`` a new database on the server at 127.0.0.1:5432), so its
peak RSS (``ru_maxrss``) is its own. Run from the repository root::

    python bench/import/run.py            # 10,000 and 100,000 rows, SQLite
    python bench/import/run.py --sizes 10000 100000 1000000
    python bench/import/run.py --db postgresql --sizes 20000 60000 100000

A linear importer keeps the same rows/s at every size.

Prints rows/s and peak RSS per size for both, and the ratios: memory is flat when
the 100k peak is close to the 10k peak.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_csv(path: Path, rows: int) -> None:
    """A CSV of ``rows`` distinct subscribers with a name and two attributes."""
    rng = random.Random(rows)
    cities = ["Oslo", "Lagos", "Lima", "Pune", "Perth", "Quito", "Riga", "Turku"]
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("\ufeffemail,name,city,plan\n")
        for i in range(rows):
            handle.write(
                f"reader{i}@example{i % 97}.org,Reader {i},{rng.choice(cities)},{'paid' if i % 5 else 'free'}\n"
            )


PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


def database_url(kind: str, tag: str, work: Path) -> str:
    """A fresh, empty database of ``kind`` named after ``tag``."""
    if kind == "sqlite":
        return f"sqlite:///{work / tag}.db"
    import psycopg

    name = "bench_import_" + tag.replace("-", "_")
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")
    return f"{PG_SERVER}/{name}"


def _digest(url: str, csv_path: Path) -> None:
    from digest.store import Store
    from digest.subscribers import import_csv

    store = Store(url)
    report = import_csv(store, "bench", csv_path)
    assert report.added > 0 and not report.problems, report


def _naive(url: str, csv_path: Path) -> None:
    # What an importer written the obvious way does: csv.DictReader over the whole
    # file, one existence query and one ORM object flushed per row.
    import csv

    from sqlalchemy import select

    from digest.store import Store
    from digest.store.subscribers import list_id
    from digest.store.tables import SubscriberRow
    from digest.subscribers import normalize_email

    store = Store(url)
    with store.session() as session, csv_path.open(encoding="utf-8-sig") as handle:
        bench_id = list_id(session, "bench", create=True)
        for record in list(csv.DictReader(handle)):
            email, key = normalize_email(record.pop("email"))
            found = session.scalar(
                select(SubscriberRow).where(
                    SubscriberRow.list_id == bench_id, SubscriberRow.email_key == key
                )
            )
            if found is None:
                session.add(
                    SubscriberRow(
                        list_id=bench_id,
                        email=email,
                        email_key=key,
                        name=record.pop("name"),
                        status="active",
                        status_source="import",
                        attributes=record,
                    )
                )
                session.flush()


def child(kind: str, url: str, csv_path: Path) -> None:
    """Run one import in this process and print its figures as JSON."""
    import resource

    from digest.store import Store

    Store(url).close()  # migrations are not what is measured
    start = time.perf_counter()
    (_digest if kind == "digest" else _naive)(url, csv_path)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024}))


def measure(kind: str, rows: int, work: Path, db: str) -> dict[str, float]:
    csv_path = work / f"{rows}.csv"
    if not csv_path.exists():
        make_csv(csv_path, rows)
    url = database_url(db, f"{kind}-{rows}", work)
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, url, str(csv_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["rows_per_s"] = rows / figures["seconds"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--digest-only", action="store_true", help="skip the naive importer (slow on PostgreSQL)"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        child(args.child[0], args.child[1], Path(args.child[2]))
        return
    kinds = ("digest",) if args.digest_only else ("digest", "naive")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = {
            (kind, rows): measure(kind, rows, work, args.db)
            for rows in args.sizes
            for kind in kinds
        }
    print(f"{'rows':>9} {'importer':>8} {'seconds':>8} {'rows/s':>9} {'peak MiB':>9}")
    for (kind, rows), r in results.items():
        print(
            f"{rows:>9} {kind:>8} {r['seconds']:>8.2f} {r['rows_per_s']:>9.0f} {r['peak_mib']:>9.1f}"
        )
    small, large = min(args.sizes), max(args.sizes)
    for kind in kinds:
        a, b = results[(kind, small)], results[(kind, large)]
        print(
            f"{kind}: peak RSS {large:,} rows / {small:,} rows = {b['peak_mib'] / a['peak_mib']:.2f}, "
            f"rows/s {large:,} rows / {small:,} rows = {b['rows_per_s'] / a['rows_per_s']:.2f}"
        )
    if args.digest_only:
        return
    speedup = results[("digest", large)]["rows_per_s"] / results[("naive", large)]["rows_per_s"]
    print(f"digest is {speedup:.1f}x the naive importer's rows/s at {large:,} rows")


if __name__ == "__main__":
    main()
