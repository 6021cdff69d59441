"""What the pipeline's commands return: frozen values for the CLI, the web preview
and the schedule's history."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .collect import SourceReport
from .config import NewsletterConfig
from .dispatch import SendReport
from .models import Delivery, Issue, Rendered
from .store.issues import Composed


@dataclass(frozen=True, slots=True)
class Built:
    """The next issue of a newsletter, rendered, with what collection met on the way.

    ``article_ids`` are the stored ids of ``issue.items``; ``candidate_ids`` those of
    every unsent article the issue was composed from."""

    issue: Issue | None
    rendered: Rendered | None
    article_ids: tuple[int, ...]
    sources: tuple[SourceReport, ...]
    problems: tuple[str, ...]
    candidate_ids: tuple[int, ...] = ()

    @property
    def composed(self) -> Composed:
        """The issue to store (``issue`` must be set)."""
        assert self.issue is not None and self.rendered is not None
        return Composed(self.issue, self.rendered, self.article_ids)


@dataclass(frozen=True, slots=True)
class RunReport:
    """What ``run`` did, for the CLI and the schedule's history."""

    newsletter: str
    issue_number: int | None
    items: int
    recipients: int
    send: SendReport | None
    sources: tuple[SourceReport, ...] = ()
    problems: tuple[str, ...] = ()
    message: str = ""
    resumed: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def unsent(
        cls, name: str, newsletter: NewsletterConfig, built: Built, recipients: int, dry_run: bool
    ) -> RunReport | None:
        """The report of a run that sends ``built`` to nobody: too few items, or a dry
        run; ``None`` when the issue is to be sent."""
        found = len(built.issue.items) if built.issue else 0
        if built.issue is None or built.rendered is None or found < max(newsletter.min_items, 1):
            message = (
                f"Nothing to send for '{name}': no new articles since the last issue."
                if not found
                else f"Nothing sent for '{name}': {found} new article(s), fewer than min_items ({newsletter.min_items})."
            )
            return cls(name, None, found, recipients, None, built.sources, built.problems, message)
        if not dry_run:
            return None
        message = (
            f"Dry run: issue #{built.issue.number} of '{name}' with {found} item(s) "
            f"would go to {recipients} subscriber(s) of '{newsletter.list_name}'. Nothing was sent."
        )
        return cls(
            name,
            built.issue.number,
            found,
            recipients,
            None,
            built.sources,
            built.problems,
            message,
            notes=built.rendered.notes,
        )

    @classmethod
    def sent(
        cls,
        name: str,
        number: int,
        items: int,
        queued: int,
        report: SendReport,
        built: Built | None,
        notes: tuple[str, ...],
    ) -> RunReport:
        """The report of a run that sent issue ``number`` (built now, or resumed when
        ``built`` is ``None``) to the ``queued`` recipients it had left."""
        verb = "Resumed and sent" if built is None else "Sent"
        if report.interrupted:
            verb = "Stopped before the end of"
        message = (
            f"{verb} issue #{number} of '{name}' ({items} item(s)): {report.sent} delivered, "
            f"{report.failed} failed, {report.skipped} skipped."
        )
        sources, problems = (built.sources, built.problems) if built else ((), ())
        return cls(
            name, number, items, queued, report, sources, problems, message, built is None, notes
        )


@dataclass(frozen=True, slots=True)
class TestSend:
    """What ``send_test`` did: the issue number (``None`` with nothing to send), one
    ``Delivery`` per usable address, and the addresses it could not use."""

    __test__ = False  # not a pytest test class

    issue_number: int | None
    deliveries: tuple[Delivery, ...]
    problems: tuple[str, ...]
    built: Built


@dataclass(frozen=True, slots=True)
class Sample:
    """An issue filled in for one (sample) recipient: what they would see."""

    html: str
    text: str
    eml: bytes


@dataclass(frozen=True, slots=True)
class PreviewFiles:
    """Where ``preview`` wrote the next issue, and the issue."""

    html: Path
    text: Path
    eml: Path
    built: Built
