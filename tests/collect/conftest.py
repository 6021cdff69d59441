"""Fixtures of the collection tests: one loopback site per module, reset for each test,
and a store on a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.store import Store
from tests.support.collect_server import Server, Site


@pytest.fixture(scope="module")
def server() -> Iterator[Site]:
    with Server() as site:
        yield site


@pytest.fixture
def site(server: Site) -> Site:
    server.reset()
    return server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'digest.db'}")
    yield store
    store.close()
