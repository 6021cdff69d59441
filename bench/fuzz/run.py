"""Benchmark: property-based fuzzing of every parser of outside input, at volume.

Runs the Hypothesis properties of the test suite (``tests/test_fuzz_inputs.py`` and any
other ``tests/**/test_fuzz*.py``) with ``DIGEST_FUZZ_EXAMPLES`` examples per property and
reports how many cases were generated, how many failed, and how long it took. The
default suite runs the same properties with a few hundred examples each. Run from the
repository root::

    python bench/fuzz/run.py                  # 20,000 examples per property
    python bench/fuzz/run.py --examples 50000

Exit status 1 when any property failed (the failing example is printed by pytest).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Hypothesis's statistics, per property and phase: "- 19843 passing, 0 failing, and 12
# invalid test cases" (invalid ones were discarded by a filter and are not counted).
_COUNTS = re.compile(r"(\d+) passing, (\d+) failing, and \d+ invalid test cases")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="examples per property")
    args = parser.parse_args()
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_fuzz*.py"))
    env = {**os.environ, "DIGEST_FUZZ_EXAMPLES": str(args.examples)}
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--hypothesis-show-statistics",
            "-W",
            "ignore::DeprecationWarning",
            *files,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    passing = failing = 0
    for match in _COUNTS.finditer(result.stdout):
        passing += int(match.group(1))
        failing += int(match.group(2))
    properties = len(re.findall(r"^tests/\S+::test_\S+:$", result.stdout, flags=re.M))
    print(f"files: {', '.join(files)}")
    print(f"properties: {properties}, examples asked per property: {args.examples:,}")
    print(f"generated cases: {passing + failing:,} ({passing:,} passing, {failing:,} failing)")
    print(f"time: {seconds:.0f} s ({(passing + failing) / seconds:,.0f} cases/s)")
    print(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr)
    return result.returncode and 1


if __name__ == "__main__":
    sys.exit(main())
