"""Per-reader sections: a reader who chose sections on the preferences page gets an
issue that carries only those.

An issue is still rendered once per *distinct variant*, not per reader: the readers
who chose nothing (most of them) get the issue as rendered, and each other variant
(``compose.restrict`` of the issue as composed and stored) is rendered the first time
a reader who gets it comes up.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from .compose import restrict
from .dispatch import MessageSource
from .errors import NothingWanted
from .models import Issue, Message, Subscriber


class SectionedFactory:
    """A ``MessageSource``: ``build(subscriber)`` uses ``default`` (the issue as rendered)
    for readers without a choice, and ``make(variant)`` once per distinct variant for
    the others. ``offered``: the sections a reader could choose; ``wanted``: subscriber
    id -> the sections they chose.

    ``NothingWanted`` from ``build`` when a reader wants none of the issue's sections.
    """

    def __init__(
        self,
        default: MessageSource,
        issue: Issue,
        offered: Collection[str],
        wanted: Mapping[int, frozenset[str]],
        make: Callable[[Issue], MessageSource],
    ) -> None:
        self.default = default
        self.issue = issue
        self.offered = tuple(offered)
        self.wanted = wanted
        self.make = make
        self._factories: dict[Issue, MessageSource] = {}

    def build(self, subscriber: Subscriber) -> Message:
        """The message for ``subscriber`` with the sections they want."""
        wanted = self.wanted.get(subscriber.id)
        if wanted is None:
            return self.default.build(subscriber)
        variant = restrict(self.issue, wanted, self.offered)
        if variant is self.issue:
            return self.default.build(subscriber)
        if not variant.items:
            raise NothingWanted(
                f"{subscriber.email} wants none of the sections in this issue; nothing sent."
            )
        factory = self._factories.get(variant)
        if factory is None:
            factory = self._factories[variant] = self.make(variant)
        return factory.build(subscriber)


def per_reader(
    default: MessageSource,
    issue: Issue | None,
    offered: Collection[str],
    wanted: Mapping[int, frozenset[str]],
    make: Callable[[Issue], MessageSource],
) -> MessageSource:
    """``default`` itself when no reader chose sections, the newsletter offers none, or
    the composed issue is unknown (stored before it was kept); else a
    ``SectionedFactory`` around it."""
    if issue is None or not offered or not wanted:
        return default
    return SectionedFactory(default, issue, offered, wanted, make)
