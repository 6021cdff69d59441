"""Whether the database answers: for the web service's health check."""

from __future__ import annotations

from . import Store


def ping(store: Store) -> None:
    """Run a trivial query; the driver's error when the database cannot be reached."""
    with store.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
