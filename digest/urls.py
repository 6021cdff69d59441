"""URL helpers shared by collection, extraction and dedupe."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

# Query parameters that only track where a click came from; they never change the page.
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_ga", "ref_src"}
)


def join_url(base: str, link: str) -> str | None:
    """``link`` resolved against ``base``, or ``None`` when it cannot be a URL.

    Links come from pages, feeds, sitemaps and headers that anyone can write;
    ``urljoin`` raises ``ValueError`` on some of them (``http://[``, a port of
    ``99999``). A caller skips such a link (and says so) instead of crashing.
    """
    try:
        joined = urljoin(base, link)
        parts = urlsplit(joined)
        _ = parts.port  # raises for a port outside 0-65535
    except ValueError:
        return None
    return joined


def canonical_url(url: str) -> str:
    """The form of ``url`` used to recognise the same article twice.

    Scheme and host are lower-cased, default ports and the fragment dropped, and
    tracking parameters (``utm_*``, ``fbclid``, ``gclid``, ...) removed; the order of
    the remaining parameters is kept. Non-HTTP URLs (``file:``) are returned unchanged
    apart from the fragment.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # not a URL any server could answer: it is only itself
        return url.strip()
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))
    host = (parts.hostname or "").lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def is_http(url: str) -> bool:
    """True for an ``http:`` or ``https:`` URL."""
    try:
        return urlsplit(url).scheme.lower() in ("http", "https")
    except ValueError:
        return False


def to_url(location: str, base: str | None = None) -> str:
    """Turn a source location (URL, ``file:`` URL or local path) into an absolute URL.

    A relative location is resolved against ``base`` when given (a feed's own URL),
    otherwise against the current directory as a local path.
    """
    if urlsplit(location).scheme.lower() in ("http", "https", "file"):
        return location
    if base:
        return urljoin(base, location)
    return Path(location).resolve().as_uri()


def same_site(a: str, b: str) -> bool:
    """True when both URLs are on the same host, ignoring a leading ``www.``."""

    def host(u: str) -> str:
        try:
            h = (urlsplit(u).hostname or "").lower()
        except ValueError:
            return ""
        return h[4:] if h.startswith("www.") else h

    return host(a) == host(b) and host(a) != ""


def is_loopback(url: str) -> bool:
    """Whether ``url``'s host is this machine: ``localhost`` (and ``*.localhost``) or a
    loopback address (127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
