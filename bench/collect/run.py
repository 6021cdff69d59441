"""Collection benchmark: digest's collector against a sequential feedparser + httpx peer.

A local HTTP server (uvicorn, in its own process, loopback only) plays 50 sites:
one host per site (127.0.0.1 ... 127.0.0.50, all loopback on Linux), each with a feed
of 20 articles, a robots.txt and the article pages, and every response delayed by
100 ms. Three runs, measured in the same process:

1. baseline: for each feed in turn, GET it with ``httpx.Client``, parse it with
   feedparser, GET each article (what a simple script does);
2. digest, first run: ``collect()`` with the fetcher the pipeline builds (robots.txt,
   SSRF guard, per-host cap 4, conditional GET cache in a SQLite store);
3. digest, second run with nothing new: the feeds answer 304, robots.txt is still
   fresh in the cache, every article is known to the store.

Wall time is the collector's; bytes and requests are counted by the server (headers
plus body, as sent). Extraction is not part of either side.

    python bench/collect/run.py [--feeds 50] [--articles 20] [--latency 0.1]

Targets (issue 3): first run >= 10x faster than the baseline; second run <= 5 % of
the first run's bytes and <= 10 % of its time.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import socket
import sys
import tempfile
import time
from pathlib import Path

import feedparser
import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from digest.collect import collect  # noqa: E402
from digest.config import Config, SourceConfig  # noqa: E402
from digest.gathering import fetcher  # noqa: E402
from digest.pipeline import Pipeline  # noqa: E402
from digest.store import Store, articles  # noqa: E402
from digest.store.tables import ArticleRow  # noqa: E402
from digest.urls import canonical_url  # noqa: E402

WORDS = (
    "harbour council budget river transit school winter market energy housing coast "
    "festival library bridge election museum farmers rail clinic forest"
).split()


def article_html(site: int, n: int) -> bytes:
    title = f"{WORDS[n % len(WORDS)].title()} report {site}-{n}"
    paragraphs = "".join(
        f"<p>Paragraph {p} of the story about the {WORDS[(n + p) % len(WORDS)]}, written for "
        "the benchmark so that the page weighs about what a short news article weighs, "
        "navigation and all.</p>"
        for p in range(24)
    )
    nav = "".join(f'<li><a href="/section/{w}">{w.title()}</a></li>' for w in WORDS)
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title} | Site {site}"
        f"</title><meta name='description' content='A standfirst for {title}.'></head><body>"
        f"<nav><ul>{nav}</ul></nav><article><h1>{title}</h1>{paragraphs}</article>"
        "<footer>Site footer</footer></body></html>"
    ).encode()


def feed_xml(site: int, host: str, articles: int) -> bytes:
    items = "".join(
        f"<item><title>Story {site}-{n}</title><link>http://{host}/articles/{n}-story</link>"
        f"<guid isPermaLink='false'>site{site}-{n}</guid>"
        f"<pubDate>Mon, 16 Nov 2026 {n % 24:02d}:00:00 +0000</pubDate>"
        f"<description>Summary of story {n} on site {site}, a sentence or two long.</description>"
        "</item>"
        for n in range(articles)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Site {site}</title><link>http://{host}/</link>{items}</channel></rss>"
    ).encode()


# -- the server (own process) ------------------------------------------------------


def serve(sockets: list[socket.socket], hosts: list[str], articles: int, latency: float) -> None:
    import uvicorn

    stats = {"requests": 0, "bytes": 0}
    feeds = {host: feed_xml(i, host, articles) for i, host in enumerate(hosts)}
    robots = b"User-agent: *\nDisallow: /private/\n"

    def etag(body: bytes) -> bytes:
        return b'"' + hashlib.sha1(body).hexdigest()[:16].encode() + b'"'

    # Built once, so the server spends its time answering rather than composing pages.
    pages = {
        (host, f"/articles/{n}-story"): article_html(i, n)
        for i, host in enumerate(hosts)
        for n in range(articles)
    }
    tags = {body: etag(body) for body in [*pages.values(), *feeds.values(), robots]}

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path in ("/__stats", "/__reset"):
            if path == "/__reset":
                stats.update(requests=0, bytes=0)
            body = f"{stats['requests']} {stats['bytes']}".encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode()
        await asyncio.sleep(latency)
        if path == "/robots.txt":
            body, kind = robots, b"text/plain"
        elif path == "/feed.xml":
            body, kind = feeds[host], b"application/rss+xml"
        elif (host, path) in pages:
            body, kind = pages[host, path], b"text/html"
        else:
            body, kind = b"not found", b"text/plain"
        tag = tags.get(body, b'"none"')
        status = 404 if body == b"not found" else 200
        if status == 200 and headers.get(b"if-none-match") == tag:
            status, body = 304, b""
        out = [
            (b"content-type", kind),
            (b"etag", tag),
            (b"content-length", str(len(body)).encode()),
        ]
        stats["requests"] += 1
        stats["bytes"] += 17 + sum(len(k) + len(v) + 4 for k, v in out) + 40 + len(body)
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(app, log_level="error", lifespan="off", access_log=False)
    asyncio.run(uvicorn.Server(config).serve(sockets=sockets))


def bind(hosts: list[str]) -> list[socket.socket]:
    sockets = []
    for host in hosts:
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets; without it
        # Nagle and delayed ACKs add ~40 ms to every keep-alive response.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.split(":")[0], int(host.split(":")[1])))
        sockets.append(sock)
    return sockets


def pick_hosts(feeds: int) -> list[str]:
    """``127.0.0.N:PORT`` for N = 1..feeds, all on one free port."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        hosts = [f"127.0.0.{n}:{port}" for n in range(1, feeds + 1)]
        try:
            for sock in bind(hosts):
                sock.close()
        except OSError:
            continue
        return hosts


