"""The command line: ``digest <command>`` (also ``python send.py`` and ``python -m digest``).

Each module here adds its commands to the one ``app``; importing them registers them.
"""

from . import (  # noqa: F401  (registers the commands)
    core,
    editorial,
    email,
    ledger,
    retry,
    schedule,
    subscribers,
    web,
    workers,
)
from .app import app, main

__all__ = ["app", "main"]
