"""Provider webhooks for bounces and complaints: one module per provider.

This package is the registry of webhook parsers: each module that defines
``parse`` and ``load_keys`` (see ``digest.webhooks.base``) serves
``POST /webhooks/<module name>``; ``PROVIDERS`` and ``load_keys`` are derived from
them (see ``digest.registry``). ``digest.web.webhooks`` routes the requests and
applies what they say.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from starlette.requests import Request

from ..config import Config
from ..registry import members
from .base import Event, Parsed, WebhookKeys

_MODULES = {
    module.__name__.rpartition(".")[2]: module
    for module in members(
        __name__, __path__, lambda module: hasattr(module, "parse") and hasattr(module, "load_keys")
    )
}

#: provider -> its parser: ``parse(request, body, keys, now)``.
PROVIDERS: dict[str, Callable[[Request, bytes, WebhookKeys, float], Parsed]] = {
    name: module.parse for name, module in _MODULES.items()
}


def load_keys(config: Config, environ: Mapping[str, str] = os.environ) -> WebhookKeys:
    """Every provider's credentials (environment) and keys (``config.web``);
    ``ConfigError`` when a configured key cannot be used."""
    return WebhookKeys(
        max_age=config.web.webhook_max_age_seconds,
        providers={name: module.load_keys(config, environ) for name, module in _MODULES.items()},
    )


__all__ = ["PROVIDERS", "Event", "Parsed", "WebhookKeys", "load_keys"]
