"""Benchmark: render an issue once, personalise it for many recipients.

    python bench/render/run.py [--recipients 100000] [--naive-sample 200]

Measures, in one process on one core:

* render: a 30-item issue through Jinja2 + MJML (``Renderer.render``), the median of
  several runs (target <= 50 ms);
* personalise: full MIME bytes for ``--recipients`` subscribers from that one render
  (``MessageFactory.build``, unsubscribe/preferences tokens signed per recipient as
  in a real run; target >= 20,000 messages/s);
* naive: what the design avoids, Jinja2 + MJML compile + ``email.message`` per
  recipient, timed on ``--naive-sample`` recipients and extrapolated per message.

Prints a table and the ratio of the two per-message costs. Items are generated here;
nothing is fetched.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.policy import SMTP
from html import escape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from digest.config import Config
from digest.models import Issue, Item, Section, Subscriber
from digest.personalize import MessageFactory, fill_slots
from digest.render import Renderer, html_size
from digest.tokens import make_token

SECTIONS = ("Europe", "Americas", "Asia", "Economy", "Climate", "Technology")
KEY = b"bench-secret-key"
BASE = "https://news.bench.example"


def make_issue(count: int = 30) -> Issue:
    """``count`` items with realistic lengths in six sections, the first as top story."""
    summary = (
        "Officials said the new timetable would start in the spring, after a consultation "
        "that drew more responses than any before it. Critics say the plan moves costs "
        "onto smaller operators; supporters point to the shorter journeys it promises."
    )
    items = [
        Item(
            title=f"Story {n}: a headline of the usual length about events of the week",
            summary=summary,
            url=f"https://www.bench.example/{SECTIONS[n % 6].lower()}/2026/11/story-{n}",
            image=f"https://media.bench.example/2026/11/story-{n}.jpg",
            image_alt="A photograph that illustrates the story",
            image_width=1200,
            image_height=675,
            section=SECTIONS[n % 6],
            published=datetime(2026, 11, 1 + n % 28, tzinfo=UTC),
        )
        for n in range(count)
    ]
    grouped: dict[str, list[Item]] = {}
    for item in items[1:]:
        grouped.setdefault(item.section, []).append(item)
    return Issue(
        "weekly",
        "The Bench Weekly",
        12,
        date(2026, 11, 23),
        tuple(Section(name, tuple(group)) for name, group in grouped.items()),
        top=items[0],
    )


def make_config() -> Config:
    return Config.model_validate(
        {
            "base_url": BASE,
            "backends": {"local": {"type": "outbox"}},
            "newsletters": {
                "weekly": {
                    "title": "The Bench Weekly",
                    "from": "The Bench Weekly <news@bench.example>",
                    "sources": [{"feed": "feed.xml"}],
                    "list": "readers",
                    "backend": "local",
                    "sections": list(SECTIONS),
                    "postal_address": "1 Bench Street, Testville",
                }
            },
        }
    )


def links(subscriber: Subscriber) -> dict[str, str]:
    return {
        "unsubscribe_url": f"{BASE}/unsubscribe/{make_token(KEY, 'unsubscribe', subscriber.id, 'readers')}",
        "preferences_url": f"{BASE}/preferences/{make_token(KEY, 'preferences', subscriber.id, 'readers')}",
    }


def subscribers(count: int) -> list[Subscriber]:
    return [
        Subscriber(id=n, email=f"reader{n}@mail.bench.example", name=f"Reader {n}", list="readers")
        for n in range(1, count + 1)
    ]


def naive_message(renderer: Renderer, issue: Issue, subscriber: Subscriber) -> bytes:
    """One message the naive way: Jinja2 + MJML compile for this recipient alone, then
    the standard library's ``email`` package to build the MIME message."""
    rendered = renderer.render(issue)
    values = {"greeting": f"Hi {subscriber.name},", **links(subscriber)}
    message = EmailMessage(policy=SMTP)
    message["From"] = "The Bench Weekly <news@bench.example>"
    message["To"] = f"{subscriber.name} <{subscriber.email}>"
    message["Subject"] = rendered.subject
    message["List-Unsubscribe"] = f"<{values['unsubscribe_url']}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(fill_slots(rendered.text, rendered, values), cte="quoted-printable")
    html = fill_slots(rendered.html, rendered, {k: escape(v) for k, v in values.items()})
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message.as_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=200)
    parser.add_argument("--render-runs", type=int, default=21)
    args = parser.parse_args()

    config = make_config()
    renderer = Renderer(config, config.newsletter("weekly"))
    issue = make_issue(30)
    renderer.render(issue)  # warm up: template compilation, imports

    timings = []
    for _ in range(args.render_runs):
        start = time.perf_counter()
        rendered = renderer.render(issue)
        timings.append(time.perf_counter() - start)
    render_ms = statistics.median(timings) * 1000

    factory = MessageFactory(
        rendered,
        sender="The Bench Weekly <news@bench.example>",
        list_id='"The Bench Weekly" <weekly.readers.bench.example>',
        links=links,
        message_key="weekly.12.1",
        date=datetime(2026, 11, 23, 7, tzinfo=UTC),
    )
    people = subscribers(args.recipients)
    start = time.perf_counter()
    total_bytes = 0
    for subscriber in people:
        total_bytes += len(factory.build(subscriber).data)
    personalise_s = time.perf_counter() - start
    per_message_us = personalise_s / len(people) * 1e6

    sample = people[: args.naive_sample]
    start = time.perf_counter()
    for subscriber in sample:
        naive_message(renderer, issue, subscriber)
    naive_per_message_us = (time.perf_counter() - start) / len(sample) * 1e6

    rate = len(people) / personalise_s
    naive_rate = 1e6 / naive_per_message_us
    rows = [
        ("render 30-item issue (median)", f"{render_ms:.1f} ms", "<= 50 ms"),
        ("issue HTML (slots filled)", f"{html_size(rendered) / 1024:.1f} KB", "<= 80 KB"),
        (
            f"personalise {len(people):,} messages",
            f"{personalise_s:.2f} s ({rate:,.0f} msg/s, {per_message_us:.1f} µs/msg)",
            ">= 20,000 msg/s",
        ),
        ("average message size", f"{total_bytes / len(people) / 1024:.1f} KB", ""),
        (
            f"naive per recipient ({len(sample)} sampled)",
            f"{naive_per_message_us / 1000:.2f} ms/msg ({naive_rate:,.0f} msg/s)",
            "",
        ),
        (
            f"naive extrapolated to {len(people):,}",
            f"{naive_per_message_us * len(people) / 1e6:.0f} s",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'result':<44}  target")
    for label, value, target in rows:
        print(f"{label.ljust(width)}  {value:<44}  {target}")
    print(
        f"\nper-message speed-up over the naive way: {naive_per_message_us / per_message_us:,.0f}x"
    )


if __name__ == "__main__":
    main()
