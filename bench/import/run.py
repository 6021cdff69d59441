"""Benchmark: importing a subscriber CSV, digest's streaming importer against a naive
per-row ORM insert, measured in the same run.

Each measurement runs in a fresh Python process on a fresh SQLite file, so its peak
RSS (``ru_maxrss``) is its own. Run from the repository root::

    python bench/import/run.py            # 10,000 and 100,000 rows
    python bench/import/run.py --sizes 10000 100000 1000000

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


def _digest(db: Path, csv_path: Path) -> None:
    from digest.store import Store
    from digest.subscribers import import_csv

    store = Store(f"sqlite:///{db}")
    report = import_csv(store, "bench", csv_path)
    assert report.added > 0 and not report.problems, report


def _naive(db: Path, csv_path: Path) -> None:
    # What an importer written the obvious way does: csv.DictReader over the whole
    # file, one existence query and one ORM object flushed per row.
    import csv

    from sqlalchemy import select

    from digest.store import Store
    from digest.store.subscribers import list_id
    from digest.store.tables import SubscriberRow
    from digest.subscribers import normalize_email

    store = Store(f"sqlite:///{db}")
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


def child(kind: str, db: Path, csv_path: Path) -> None:
    """Run one import in this process and print its figures as JSON."""
    import resource

    from digest.store import Store

    Store(f"sqlite:///{db}").close()  # migrations are not what is measured
    start = time.perf_counter()
    (_digest if kind == "digest" else _naive)(db, csv_path)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024}))


def measure(kind: str, rows: int, work: Path) -> dict[str, float]:
    csv_path = work / f"{rows}.csv"
    if not csv_path.exists():
        make_csv(csv_path, rows)
    db = work / f"{kind}-{rows}.db"
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(db), str(csv_path)],
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
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = {
            (kind, rows): measure(kind, rows, work)
            for rows in args.sizes
            for kind in ("digest", "naive")
        }
    print(f"{'rows':>9} {'importer':>8} {'seconds':>8} {'rows/s':>9} {'peak MiB':>9}")
    for (kind, rows), r in results.items():
        print(
            f"{rows:>9} {kind:>8} {r['seconds']:>8.2f} {r['rows_per_s']:>9.0f} {r['peak_mib']:>9.1f}"
        )
    small, large = min(args.sizes), max(args.sizes)
    for kind in ("digest", "naive"):
        a, b = results[(kind, small)], results[(kind, large)]
        print(
            f"{kind}: peak RSS {large:,} rows / {small:,} rows = {b['peak_mib'] / a['peak_mib']:.2f}"
        )
    speedup = results[("digest", large)]["rows_per_s"] / results[("naive", large)]["rows_per_s"]
    print(f"digest is {speedup:.1f}x the naive importer's rows/s at {large:,} rows")


if __name__ == "__main__":
    main()
