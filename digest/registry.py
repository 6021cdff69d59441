"""Finding providers: a backend or webhook module is registered by being in its package.

``digest.backends`` and ``digest.webhooks`` call ``members`` on themselves, so adding
a provider is adding its files (``backends/<type>.py``, ``webhooks/<type>.py``): the
config union, ``BACKENDS``, the webhook routes and the tests' parameters follow.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from types import ModuleType


def members(
    package: str, path: list[str], wanted: Callable[[ModuleType], bool]
) -> Iterator[ModuleType]:
    """The modules of ``package`` (whose ``__path__`` is ``path``) for which ``wanted``
    is true, imported, in name order; modules whose name starts with ``_`` and the
    shared ``base`` module are skipped."""
    for info in sorted(pkgutil.iter_modules(path), key=lambda info: info.name):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        if wanted(module):
            yield module
