"""Backends: how messages leave. One file per kind, each filling in ``Backend``'s hooks.

This package is the registry of backends: each module that defines a ``Backend``
subclass with a ``config_model`` is one backend type (see ``digest.registry``).
``BACKENDS``, ``BACKEND_TYPES`` and the schedules.yaml union ``AnyBackendConfig``
(discriminated on ``type``) are derived from them.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from ..errors import ConfigError
from ..registry import members
from .base import Backend, BackendConfig


def _backends(module: ModuleType) -> list[type[Backend]]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Backend)
        and value.__module__ == module.__name__
        and "config_model" in vars(value)
    ]


BACKENDS: dict[str, type[Backend]] = {
    cls.type: cls
    for module in members(__name__, __path__, lambda module: bool(_backends(module)))
    for cls in _backends(module)
}
BACKEND_TYPES: tuple[str, ...] = tuple(BACKENDS)
if TYPE_CHECKING:  # the union is built at import time, which a type checker cannot follow
    AnyBackendConfig = BackendConfig
else:
    #: One ``backends.<name>`` entry of schedules.yaml: the model its ``type`` names.
    AnyBackendConfig = Annotated[
        Union[tuple(cls.config_model for cls in BACKENDS.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]


def make_backend(name: str, config: Any) -> Backend:
    """The backend for the ``backends.<name>`` entry of schedules.yaml."""
    try:
        cls = BACKENDS[config.type]
    except KeyError:
        raise ConfigError(f"backends.{name}: unknown backend type '{config.type}'.") from None
    return cls(name, config)


__all__ = ["BACKENDS", "BACKEND_TYPES", "AnyBackendConfig", "Backend", "make_backend"]
