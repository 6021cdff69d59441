"""The fetcher against a real HTTP server on 127.0.0.1: retries, Retry-After, redirects,
size caps, gzip bombs, conditional GET, robots.txt, per-host caps, timeouts, SSRF."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
from pathlib import Path

import httpcore
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from digest.collect.cache import HttpCache
from digest.collect.fetch import Fetcher, PerHostTransport, Rules
from digest.collect.guard import PinnedBackend, forbidden_reason
from digest.errors import SourceError, SourceGone
from digest.store import Store
from tests.support import free_port
from tests.support.collect_server import Site

OPEN = Rules(allow_private_networks=True, robots=False)


def fetcher(**kwargs) -> Fetcher:
    return Fetcher(backoff=0.01, **kwargs)


# -- status codes, retries, Retry-After ---------------------------------------------


async def test_retries_5xx_then_succeeds(site: Site) -> None:
    answers = iter([503, 502, 200])

    async def flaky(_request: Request) -> Response:
        return Response(b"ok", status_code=next(answers), media_type="text/plain")

    site.route("/flaky", flaky)
    async with fetcher() as f:
        response = await f.get(site.url("/flaky"), OPEN)
    assert response.body == b"ok"
    assert site.count("/flaky") == 3


async def test_gives_up_after_the_last_retry_with_the_status(site: Site) -> None:
    site.text("/down", "no", status=500)
    async with fetcher(retries=2) as f:
        with pytest.raises(SourceError, match=r"HTTP 500 3 times; giving up"):
            await f.get(site.url("/down"), OPEN)
    assert site.count("/down") == 3


async def test_honours_retry_after_seconds_on_429(site: Site) -> None:
    answers = iter([429, 200])

    async def throttled(_request: Request) -> Response:
        return Response(b"ok", status_code=next(answers), headers={"Retry-After": "1"})

    site.route("/throttled", throttled)
    async with fetcher() as f:
        await f.get(site.url("/throttled"), OPEN)
    first, second = (hit.at for hit in site.hits if hit.path == "/throttled")
    # The backoff alone would retry after ~0.01 s; the server asked for 1 s.
    assert second - first >= 0.95


async def test_refuses_a_retry_after_longer_than_the_bound(site: Site) -> None:
    site.text("/later", "busy", status=503, headers={"Retry-After": "3600"})
    async with fetcher(max_retry_after=5) as f:
        with pytest.raises(SourceError, match=r"asked to retry after 3600 s, longer than the 5 s"):
            await f.get(site.url("/later"), OPEN)
    assert site.count("/later") == 1


async def test_retries_connection_errors_then_says_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}/feed"
    async with fetcher(retries=2) as f:
        with pytest.raises(SourceError, match=r"could not be reached after 3 attempts"):
            await f.get(url, OPEN)
        assert f.stats.retries == 2


async def test_404_is_an_error_and_410_is_gone(site: Site) -> None:
    site.text("/gone", "bye", status=410)
    async with fetcher() as f:
        with pytest.raises(SourceError, match="HTTP 404") as missing:
            await f.get(site.url("/missing"), OPEN)
        assert not isinstance(missing.value, SourceGone)
        with pytest.raises(SourceGone, match="gone for good"):
            await f.get(site.url("/gone"), OPEN)
    assert site.count("/missing") == 1  # a 404 is not retried


# -- redirects --------------------------------------------------------------------


def redirect_chain(site: Site, length: int) -> None:
    for n in range(length):

        async def hop(_request: Request, n: int = n) -> Response:
            target = f"/r{n + 1}" if n + 1 < length else "/final"
            return RedirectResponse(target, status_code=302 if n % 2 else 301)

        site.route(f"/r{n}", hop)
    site.text("/final", "arrived")


async def test_follows_up_to_five_redirects(site: Site) -> None:
    redirect_chain(site, 5)
    async with fetcher() as f:
        response = await f.get(site.url("/r0"), OPEN)
    assert response.body == b"arrived"
    assert response.url == site.url("/final")


async def test_refuses_a_sixth_redirect(site: Site) -> None:
    redirect_chain(site, 6)
    async with fetcher() as f:
        with pytest.raises(SourceError, match="more than 5 redirects"):
            await f.get(site.url("/r0"), OPEN)
    assert site.count("/final") == 0


async def test_names_a_redirect_loop(site: Site) -> None:
    async def to_b(_request: Request) -> Response:
        return RedirectResponse("/b", status_code=302)

    async def to_a(_request: Request) -> Response:
        return RedirectResponse("/a", status_code=302)

    site.route("/a", to_b)
    site.route("/b", to_a)
    async with fetcher() as f:
        with pytest.raises(SourceError, match="redirect loop"):
            await f.get(site.url("/a"), OPEN)
    assert site.count("/a") == 1 and site.count("/b") == 1


# -- size caps, compression, binary ---------------------------------------------


async def test_refuses_a_declared_length_over_the_cap_without_reading_it(site: Site) -> None:
    site.text("/big", b"x" * 200_000, content_type="text/html")
    async with fetcher(max_bytes=100_000) as f:
        with pytest.raises(SourceError, match="200000 bytes, over the 100000-byte cap"):
            await f.get(site.url("/big"), OPEN)


async def test_stops_an_undeclared_stream_at_the_cap(site: Site) -> None:
    async def endless(_request: Request) -> Response:
        async def chunks():
            for _ in range(1000):
                yield b"y" * 10_000

        return StreamingResponse(chunks(), media_type="text/html")

    site.route("/stream", endless)
    async with fetcher(max_bytes=50_000) as f:
        with pytest.raises(SourceError, match="larger than 50000 bytes"):
            await f.get(site.url("/stream"), OPEN)


async def test_gzip_bomb_stops_at_the_cap_without_inflating_it_in_memory(site: Site) -> None:
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)
    assert len(bomb) < 100_000
    site.text("/bomb", bomb, content_type="text/html", headers={"Content-Encoding": "gzip"})
    async with fetcher(max_bytes=1_000_000) as f:
        tracemalloc.start()
        try:
            with pytest.raises(SourceError, match="larger than 1000000 bytes once decompressed"):
                await f.get(site.url("/bomb"), OPEN)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 8_000_000  # 50 MB inflated at once would blow far past this


async def test_decompresses_gzip_within_the_cap(site: Site) -> None:
    page = "<html><body><p>Compressed café</p></body></html>".encode()
    site.text("/gz", gzip.compress(page), headers={"Content-Encoding": "gzip"})
    async with fetcher() as f:
        response = await f.get(site.url("/gz"), OPEN)
    assert response.body == page
    assert "gzip" in site.hits[-1].headers["accept-encoding"]


# -- timeouts -----------------------------------------------------------------------


async def test_read_timeout_is_a_clear_error(site: Site) -> None:
    async def slow(_request: Request) -> Response:
        await asyncio.sleep(2)
        return Response(b"late")

    site.route("/slow", slow)
    async with fetcher(timeout=httpx.Timeout(0.3)) as f:
        with pytest.raises(SourceError, match="timed out"):
            await f.get(site.url("/slow"), OPEN)


# -- conditional GET ---------------------------------------------------------------


def etag_route(site: Site, body: bytes) -> None:
    async def handler(request: Request) -> Response:
        if request.headers.get("if-none-match") == '"v1"':
            return Response(status_code=304, headers={"ETag": '"v1"'})
        return Response(body, media_type="application/rss+xml", headers={"ETag": '"v1"'})

    site.route("/feed.xml", handler)


async def test_conditional_get_sends_the_etag_and_a_304_replays_the_stored_body(
    site: Site, store: Store
) -> None:
    etag_route(site, b"<rss>feed body</rss>")
    cache = HttpCache(store)
    async with fetcher(cache=cache) as f:
        first = await f.get(site.url("/feed.xml"), OPEN, conditional=True)
    async with fetcher(cache=cache) as f:
        second = await f.get(site.url("/feed.xml"), OPEN, conditional=True)
        assert f.stats.body_bytes == 0  # nothing but headers crossed the wire
    assert not first.not_modified
    assert second.not_modified and second.body == first.body
    assert "if-none-match" not in site.hits[0].headers
    assert site.hits[1].headers["if-none-match"] == '"v1"'


async def test_conditional_get_with_last_modified(site: Site, store: Store) -> None:
    stamp = "Wed, 18 Nov 2026 10:00:00 GMT"

    async def handler(request: Request) -> Response:
        if request.headers.get("if-modified-since") == stamp:
            return Response(status_code=304)
        return Response(b"<rss/>", headers={"Last-Modified": stamp})

    site.route("/lm.xml", handler)
    cache = HttpCache(store)
    for _ in range(2):
        async with fetcher(cache=cache) as f:
            await f.get(site.url("/lm.xml"), OPEN, conditional=True)
    assert site.hits[1].headers["if-modified-since"] == stamp
    assert cache.get(site.url("/lm.xml")) is not None


async def test_pages_fetched_without_conditional_are_not_cached(site: Site, store: Store) -> None:
    etag_route(site, b"<html>article</html>")
    cache = HttpCache(store)
    async with fetcher(cache=cache) as f:
        await f.get(site.url("/feed.xml"), OPEN)
    assert cache.get(site.url("/feed.xml")) is None


# -- robots.txt, User-Agent, per-host cap ---------------------------------------


async def test_robots_txt_is_obeyed_and_read_once_per_host(site: Site) -> None:
    site.text("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    site.text("/public/a", "a")
    site.text("/private/b", "b")
    rules = Rules(allow_private_networks=True)
    async with fetcher() as f:
        await asyncio.gather(*(f.get(site.url("/public/a"), rules) for _ in range(3)))
        with pytest.raises(SourceError, match=r"robots\.txt of the site does not allow digest"):
            await f.get(site.url("/private/b"), rules)
        assert (await f.get(site.url("/private/b"), OPEN)).body == b"b"  # robots: false
    assert site.count("/robots.txt") == 1
    assert site.count("/private/b") == 1


async def test_robots_txt_also_governs_a_redirect_target(site: Site) -> None:
    site.text("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")

    async def to_private(_request: Request) -> Response:
        return RedirectResponse("/private/page", status_code=302)

    site.route("/public/moved", to_private)
    site.text("/private/page", "secret")
    async with fetcher() as f:
        with pytest.raises(SourceError, match=r"does not allow digest .*reached by a redirect"):
            await f.get(site.url("/public/moved"), Rules(allow_private_networks=True))
    assert site.count("/private/page") == 0


async def test_robots_txt_addressed_to_digest_by_name(site: Site) -> None:
    site.text("/robots.txt", "User-agent: digest\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    site.text("/page", "p")
    async with fetcher() as f:
        with pytest.raises(SourceError, match=r"robots\.txt"):
            await f.get(site.url("/page"), Rules(allow_private_networks=True))


async def test_a_missing_robots_txt_allows_everything(site: Site) -> None:
    site.text("/page", "p")
    async with fetcher() as f:
        assert (await f.get(site.url("/page"), Rules(allow_private_networks=True))).body == b"p"
    assert site.count("/robots.txt") == 1


async def test_robots_txt_server_error_stops_this_run_only(site: Site, store: Store) -> None:
    site.text("/robots.txt", "down", status=503)
    site.text("/page", "p")
    rules = Rules(allow_private_networks=True)
    async with fetcher(cache=HttpCache(store), retries=0) as f:
        with pytest.raises(SourceError, match=r"could not be read \(HTTP 503\); RFC 9309"):
            await f.get(site.url("/page"), rules)
    site.text("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    async with fetcher(cache=HttpCache(store)) as f:  # the 503 was not cached
        assert (await f.get(site.url("/page"), rules)).body == b"p"
    async with fetcher(cache=HttpCache(store)) as f:  # the good file is, for a day
        await f.get(site.url("/page"), rules)
    assert site.count("/robots.txt") == 2
    assert site.count("/page") == 2


async def test_user_agent_names_the_project_and_contact(site: Site) -> None:
    site.text("/ua", "ok")
    agent = "digest/0.1 (+https://news.example.org/about-our-crawler)"
    async with fetcher(user_agent=agent) as f:
        await f.get(site.url("/ua"), OPEN)
    assert site.hits[-1].headers["user-agent"] == agent


async def test_per_host_cap_limits_requests_in_flight(site: Site) -> None:
    in_flight = peak = 0

    async def slow(_request: Request) -> Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return Response(b"ok")

    for n in range(12):
        site.route(f"/p{n}", slow)
    rules = Rules(allow_private_networks=True, robots=False, per_host=3)
    async with fetcher() as f:
        await asyncio.gather(*(f.get(site.url(f"/p{n}"), rules) for n in range(12)))
    assert peak == 3


async def test_connections_are_reused_per_host_across_interleaved_hosts(site: Site) -> None:
    site.text("/page", "p")
    urls = [site.url("/page"), f"http://localhost:{site.port}/page"] * 5
    async with fetcher() as f:
        for url in urls:  # one host, then the other, and so on
            await f.get(url, OPEN)
    assert len({hit.client_port for hit in site.hits}) == 2  # one connection per host


# -- SSRF guard --------------------------------------------------------------------


async def test_refuses_loopback_without_the_flag(site: Site) -> None:
    site.text("/feed", "x")
    async with fetcher() as f:
        with pytest.raises(SourceError) as refused:
            await f.get(site.url("/feed"), Rules(robots=False))
    assert "resolves to 127.0.0.1, a loopback address" in str(refused.value)
    assert "allow_private_networks: true" in str(refused.value)
    assert site.count("/feed") == 0


async def test_checks_again_after_a_redirect(site: Site) -> None:
    async def away(_request: Request) -> Response:
        return RedirectResponse(f"http://localhost:{site.port}/inside", status_code=302)

    site.route("/out", away)
    site.text("/inside", "secret")

    async def resolver(host: str, port: int) -> list[str]:
        # The first host passes for public; the redirect target resolves for real.
        if host == "127.0.0.1":
            return ["93.184.216.34"]
        return [
            str(info[4][0]) for info in await asyncio.get_running_loop().getaddrinfo(host, port)
        ]

    async with fetcher(resolver=resolver, network_backend=FakeInternet()) as f:
        with pytest.raises(SourceError, match=r"'localhost' resolves to .*loopback"):
            await f.get(site.url("/out"), Rules(robots=False))
    assert site.count("/out") == 1 and site.count("/inside") == 0


class FakeInternet(httpcore.AsyncNetworkBackend):
    """Sockets that reach "public" addresses at this machine's loopback, and remember
    every address a connection was asked for."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.asked: list[str] = []

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.asked.append(host)
        try:
            public = forbidden_reason(host) is None
        except ValueError:  # a name: the real backend would ask DNS, which may lie now
            raise httpcore.ConnectError(f"connected by name to {host}") from None
        return await self.inner.connect_tcp("127.0.0.1" if public else host, port, timeout=timeout)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("no unix sockets here")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def test_connects_to_the_checked_address_not_a_fresh_dns_answer(site: Site) -> None:
    # DNS rebinding: the name is public when checked and private a moment later.
    site.text("/feed", "public")
    answers = {"rebind.test": ["93.184.216.34"]}

    async def resolver(host: str, port: int) -> list[str]:
        address = answers[host]
        answers[host] = ["127.0.0.1"]  # the attacker's next answer
        return address

    internet = FakeInternet()
    async with fetcher(resolver=resolver, network_backend=internet) as f:
        first = await f.get(f"http://rebind.test:{site.port}/feed", Rules(robots=False))
        # A second connection (the first is closed) still goes to the checked address.
        await f.client.aclose()
        f.client = httpx.AsyncClient(
            transport=PerHostTransport(network_backend=f.network), follow_redirects=False
        )
        second = await f.get(f"http://rebind.test:{site.port}/feed?again", Rules(robots=False))
    assert first.body == second.body == b"public"
    assert internet.asked == ["93.184.216.34", "93.184.216.34"]


