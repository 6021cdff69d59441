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
        self._files: dict[str, tuple[RobotsFile, Protego | bool]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def refusal(self, url: str) -> str | None:
        """Why robots.txt of ``url``'s host keeps digest from fetching it, or ``None``."""
        where = robots_url(url)
        lock = self._locks.setdefault(where, asyncio.Lock())
        async with lock:
            if where not in self._files:
                robots = await self._load(where)
                self._files[where] = (robots, robots.verdict())
        robots, verdict = self._files[where]
        if verdict is True:
            return None
        if verdict is False:
            status = f"HTTP {robots.status}" if robots.status else "unreachable"
            return (
                f"robots.txt of the site could not be read ({status}); RFC 9309 says to "
                "fetch nothing until it can be"
            )
        if verdict.can_fetch(url, self._agent):
            return None
        return "robots.txt of the site does not allow digest to fetch it"
