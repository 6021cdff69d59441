"""Fetching: one shared ``httpx.AsyncClient`` for HTTP, plain file reads for local paths.

``Fetcher.get`` returns a ``Response`` or raises ``SourceError`` with a sentence that
names the URL and the reason; callers report it against the source and go on.

What every HTTP request gets, in order:

- the SSRF guard (``guard``) unless the source allows private networks, again on
  every redirect hop, with connections pinned to the addresses it checked;
- robots.txt (``robots``) unless the source turns it off;
- a global cap on requests in flight and a per-host cap (default 4);
- at most 5 redirects, followed here rather than by httpx so each hop is checked,
  and a loop is named as one;
- retries with exponential backoff and jitter on connection errors, 429 and 5xx,
  honouring ``Retry-After`` up to a bound;
- conditional GET when asked (``conditional=True``) and a cache is present;
- a body cap counted after decompression while streaming, so a gzip bomb stops at
  the cap rather than in memory.
"""

from __future__ import annotations

import asyncio
import functools
import random
import ssl
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpcore
import httpx

from ..errors import SourceError, SourceGone
from ..urls import join_url
from .cache import HttpCache
from .guard import PinnedBackend, Resolver, check_host, resolve
from .robots import Robots, RobotsFile

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=10.0, pool=None)
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: RFC 9309: a cached robots.txt may be used for up to a day.
ROBOTS_MAX_AGE = timedelta(hours=24)
#: Connection-level failures worth another attempt; a read timeout is not (it already
#: waited the full timeout, and a drip-feeding server would only drip again).
RETRYABLE_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
)


@dataclass(frozen=True, slots=True)
class Rules:
    """What one source allows its requests: private addresses, robots.txt, per-host cap."""

    allow_private_networks: bool = False
    robots: bool = True
    per_host: int = 4


@dataclass(frozen=True, slots=True)
class Response:
    """A fetched resource: the final URL after redirects, its status, headers and body.

    ``not_modified`` is true when the server answered 304 and the body is the cached one;
    ``listing`` is then what collection parsed from that body last time, if it said.
    """

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    not_modified: bool = False
    listing: dict[str, Any] | None = None

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass
class Stats:
    """Counters of one fetcher's life, for reports and the benchmark."""

    requests: int = 0
    not_modified: int = 0
    retries: int = 0
    body_bytes: int = 0
    from_cache: int = 0


@dataclass(frozen=True, slots=True)
class _Reply:
    url: str
    status: int
    headers: httpx.Headers
    body: bytes = b""


def gunzip_capped(data: bytes, max_bytes: int, url: str) -> bytes:
    """Decompress a gzip document (a ``.xml.gz`` sitemap) without ever holding more than
    ``max_bytes`` of output; ``SourceError`` beyond that or on corrupt data."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise SourceError(url, f"is not valid gzip data ({exc})") from None
    if len(out) > max_bytes:
        raise SourceError(url, f"decompresses to more than {max_bytes} bytes; stopped there")
    return out


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class _Inflater:
    """Streams a ``Content-Encoding`` body out, never producing more than the cap."""

    def __init__(self, encoding: str, url: str) -> None:
        encoding = encoding.strip().lower()
        self.url = url
        if encoding in ("", "identity"):
            self._z = None
        elif encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj()
        else:
            raise SourceError(url, f"the server used an unsupported Content-Encoding '{encoding}'")

    def feed(self, chunk: bytes, room: int) -> bytes:
        """Up to ``room`` + 1 bytes of output for ``chunk`` (one more tells the cap is hit)."""
        if self._z is None:
            return chunk
        try:
            out = self._z.decompress(chunk, room + 1)
            # Output stopped at the limit: the rest waits in unconsumed_tail, and the
            # caller is about to stop anyway, so it is never inflated.
        except zlib.error as exc:
            raise SourceError(self.url, f"sent a corrupt compressed body ({exc})") from None
        return out


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS context of every HTTPS pool: loading the CA bundle takes ~0.1 s, so once."""
    return httpx.create_ssl_context()


