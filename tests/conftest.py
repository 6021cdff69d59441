"""Shared fixtures: a copy of the demo project, and databases (SQLite always, PostgreSQL
when ``DIGEST_TEST_DATABASE_URL`` points at a server where the test may create databases)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import PG_ENV, ROOT, postgres_database, postgres_server


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A private copy of the bundled demo (schedules.yaml + examples/); returns the config path."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copy(ROOT / "schedules.yaml", tmp_path / "schedules.yaml")
    return tmp_path / "schedules.yaml"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    server = postgres_server()
    if server is None:
        pytest.skip(
            f"{PG_ENV} is not set: PostgreSQL tests run in CI and where a server is configured"
        )
    with postgres_database(server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on a SQLite file and, when configured, on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digest.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(autouse=True)
def secret_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production configs must have DIGEST_SECRET_KEY; tests that check life without it
    (the demo's generated key, serve's refusal) remove it themselves."""
    monkeypatch.setenv("DIGEST_SECRET_KEY", "test-secret-key-not-for-production")
