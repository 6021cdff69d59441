"""Benchmark: importing a subscriber CSV, digest's streaming importer against a naive
per-row ORM insert, measured in the same run, on SQLite and on PostgreSQL.

Each measurement runs in a fresh Python process on a fresh database (a SQLite file,
or a new database on the PostgreSQL server at 127.0.0.1:5432, dropped afterwards), so
its peak RSS (``ru_maxrss``) is its own. Run from the repository root::

    python bench/import/run.py            # 10,000 and 100,000 rows, SQLite and PostgreSQL
    python bench/import/run.py --db sqlite --sizes 10000 100000 1000000
    python bench/import/run.py --digest-only --sizes 20000 60000 100000 200000 --max-growth 1.5

Prints, per database, size and importer, the time per 1,000 rows: a linear importer
keeps it flat, so the ratio of the largest size's to the smallest's is close to 1
(``--max-growth`` makes the run fail above a given ratio). Then the peak RSS ratio
(memory is flat when the largest size's peak is close to the smallest's), digest's
rows/s against the naive importer's (its peer) and PostgreSQL's time against SQLite's.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


DATABASES = ("sqlite", "postgresql")
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def database_url(kind: str, tag: str, work: Path) -> Iterator[str]:
    """A fresh, empty database of ``kind`` named after ``tag``, gone afterwards."""
    if kind == "sqlite":
        path = work / f"{tag}.db"
        yield f"sqlite:///{path}"
        path.unlink(missing_ok=True)
        return
    import psycopg

    name = "bench_import_" + tag.replace("-", "_")
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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
    with database_url(db, f"{kind}-{rows}", work) as url:
        result = subprocess.run(
            [sys.executable, __file__, "--child", kind, url, str(csv_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    figures["rows_per_s"] = rows / figures["seconds"]
    figures["ms_per_1k"] = figures["seconds"] * 1000 / (rows / 1000)
    return figures


def report(
    results: dict[tuple[str, str, int], dict[str, float]],
    dbs: list[str],
    kinds: tuple[str, ...],
    sizes: list[int],
) -> float:
    """Print the table and the ratios; the largest growth of digest's time per 1,000
    rows from the smallest size to the largest, over the databases."""
    print(
        f"{'database':>10} {'rows':>9} {'importer':>8} {'seconds':>8} "
        f"{'ms/1k rows':>10} {'rows/s':>9} {'peak MiB':>9}"
    )
    for (db, kind, rows), r in results.items():
        print(
            f"{db:>10} {rows:>9} {kind:>8} {r['seconds']:>8.2f} {r['ms_per_1k']:>10.1f} "
            f"{r['rows_per_s']:>9.0f} {r['peak_mib']:>9.1f}"
        )
    small, large = min(sizes), max(sizes)
    growth = 0.0
    for db in dbs:
        for kind in kinds:
            a, b = results[(db, kind, small)], results[(db, kind, large)]
            ratio = b["ms_per_1k"] / a["ms_per_1k"]
            if kind == "digest":
                growth = max(growth, ratio)
            print(
                f"{db} {kind}: ms per 1,000 rows {large:,} rows / {small:,} rows = {ratio:.2f} "
                f"(1.00 is linear), peak RSS {b['peak_mib'] / a['peak_mib']:.2f}"
            )
        if "naive" in kinds:
            speedup = (
                results[(db, "digest", large)]["rows_per_s"]
                / results[(db, "naive", large)]["rows_per_s"]
            )
            print(f"{db}: digest is {speedup:.1f}x the naive importer's rows/s at {large:,} rows")
    if len(dbs) == 2:
        for rows in sizes:
            pg, lite = results[(dbs[1], "digest", rows)], results[(dbs[0], "digest", rows)]
            print(
                f"digest at {rows:,} rows: {dbs[1]} takes {pg['seconds'] / lite['seconds']:.2f}x "
                f"the time of {dbs[0]}"
            )
    return growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--db", choices=DATABASES, nargs="+", default=list(DATABASES), help="databases to run on"
    )
    parser.add_argument(
        "--digest-only", action="store_true", help="skip the naive importer (slow on PostgreSQL)"
    )
    parser.add_argument(
        "--max-growth",
        type=float,
        help="fail when digest's time per 1,000 rows at the largest size is more than this "
        "times that at the smallest, on any database (a check of linearity)",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        child(args.child[0], args.child[1], Path(args.child[2]))
        return
    kinds = ("digest",) if args.digest_only else ("digest", "naive")
    dbs = [db for db in DATABASES if db in args.db]  # SQLite first: the ratios' order
    sizes = sorted(set(args.sizes))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = {
            (db, kind, rows): measure(kind, rows, work, db)
            for db in dbs
            for rows in sizes
            for kind in kinds
        }
    growth = report(results, dbs, kinds, sizes)
    if args.max_growth is not None and growth > args.max_growth:
        sys.exit(
            f"not linear: digest's time per 1,000 rows grew {growth:.2f}x "
            f"(more than --max-growth {args.max_growth})"
        )


if __name__ == "__main__":
    main()
