"""The web service (Starlette): subscriber endpoints, archive, preview gallery, webhooks.

``create_app(config, store)`` builds the ASGI app; ``digest serve`` runs it on uvicorn.
Each area of the service is a module here that contributes its routes through
``routes()``: ``pages`` (subscribe, confirm, unsubscribe, preferences), ``archive``,
``review`` (the editorial review's signed links) and ``webhooks``. Request bodies
over ``web.max_body_bytes`` are refused with 413.
Handlers stay thin and never block the event loop: an endpoint that reads the database
is a plain ``def`` (Starlette runs it in its thread pool), or hands that work to
``run_in_threadpool`` after awaiting the request body; the rules are the services'.

Tokens in links are keyed by ``$DIGEST_SECRET_KEY``. Without it the service runs only
as the demo, which is a ``base_url`` on a loopback address (127.0.0.0/8, ::1,
localhost): nobody else can follow such links, so the generated key file beside
schedules.yaml is good enough there and nowhere else.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ..config import Config
from ..store import Store
from ..store.health import ping
from ..tokens import secret_key
from ..webhooks import load_keys as load_webhook_keys
from . import archive, pages, preview, review, webhooks
from .background import BackgroundHealth
from .limits import BodyLimitMiddleware, RateLimiter


def healthz(request: Request) -> JSONResponse:
    """For monitors: 200 while the service can reach its database, with ``status``
    ``ok``, or ``degraded`` while the latest background task (a confirmation message)
    failed; ``background`` counts the failures (see ``background``)."""
    ping(request.app.state.store)
    health: BackgroundHealth = request.app.state.background
    return JSONResponse(
        {
            "status": "degraded" if health.latest_failed else "ok",
            "background": health.report(),
        }
    )


def routes() -> list[BaseRoute]:
    """Every route of the service."""
    return [
        Route("/healthz", healthz),
        *pages.routes(),
        *archive.routes(),
        *webhooks.routes(),
        *preview.routes(),
        *review.routes(),
    ]


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
    app.state.webhook_keys = load_webhook_keys(config)
    app.state.background = BackgroundHealth()
    app.state.ip_limiter = RateLimiter(web.subscribe_per_ip, web.rate_window_seconds)
    app.state.address_limiter = RateLimiter(web.subscribe_per_address, web.rate_window_seconds)
    return app
