"""robots.txt, read once per host and run (and cached for a day in the HTTP cache).

Rules follow RFC 9309: a robots.txt that is missing or forbidden (4xx) allows
everything; one that cannot be read (5xx, network failure) disallows everything
until it can be. Matching (wildcards, ``$``, longest match) is Protego's, the parser
Scrapy uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from protego import Protego

#: The product token site owners write in robots.txt to address digest.
AGENT_TOKEN = "digest"


@dataclass(frozen=True, slots=True)
class RobotsFile:
    """A host's robots.txt as fetched: ``status`` 200 with text, 4xx, or 5xx/0 (unreachable)."""

    status: int
    text: str = ""

    def verdict(self) -> Protego | bool:
        """A parser for a readable file; ``True`` (allow all) or ``False`` (disallow all) else."""
        if self.status == 200:
            return Protego.parse(self.text)
        return 400 <= self.status < 500


Loader = Callable[[str], Awaitable[RobotsFile]]


def robots_url(url: str) -> str:
    """The robots.txt address that governs ``url``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/robots.txt", "", ""))


class Robots:
    """Per-host robots.txt verdicts for one run; each host's file is loaded once."""

    def __init__(self, load: Loader, agent: str = AGENT_TOKEN) -> None:
        self._load = load
        self._agent = agent
        self._verdicts: dict[str, Protego | bool] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def allowed(self, url: str) -> bool:
        """True when robots.txt of ``url``'s host lets digest fetch it."""
        where = robots_url(url)
        lock = self._locks.setdefault(where, asyncio.Lock())
        async with lock:
            if where not in self._verdicts:
                self._verdicts[where] = (await self._load(where)).verdict()
        verdict = self._verdicts[where]
        if isinstance(verdict, bool):
            return verdict
        return bool(verdict.can_fetch(url, self._agent))
