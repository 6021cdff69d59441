#!/usr/bin/env python3
"""Developer tasks that need nothing but python3: ``python3 tasks.py demo|check|test``.

Each task creates ``.venv`` and installs the project with its test extras when they
are missing or pyproject.toml changed, so it works on a fresh clone and running it
twice is harmless.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"


def _run(*args: str | Path) -> None:
    result = subprocess.run([str(a) for a in args], cwd=ROOT)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    """Create .venv and install ``.[test]`` unless pyproject.toml is unchanged since."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("Creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing digest and its test dependencies into .venv ...", flush=True)
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[test]")
    STAMP.write_text(wanted)


def demo() -> None:
    """The main job on the bundled demo: import the demo list, preview, then send."""
    digest = BIN / "digest"
    _run(digest, "subscribers", "import", "demo", "examples/subscribers.csv")
    _run(digest, "preview", "weekly", "--out", "preview")
    _run(digest, "run", "weekly")


def check() -> None:
    """The static checks: ruff's lint rules and mypy's types (both set in pyproject.toml)."""
    _run(BIN / "ruff", "check", "digest", "tests", "bench")
    _run(BIN / "python", "-m", "mypy")


def test() -> None:
    """The whole test suite (extra pytest arguments are passed on)."""
    _run(BIN / "python", "-m", "pytest", *sys.argv[2:])


TASKS = {"demo": demo, "check": check, "test": test}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        print(f"usage: python3 tasks.py {{{'|'.join(TASKS)}}} [args]", file=sys.stderr)
        sys.exit(2)
    ensure_venv()
    TASKS[sys.argv[1]]()