def server_stats(host: str, reset: bool = False) -> tuple[int, int]:
    answer = httpx.get(f"http://{host}/{'__reset' if reset else '__stats'}").text
    requests, size = answer.split()
    return int(requests), int(size)


# -- the runs --------------------------------------------------------------------


def baseline(feed_urls: list[str]) -> int:
    pages = 0
    with httpx.Client(headers={"User-Agent": "baseline/1.0"}, timeout=30) as client:
        for url in feed_urls:
            parsed = feedparser.parse(client.get(url).content)
            for entry in parsed.entries:
                client.get(entry.link)
                pages += 1
    return pages


async def digest_run(pipeline: Pipeline, sources: list[SourceConfig]) -> int:
    async with fetcher(pipeline.config, pipeline.store, pipeline.transport) as fetch:
        collected = await collect(
            sources, fetch, known=lambda keys: articles.known(pipeline.store, keys)
        )
    errors = [e for report in collected.reports for e in report.errors]
    if errors:
        raise SystemExit(f"digest run failed: {errors[:3]}")
    with pipeline.store.session() as session:  # what the pipeline records after extraction
        session.add_all(
            ArticleRow(
                url=canonical_url(p.url),
                source_url=canonical_url(p.url),
                guid=p.hints.guid,
                headline="",
            )
            for p in collected.pages
        )
    return len(collected.pages)


def measure(host: str, work) -> tuple[float, int, int, int, float]:
    server_stats(host, reset=True)
    start, cpu = time.perf_counter(), time.process_time()
    pages = work()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    requests, size = server_stats(host)
    return wall, requests, size, pages, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--articles", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()

    hosts = pick_hosts(args.feeds)
    context = multiprocessing.get_context("spawn")
    server = context.Process(
        target=serve, args=(bind(hosts), hosts, args.articles, args.latency), daemon=True
    )
    server.start()
    for _ in range(200):
        try:
            server_stats(hosts[0])
            break
        except httpx.TransportError:
            time.sleep(0.05)
    feed_urls = [f"http://{host}/feed.xml" for host in hosts]
    sources = [SourceConfig(feed=url, allow_private_networks=True) for url in feed_urls]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Config.model_validate(
                {"database": f"sqlite:///{tmp}/bench.db", "path": Path(tmp) / "schedules.yaml"}
            )
            store = Store(config.database_url)
            pipeline = Pipeline(config, store)
            print(
                f"{args.feeds} feeds x {args.articles} articles, {args.latency * 1000:.0f} ms per response"
            )
            rows = [
                ("baseline: feedparser + httpx, sequential", measure(hosts[0], lambda: baseline(feed_urls))),
                ("digest, first run", measure(hosts[0], lambda: asyncio.run(digest_run(pipeline, sources)))),
                ("digest, second run (nothing new)", measure(hosts[0], lambda: asyncio.run(digest_run(pipeline, sources)))),
            ]  # fmt: skip
            store.close()
    finally:
        server.terminate()
        server.join()
    print(
        f"\n| {'run':<42} | {'wall s':>8} | {'CPU s':>6} | {'requests':>8} | {'bytes':>11} | {'pages':>5} |"
    )
    print(f"|{'-' * 44}|{'-' * 10}|{'-' * 8}|{'-' * 10}|{'-' * 13}|{'-' * 7}|")
    for name, (wall, requests, size, pages, cpu) in rows:
        print(
            f"| {name:<42} | {wall:>8.2f} | {cpu:>6.2f} | {requests:>8} | {size:>11,} | {pages:>5} |"
        )
    base, first, second = (row[1] for row in rows)
    speedup = base[0] / first[0]
    bytes_share = second[2] / first[2]
    time_share = second[0] / first[0]
    checks = [
        (f"first run {speedup:.1f}x faster than the baseline (target >= 10x)", speedup >= 10),
        (f"second run bytes {bytes_share:.1%} of the first (target <= 5%)", bytes_share <= 0.05),
        (f"second run time {time_share:.1%} of the first (target <= 10%)", time_share <= 0.10),
    ]
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
