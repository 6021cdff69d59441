"""SSRF guard: refuse URLs whose host resolves to an address a web source has no business
reaching (loopback, private, link-local, cloud metadata, multicast, reserved).

A source's URL comes from schedules.yaml, but every link a feed, sitemap or redirect
hands us comes from the web. The check runs before every request, redirects included.
It resolves the host itself, so a name that points at 127.0.0.1 is caught as well as
the literal address. ``PinnedBackend`` then connects to the addresses that were
checked rather than asking DNS again, so a name whose answer changes between the
check and the connect ("DNS rebinding") cannot slip a private address in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore

from ..errors import SourceError

#: Addresses of cloud metadata services beyond 169.254.0.0/16 (already link-local).
METADATA = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def forbidden_reason(address: str) -> str | None:
    """Why ``address`` may not be fetched from the web, or ``None`` when it is public."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return "the unspecified address (it reaches this machine)"
    if ip in METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (this includes cloud metadata at 169.254.169.254)"
    if ip.is_private:
        return "a private-network address"
    if ip.is_multicast or ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


async def check_host(
    url: str, host: str, port: int, resolver: Resolver = resolve
) -> tuple[str, ...]:
    """The addresses ``host`` resolves to; ``SourceError`` when any is forbidden (or none)."""
    try:
        addresses = await resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise SourceError(url, f"the host '{host}' cannot be resolved ({exc})") from None
    for address in addresses:
        reason = forbidden_reason(address)
        if reason:
            raise SourceError(
                url,
                f"refused: '{host}' resolves to {address}, {reason}; set "
                "'allow_private_networks: true' on the source if it is meant to be reached",
            )
    if not addresses:
        raise SourceError(url, f"the host '{host}' resolves to no address")
    return tuple(addresses)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting pinned hosts to their checked addresses.

    ``pin(host, port, addresses)`` records what the guard checked; a connection to
    that host and port then goes to those addresses, in order, and never to a new DNS
    answer. Hosts that were not pinned (sources with ``allow_private_networks``)
    connect by name as usual. TLS still verifies the certificate against the host
    name: httpcore passes the name, not the address, as the server name.
    """

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.inner = inner or httpcore.AnyIOBackend()
        self._pins: dict[tuple[str, int], tuple[str, ...]] = {}

    @staticmethod
    def _key(host: str, port: int) -> tuple[str, int]:
        # The fetcher pins urlsplit's hostname; httpcore connects to the URL's host: the
        # same name, but IPv6 literals may come with brackets and names in any case.
        return host.lower().strip("[]"), port

    def pin(self, host: str, port: int, addresses: Iterable[str]) -> None:
        self._pins[self._key(host, port)] = tuple(addresses)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = self._pins.get(self._key(host, port)) or (host,)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # try the host's next checked address
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self.inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
