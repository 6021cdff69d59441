"""A real HTTP server on 127.0.0.1 (uvicorn + Starlette, ephemeral port) for collection tests.

Each test registers the answers it needs with ``site.route(path, handler)`` (or the
shortcuts ``site.text``/``site.bytes``); every request is logged with its headers and
time so tests can assert what the client sent, how often, and when.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    at: float
    client_port: int = 0


@dataclass
class Site:
    """The server's routes and request log."""

    port: int = 0
    routes: dict[str, Handler] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def text(self, path: str, body: str | bytes, content_type: str = "text/html; charset=utf-8", status: int = 200, headers: dict[str, str] | None = None) -> None:  # fmt: skip
        data = body.encode("utf-8") if isinstance(body, str) else body

        async def handler(_request: Request) -> Response:
            return Response(
                data,
                status_code=status,
                media_type=None,
                headers={"content-type": content_type, **(headers or {})},
            )

        self.routes[path] = handler

    def count(self, path: str) -> int:
        return sum(1 for hit in self.hits if hit.path == path)

    def reset(self) -> None:
        self.routes.clear()
        self.hits.clear()

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        port = request.client.port if request.client else 0
        self.hits.append(Hit(path, dict(request.headers), time.monotonic(), port))
        handler = self.routes.get(path)
        if handler is None:
            return Response(b"not here", status_code=404, media_type="text/plain")
        return await handler(request)


class Server:
    """Runs ``Site`` in a thread for the life of a test module."""

    def __init__(self) -> None:
        self.site = Site()
        app = Starlette(routes=[Route("/{path:path}", self.site._dispatch)])
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets (no 40 ms stalls).
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.site.port = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="error", lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._socket])), daemon=True
        )

    def __enter__(self) -> Site:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self.site

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(5)
        self._socket.close()
