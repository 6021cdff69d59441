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


# -- a local site for pipeline tests ---------------------------------------------

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<link rel="canonical" href="https://quay.example/{slug}">
<meta name="description" content="{standfirst}">
<meta property="article:section" content="{section}">
<meta property="article:published_time" content="{published}">
</head><body><article><h1>{title}</h1>
<p>{lead}</p>
</article></body></html>
"""

STORIES = [
    ("ferry", "Harbour", "2026-11-16T08:00:00Z", "The night ferry gets a second crew"),
    ("tides", "Harbour", "2026-11-17T08:00:00Z", "Spring tides flood the lower quay again"),
    ("fish", "Market", "2026-11-18T08:00:00Z", "Fish prices settle after a stormy week"),
]


def write_site(root: Path, stories: list[tuple[str, str, str, str]]) -> None:
    items = []
    for slug, section, published, title in stories:
        (root / f"{slug}.html").write_text(
            PAGE.format(
                slug=slug,
                title=title,
                section=section,
                published=published,
                standfirst=f"What changed this week for {slug} on the waterfront.",
                lead=(
                    f"Harbour staff said the change to {slug} came after months of "
                    "complaints from crews, traders and people who live along the quay."
                ),
            ),
            encoding="utf-8",
        )
        items.append(f"<item><title>{title}</title><link>{slug}.html</link></item>")
    (root / "feed.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        "<title>Quay</title><link>https://quay.example/</link>"
        + "".join(items)
        + "</channel></rss>",
        encoding="utf-8",
    )


def make_site(tmp_path: Path) -> Path:
    """A folder with a feed of three article pages, schedules.yaml (newsletter
    ``weekly``, list ``readers``, outbox backend), readers.csv and a secret key."""
    write_site(tmp_path, STORIES)
    (tmp_path / "schedules.yaml").write_text(
        """
database: sqlite:///digest.db
base_url: https://quay.example
backends:
  local: {type: outbox, path: outbox}
newsletters:
  weekly:
    title: Quay Weekly
    from: Quay Weekly <news@quay.example>
    sources: [{feed: feed.xml}]
    list: readers
    backend: local
    sections: [Market, Harbour]
    postal_address: Quay Weekly, 1 Dock Road, Hull
""",
        encoding="utf-8",
    )
    (tmp_path / "readers.csv").write_text(
        "email,name\nann@example.org,Ann\nbob@example.org,Bob\n", encoding="utf-8"
    )
    (tmp_path / ".digest-secret").write_text("test-secret")
    return tmp_path
