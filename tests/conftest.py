"""Shared fixtures: a copy of the demo project, and databases (SQLite always, PostgreSQL
when ``DIGEST_TEST_DATABASE_URL`` points at a server where the test may create databases)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
PG_ENV = "DIGEST_TEST_DATABASE_URL"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A private copy of the bundled demo (schedules.yaml + examples/); returns the config path."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "schedules.yaml", tmp_path / "schedules.yaml")
    return tmp_path / "schedules.yaml"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    server = os.environ.get(PG_ENV)
    if not server:
        pytest.skip(
            f"{PG_ENV} is not set: PostgreSQL tests run in CI and where a server is configured"
        )
    url = make_url(server)
    name = f"digest_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on a SQLite file and, when configured, on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digest.db'}"
    return request.getfixturevalue("postgres_url")
