"""Fetching: one shared ``httpx.AsyncClient`` for HTTP, plain file reads for local paths.

``Fetcher.get`` returns a ``Response`` or raises ``SourceError`` with a sentence that
names the URL and the reason; callers report it against the source and go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from ..errors import SourceError, SourceGone

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=10.0)


@dataclass(frozen=True, slots=True)
class Response:
    """A fetched resource: the final URL after redirects, its status, headers and body."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class Fetcher:
    """Gets URLs and local files, with a cap on concurrency and on body size.

    Pass ``client`` to inject a transport (tests) or share a client; otherwise the
    fetcher owns one and closes it in ``aclose``.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        user_agent: str = "digest",
        max_bytes: int = DEFAULT_MAX_BYTES,
        concurrency: int = 8,
    ) -> None:
        self._own_client = client is None
        self.client = client or httpx.AsyncClient(
            timeout=DEFAULT_TIMEOUT,
            follow_redirects=True,
            max_redirects=5,
            headers={"User-Agent": user_agent},
        )
        self.max_bytes = max_bytes
        self._slots = asyncio.Semaphore(concurrency)

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def get(self, url: str) -> Response:
        """Fetch ``url`` (``http(s):`` or ``file:``); ``SourceError`` on any failure."""
        scheme = urlsplit(url).scheme.lower()
        if scheme == "file":
            return await asyncio.to_thread(self._read_file, url)
        if scheme not in ("http", "https"):
            raise SourceError(url, f"'{scheme}:' URLs are not supported; use http(s) or a path")
        async with self._slots:
            return await self._get_http(url)

    def _read_file(self, url: str) -> Response:
        path = Path(unquote(urlsplit(url).path))
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise SourceError(url, f"the file is larger than {self.max_bytes} bytes")
            body = path.read_bytes()
        except FileNotFoundError:
            raise SourceError(str(path), "no such file") from None
        except IsADirectoryError:
            raise SourceError(str(path), "is a folder, not a file") from None
        except OSError as exc:
            raise SourceError(str(path), f"cannot be read ({exc.strerror})") from None
        return Response(url=url, status=200, headers={}, body=body)

    async def _get_http(self, url: str) -> Response:
        try:
            async with self.client.stream("GET", url) as response:
                if response.status_code == 410:
                    raise SourceGone(url, "the server says it is gone for good (HTTP 410)")
                if response.status_code >= 400:
                    raise SourceError(url, f"the server answered HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise SourceError(
                            url, f"the response is larger than {self.max_bytes} bytes"
                        )
                    chunks.append(chunk)
                return Response(
                    url=str(response.url),
                    status=response.status_code,
                    headers=dict(response.headers),
                    body=b"".join(chunks),
                )
        except httpx.TooManyRedirects:
            raise SourceError(url, "too many redirects") from None
        except httpx.TimeoutException:
            raise SourceError(url, "timed out") from None
        except httpx.HTTPError as exc:
            raise SourceError(url, f"could not be fetched ({exc})") from None
