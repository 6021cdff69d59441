"""SSRF guard: refuse URLs whose host resolves to an address a web source has no business
reaching (loopback, private, link-local, cloud metadata, multicast, reserved).

A source's URL comes from schedules.yaml, but every link a feed, sitemap or redirect
hands us comes from the web. The check runs before every request, redirects included.
It resolves the host itself, so a name that points at 127.0.0.1 is caught as well as
the literal address. (A DNS answer that changes between this check and the connect,
"DNS rebinding", is not covered: the connection is not pinned to the checked address.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

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


async def check_host(url: str, host: str, port: int, resolver: Resolver = resolve) -> None:
    """Raise ``SourceError`` when ``host`` resolves to any forbidden address (or none)."""
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
