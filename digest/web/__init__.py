"""The web service (Starlette): subscriber endpoints, archive, preview gallery, webhooks.

``create_app(config, store)`` builds the ASGI app; ``digest serve`` runs it on uvicorn.
Each area of the service is a module here that contributes its routes through
``routes()``: ``pages`` (subscribe, confirm, unsubscribe, preferences), ``archive``
and ``webhooks``. Request bodies over ``web.max_body_bytes`` are refused with 413.

Tokens in links are keyed by ``$DIGEST_SECRET_KEY``. Without it the service runs only
as the demo, which is a ``base_url`` on a loopback address (127.0.0.0/8, ::1,
localhost): nobody else can follow such links, so the generated key file beside
schedules.yaml is good enough there and nowhere else.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ..config import Config
from ..errors import ConfigError
from ..store import Store
from ..tokens import SECRET_ENV, secret_key
from . import archive, pages, preview, webhooks
from .limits import BodyLimitMiddleware, RateLimiter


async def healthz(request: Request) -> JSONResponse:
    """For monitors: 200 while the service can reach its database."""
    store: Store = request.app.state.store
    with store.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    return JSONResponse({"status": "ok"})


def routes() -> list[BaseRoute]:
    """Every route of the service."""
    return [
        Route("/healthz", healthz),
        *pages.routes(),
        *archive.routes(),
        *webhooks.routes(),
        *preview.routes(),
    ]


def is_demo(config: Config) -> bool:
    """Whether ``config`` is the local demo: its ``base_url`` is a loopback address."""
    host = urlsplit(config.base_url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secret(config: Config) -> None:
    """``ConfigError`` unless ``$DIGEST_SECRET_KEY`` is set or ``config`` is the demo."""
    if os.environ.get(SECRET_ENV) or is_demo(config):
        return
    raise ConfigError(
        f"{SECRET_ENV} is not set. The links in messages are signed with it: set it to a long "
        f"random value (for example the output of: python -c 'import secrets; "
        f"print(secrets.token_urlsafe(32))') and keep it the same for every run and serve. "
        f"Only a demo whose base_url is on 127.0.0.1 or localhost runs without it."
    )


def create_app(config: Config, store: Store) -> Starlette:
    """The ASGI application for ``config``, using the open ``store``.

    ``ConfigError`` when a webhook key in ``config.web`` cannot be loaded.
    """
    web = config.web
    app = Starlette(
        routes=routes(),
        middleware=[Middleware(BodyLimitMiddleware, max_bytes=web.max_body_bytes)],
    )
    app.state.config = config
    app.state.store = store
    app.state.secret = secret_key(config.root)
    app.state.webhook_keys = webhooks.load_keys(config)
    app.state.ip_limiter = RateLimiter(web.subscribe_per_ip, web.rate_window_seconds)
    app.state.address_limiter = RateLimiter(web.subscribe_per_address, web.rate_window_seconds)
    return app