async def test_pinned_names_reach_their_checked_address_without_dns(site: Site) -> None:
    # "pinned.invalid" cannot resolve: only the pin can take the connection anywhere.
    site.text("/page", "pinned")
    backend = PinnedBackend()
    backend.pin("pinned.invalid", site.port, ["127.0.0.1"])
    async with httpx.AsyncClient(transport=PerHostTransport(network_backend=backend)) as client:
        response = await client.get(f"http://pinned.invalid:{site.port}/page")
    assert response.text == "pinned"


async def test_a_host_with_no_address_is_refused() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return []

    async with fetcher(resolver=resolver) as f:
        with pytest.raises(SourceError, match="resolves to no address"):
            await f.get("http://nowhere.test/feed", Rules(robots=False))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "reserved"),
    ],
)
def test_forbidden_addresses(address: str, reason: str) -> None:
    assert reason in (forbidden_reason(address) or "")


def test_public_addresses_pass() -> None:
    assert forbidden_reason("93.184.216.34") is None
    assert forbidden_reason("2606:2800:220:1:248:1893:25c8:1946") is None


async def test_local_files_read_and_gunzip(tmp_path: Path) -> None:
    (tmp_path / "map.xml.gz").write_bytes(gzip.compress(b"<urlset/>"))
    async with fetcher() as f:
        response = await f.get((tmp_path / "map.xml.gz").as_uri())
        with pytest.raises(SourceError, match="no such file"):
            await f.get((tmp_path / "none.xml").as_uri())
    assert response.body == b"<urlset/>"