class PerHostTransport(httpx.AsyncBaseTransport):
    """The shared client's transport: one small connection pool per host.

    One pool for every host either thrashes (a full pool closes one host's idle
    connection to open another's, so each request pays a new connection) or, made
    large, spends its time scanning hundreds of connections per request. Pools per
    host keep each host's connections for reuse and each scan short. The fetcher's
    semaphores bound the requests in flight, so the pools set no limit of their own.
    """

    def __init__(
        self,
        keepalive_per_host: int = 8,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._limits = httpx.Limits(
            max_connections=None, max_keepalive_connections=keepalive_per_host
        )
        self._network = network_backend
        self._pools: dict[tuple[bytes, bytes, int | None], httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        pool = self._pools.get(key)
        if pool is None:
            # Plain-HTTP pools never do TLS, so they skip loading the CA bundle.
            verify = _tls_context() if key[0] == b"https" else False
            pool = self._pools[key] = httpx.AsyncHTTPTransport(verify=verify, limits=self._limits)
            if self._network is not None:
                # httpx 0.28 takes no network backend; set it on the fresh httpcore pool
                # before its first connection (test_fetch checks that it is used).
                pool._pool._network_backend = self._network
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()
        self._pools.clear()


class Fetcher:
    """Gets URLs and local files for every source of a run.

    Pass ``client`` to inject a transport (tests) or share a client; otherwise the
    fetcher owns one and closes it in ``aclose``. ``cache`` enables conditional GET.
    ``network_backend`` replaces httpcore's sockets under the guard's pinning (tests).
    ``check_addresses=False`` turns the SSRF guard off for injected transports that
    never touch the network.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        user_agent: str = "digest",
        max_bytes: int = DEFAULT_MAX_BYTES,
        concurrency: int = 32,
        cache: HttpCache | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        resolver: Resolver = resolve,
        check_addresses: bool = True,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._own_client = client is None
        # Connections go to the addresses the SSRF guard checked (see guard.PinnedBackend).
        self.network = PinnedBackend(network_backend) if client is None else None
        self.client = client or httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            transport=PerHostTransport(network_backend=self.network),
        )
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.cache = cache
        self.retries = retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.resolver = resolver
        self.check_addresses = check_addresses
        self.stats = Stats()
        self._slots = asyncio.Semaphore(concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._checked: dict[tuple[str, int], str | None] = {}
        self._robots: dict[bool, Robots] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_client:
            await self.client.aclose()

    async def get(self, url: str, rules: Rules = Rules(), *, conditional: bool = False) -> Response:
        """Fetch ``url`` (``http(s):`` or ``file:``); ``SourceError`` on any failure.

        ``conditional`` keeps the response in the cache and revalidates it next time
        (for source documents, not article pages).
        """
        scheme = urlsplit(url).scheme.lower()
        if scheme == "file":
            return await asyncio.to_thread(self._read_file, url)
        if scheme not in ("http", "https"):
            raise SourceError(url, f"'{scheme}:' URLs are not supported; use http(s) or a path")
        if rules.robots:
            refusal = await self._robots_for(rules).refusal(url)
            if refusal:
                raise SourceError(url, refusal)
        return await self._fetch(url, rules, conditional=conditional)

    # -- local files -----------------------------------------------------------

    def _read_file(self, url: str) -> Response:
        path = Path(unquote(urlsplit(url).path))
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                raise SourceError(str(path), f"the file is larger than {self.max_bytes} bytes")
            body = path.read_bytes()
        except FileNotFoundError:
            raise SourceError(str(path), "no such file") from None
        except IsADirectoryError:
            raise SourceError(str(path), "is a folder, not a file") from None
        except OSError as exc:
            raise SourceError(str(path), f"cannot be read ({exc.strerror})") from None
        if body[:2] == b"\x1f\x8b":
            body = gunzip_capped(body, self.max_bytes, str(path))
        return Response(url=url, status=200, headers={}, body=body)

    # -- robots.txt -----------------------------------------------------------

    def _robots_for(self, rules: Rules) -> Robots:
        # robots.txt is fetched under the same address rules as the source asking.
        key = rules.allow_private_networks
        if key not in self._robots:
            robots_rules = Rules(allow_private_networks=key, robots=False, per_host=rules.per_host)

            async def load(url: str) -> RobotsFile:
                try:
                    response = await self._fetch(
                        url,
                        robots_rules,
                        conditional=True,
                        max_age=ROBOTS_MAX_AGE,
                        keep_errors=True,
                    )
                except SourceError:
                    return RobotsFile(status=0)
                return RobotsFile(
                    status=response.status, text=response.body.decode("utf-8", "replace")
                )

            self._robots[key] = Robots(load)
        return self._robots[key]

    # -- HTTP -----------------------------------------------------------------

    async def _fetch(
        self,
        url: str,
        rules: Rules,
        *,
        conditional: bool,
        max_age: timedelta | None = None,
        keep_errors: bool = False,
    ) -> Response:
        """GET ``url`` through redirects, answering from the cache when it is fresh
        (``max_age``) or confirmed (304). ``keep_errors`` returns 4xx/5xx answers
        (and caches them) instead of raising, for robots.txt."""
        cached = self.cache.get(url) if (conditional and self.cache) else None
        if cached and max_age and datetime.now(UTC) - cached.fetched_at < max_age:
            self.stats.from_cache += 1
            return Response(
                cached.final_url, cached.status, {"content-type": cached.content_type}, cached.body
            )
        headers = cached.validators() if cached and cached.status == 200 else {}
        reply = await self._follow(url, rules, headers, read_errors=keep_errors)
        if reply.status == 304 and cached is not None:
            self.stats.not_modified += 1
            if max_age is not None:  # its freshness clock restarts; otherwise no write at all
                assert self.cache is not None
                self.cache.touch(url)
            return Response(
                cached.final_url,
                cached.status,
                {"content-type": cached.content_type},
                cached.body,
                not_modified=True,
                listing=cached.listing,
            )
        if reply.status == 410 and not keep_errors:
            raise SourceGone(url, "the server says it is gone for good (HTTP 410)")
        if reply.status >= 300 and not keep_errors:
            raise SourceError(url, f"the server answered HTTP {reply.status}")
        # A server error is not an answer worth keeping: robots.txt read as "disallow
        # everything" after a 503 must be asked again next run, not in a day.
        if conditional and self.cache is not None and reply.status < 500:
            self.cache.put(
                url,
                final_url=reply.url,
                status=reply.status,
                etag=reply.headers.get("etag", ""),
                last_modified=reply.headers.get("last-modified", ""),
                content_type=reply.headers.get("content-type", ""),
                body=reply.body,
            )
        return Response(reply.url, reply.status, dict(reply.headers), reply.body)

    async def _follow(
        self, url: str, rules: Rules, headers: dict[str, str], *, read_errors: bool
    ) -> _Reply:
        """Follow up to ``MAX_REDIRECTS`` redirects, checking every hop."""
        seen = {url}
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            reply = await self._with_retries(current, rules, headers, read_errors=read_errors)
            location = reply.headers.get("location")
            if reply.status not in REDIRECTS or not location:
                return reply
            target = join_url(current, location.strip())
            if target is None:
                raise SourceError(url, f"redirects to '{location[:200]}', which is not a URL")
            if urlsplit(target).scheme.lower() not in ("http", "https"):
                raise SourceError(url, f"redirects to '{target}', which is not an http(s) URL")
            if target in seen:
                raise SourceError(url, f"redirect loop: {current} sends back to {target}")
            if rules.robots:  # the target's robots.txt has its say too
                refusal = await self._robots_for(rules).refusal(target)
                if refusal:
                    raise SourceError(target, f"{refusal} (reached by a redirect from {url})")
            seen.add(target)
            current = target
        raise SourceError(url, f"more than {MAX_REDIRECTS} redirects; the chain ends at {current}")

    async def _with_retries(
        self, url: str, rules: Rules, headers: dict[str, str], *, read_errors: bool
    ) -> _Reply:
        attempts = self.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            delay = self.backoff * 2**attempt * (1 + random.random())  # jitter: spread retries
            try:
                reply = await self._once(url, rules, headers, read_errors=read_errors)
            except RETRYABLE_ERRORS as exc:
                if last:
                    raise SourceError(
                        url, f"could not be reached after {attempts} attempts ({_describe(exc)})"
                    ) from None
                self.stats.retries += 1
                await asyncio.sleep(delay)
                continue
            if reply.status != 429 and not 500 <= reply.status < 600:
                return reply
            if last:
                if read_errors:
                    return reply
                raise SourceError(
                    url, f"the server answered HTTP {reply.status} {attempts} times; giving up"
                )
            asked = _retry_after(reply.headers.get("retry-after"), datetime.now(UTC))
            if asked is not None:
                if asked > self.max_retry_after:
                    raise SourceError(
                        url,
                        f"the server answered HTTP {reply.status} and asked to retry after "
                        f"{asked:.0f} s, longer than the {self.max_retry_after:.0f} s digest waits",
                    )
                delay = asked
            self.stats.retries += 1
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _check_host(self, url: str, host: str, port: int | None, scheme: str) -> None:
        """The SSRF guard, resolving each host once per fetcher (one run)."""
        port = port or (443 if scheme.lower() == "https" else 80)
        key = (host.lower(), port)
        if key not in self._checked:
            try:
                addresses = await check_host(url, host, port, self.resolver)
            except SourceError as exc:
                self._checked[key] = exc.reason
                raise
            self._checked[key] = None
            if self.network is not None:
                self.network.pin(host, port, addresses)
        reason = self._checked[key]
        if reason is not None:
            raise SourceError(url, reason)

    def _host_slot(self, url: str, per_host: int) -> asyncio.Semaphore:
        host = (urlsplit(url).netloc or "").lower()
        if host not in self._hosts:
            self._hosts[host] = asyncio.Semaphore(per_host)
        return self._hosts[host]

    async def _once(
        self, url: str, rules: Rules, headers: dict[str, str], *, read_errors: bool
    ) -> _Reply:
        """One request and, for a 2xx (or any status with ``read_errors``), its body."""
        parts = urlsplit(url)
        if self.check_addresses and not rules.allow_private_networks:
            await self._check_host(url, parts.hostname or "", parts.port, parts.scheme)
        request_headers = {
            "User-Agent": self.user_agent,
            "Accept-Encoding": "gzip, deflate",
            **headers,
        }
        # The host slot first: a request waiting for its busy host must not hold one of
        # the global slots that requests to other hosts could use.
        async with self._host_slot(url, rules.per_host), self._slots:
            self.stats.requests += 1
            try:
                request = self.client.build_request("GET", url, headers=request_headers)
                response = await self.client.send(request, stream=True, follow_redirects=False)
            except RETRYABLE_ERRORS:
                raise
            except httpx.TimeoutException:
                raise SourceError(url, "timed out waiting for the server") from None
            except httpx.HTTPError as exc:
                raise SourceError(url, f"could not be fetched ({_describe(exc)})") from None
            try:
                status = response.status_code
                if not (200 <= status < 300 or (read_errors and status >= 400)):
                    return _Reply(str(response.url), status, response.headers)
                body = await self._read_body(url, response)
                return _Reply(str(response.url), status, response.headers, body)
            except httpx.TimeoutException:
                raise SourceError(url, "timed out while reading the response") from None
            except RETRYABLE_ERRORS:
                raise
            except httpx.HTTPError as exc:
                raise SourceError(url, f"failed while reading ({_describe(exc)})") from None
            finally:
                await response.aclose()

    async def _read_body(self, url: str, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        encoding = response.headers.get("content-encoding", "")
        if declared.isdigit() and not encoding and int(declared) > self.max_bytes:
            raise SourceError(
                url, f"the response is {int(declared)} bytes, over the {self.max_bytes}-byte cap"
            )
        inflater = _Inflater(encoding, url)
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            data = inflater.feed(raw, self.max_bytes - size)
            size += len(data)
            if size > self.max_bytes:
                raise SourceError(
                    url,
                    f"the response is larger than {self.max_bytes} bytes "
                    f"{'once decompressed ' if encoding else ''}; stopped there",
                )
            chunks.append(data)
        self.stats.body_bytes += size
        return b"".join(chunks)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
