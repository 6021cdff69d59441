"""Fixed issues for the email tests: built from Items written here, never from extraction."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from digest.config import Config
from digest.models import Issue, Item, Section

SECTIONS = ("Europe", "Americas", "Asia", "Economy", "Climate", "Technology")

HEADLINES = (
    "Harbour cranes in Gdańsk run through the night as grain ships queue offshore",
    "A mountain village votes to keep its last post office open, whatever it costs",
    "The river ferry that outlived three bridges finally gets a new engine",
    "Why a small bakery chain is the best guide to what wheat really costs now",
    "Glacier-fed reservoirs are filling earlier each spring, and farmers notice",
    "A city library lends out soldering irons, and the queue is around the block",
)

SUMMARY = (
    "Port officials say the backlog will ease by December, but shipping agents are "
    "already rerouting cargo to smaller terminals along the coast. Dr. Ilse Marek, "
    "who studies Baltic logistics, warns that the U.S. tariff decision due on Nov. 30 "
    "could change the picture again. Meanwhile, dock workers have been offered "
    "overtime through the winter."
)


def config(tmp_path: Path, **newsletter: Any) -> Config:
    """A config with one newsletter ``weekly`` (https base URL) and an outbox backend."""
    settings: dict[str, Any] = {
        "title": "The Harbour Letter",
        "from": "The Harbour Letter <letters@harbour.example>",
        "sources": [{"feed": str(tmp_path / "feed.xml")}],
        "list": "readers",
        "backend": "local",
        "sections": list(SECTIONS),
        "postal_address": "The Harbour Letter, 4 Quay Lane, Portsmouth PO1 2AB, United Kingdom",
        **newsletter,
    }
    return Config.model_validate(
        {
            "base_url": "https://letters.harbour.example",
            "backends": {"local": {"type": "outbox", "path": str(tmp_path / "outbox")}},
            "newsletters": {"weekly": settings},
            "path": tmp_path / "schedules.yaml",
        }
    )


def item(n: int, **overrides: Any) -> Item:
    """The ``n``-th sample item: realistic lengths, an https image with known size."""
    values: dict[str, Any] = {
        "title": f"{HEADLINES[n % len(HEADLINES)]} ({n})",
        "summary": SUMMARY,
        "url": f"https://www.harbour.example/{SECTIONS[n % 6].lower()}/2026/11/story-{n:02d}",
        "image": f"https://media.harbour.example/2026/11/story-{n:02d}-photo-1200x675.jpg",
        "image_alt": "Cranes and container stacks at dusk",
        "image_width": 1200,
        "image_height": 675,
        "section": SECTIONS[n % 6],
        "published": datetime(2026, 11, 1 + n % 28, 9, 30, tzinfo=UTC),
    }
    values.update(overrides)
    return Item(**values)


def issue(items: list[Item], *, top: Item | None = None, number: int = 7) -> Issue:
    """An issue of ``items`` grouped by their section in the order they come."""
    grouped: dict[str, list[Item]] = {}
    for one in items:
        grouped.setdefault(one.section, []).append(one)
    return Issue(
        newsletter="weekly",
        title="The Harbour Letter",
        number=number,
        date=date(2026, 11, 23),
        sections=tuple(Section(name, tuple(group)) for name, group in grouped.items()),
        top=top,
    )


def sample_issue(count: int = 30, *, with_top: bool = True) -> Issue:
    """``count`` items in six sections, the first as top story when ``with_top``."""
    items = [item(n) for n in range(count)]
    if with_top:
        return issue(items[1:], top=items[0])
    return issue(items)
