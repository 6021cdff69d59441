"""The web service (Starlette): subscriber endpoints, archive, preview gallery, webhooks.

``create_app(config, store)`` builds the ASGI app; ``digest serve`` runs it on uvicorn.
Each area of the service is a module here that contributes its routes to ``ROUTES``
through ``routes()``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from ..config import Config
from ..store import Store
from . import preview


async def healthz(request: Request) -> JSONResponse:
    """For monitors: 200 while the service can reach its database."""
    store: Store = request.app.state.store
    with store.engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    return JSONResponse({"status": "ok"})


def routes() -> list[BaseRoute]:
    """Every route of the service."""
    return [Route("/healthz", healthz), *preview.routes()]


def create_app(config: Config, store: Store) -> Starlette:
    """The ASGI application for ``config``, using the open ``store``."""
    app = Starlette(routes=routes())
    app.state.config = config
    app.state.store = store
    return app
