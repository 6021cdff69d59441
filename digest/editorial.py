"""The editor in the loop: a newsletter with ``review:`` goes out only as an editor
approved it.

An editorial draft is the newsletter's draft (``digest.store.issues``, what ``run``
sends) made with the editor's edits (``digest.store.editorial.Edits``: drop, pin,
move, note, subject) and approved or not. Contracts:

- ``draft`` builds the next issue afresh (new articles included), applies the edits
  made so far to this issue number, freezes it and writes its preview files. Every
  rebuild and every edit makes a new *version*; an approval is of one version, so any
  change withdraws it.
- ``edit`` changes the current draft; an unknown URL is a ``ReviewError``.
- ``approve`` approves the current version (optionally only if it is ``version``: a
  link signed for an older version is refused).
- ``send_review`` mails each reviewer the issue as readers get it, with a box on top
  holding signed links (``review_links``) to approve it or open it in the web app
  (``digest.web.review``). A link is bound to its purpose, the newsletter, the reviewer
  and the draft version (``digest.tokens``).
- ``Pipeline.run`` sends only an approved draft when ``review.required``
  (``digest.store.editorial.reviewed``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from .compose import section_of
from .config import NewsletterConfig
from .errors import ReviewError
from .models import Delivery, Issue, Item, Section, Subscriber
from .pipeline import Pipeline
from .render import Renderer, html_size, with_review_box
from .reports import Built, PreviewFiles
from .store import articles, issues
from .store import editorial as store
from .store.editorial import Edits, State
from .summarize import summarize
from .tokens import make_token, read_token

log = logging.getLogger("digest.editorial")

APPROVE = "review-approve"
OPEN = "review-open"
REVIEW_PREFIX = "[REVIEW] "


@dataclass(frozen=True, slots=True)
class DraftStatus:
    """The editorial draft of a newsletter as it stands: ``subject`` as rendered,
    ``edited_subject`` the editor's ("" when the newsletter's template makes it)."""

    newsletter: str
    number: int
    version: int
    items: tuple[Item, ...]
    subject: str
    edited_subject: str
    note: str
    approved: bool
    approved_by: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReviewLink:
    """What a valid review link proves: its newsletter, draft version and reviewer."""

    newsletter: str
    version: int
    reviewer: str


def review_token(key: bytes, purpose: str, newsletter: str, version: int, reviewer: str) -> str:
    """A link token for ``purpose`` (``APPROVE`` or ``OPEN``) on ``version`` of the
    draft of ``newsletter``, given to ``reviewer``."""
    return make_token(key, purpose, version, f"{newsletter}\0{reviewer}")


def read_review_token(key: bytes, purpose: str, token: str) -> ReviewLink | None:
    """The claim of a valid review token for ``purpose``; ``None`` for anything else
    (forged, cut, another purpose). Whether its version is current is the caller's."""
    claim = read_token(key, purpose, token)
    if claim is None or "\0" not in claim.list_name:
        return None
    newsletter, _, reviewer = claim.list_name.partition("\0")
    return ReviewLink(newsletter, claim.subscriber_id, reviewer)


def review_links(base_url: str, key: bytes, link: ReviewLink) -> tuple[str, str]:
    """The approve and open URLs of ``link`` (``digest.web.review`` serves them)."""
    name = quote(link.newsletter, safe="")
    approve = review_token(key, APPROVE, link.newsletter, link.version, link.reviewer)
    open_ = review_token(key, OPEN, link.newsletter, link.version, link.reviewer)
    return f"{base_url}/review/{name}/approve/{approve}", f"{base_url}/review/{name}/{open_}"


def apply_edits(
    issue: Issue,
    article_ids: tuple[int, ...],
    edits: Edits,
    pinned: dict[str, tuple[int, Item]],
    *,
    strict: bool,
) -> tuple[Issue, tuple[int, ...]]:
    """``issue`` (with the stored ids of its items) as ``edits`` change it.

    ``pinned`` are the unsent articles named by ``edits.pin`` (URL -> id, item), added
    at the end unless already in. After the moves the items are grouped again: the first
    is the top story when the issue had one, then sections in the order their first item
    comes, items within a section in the edited order. ``strict`` (a new edit): an URL
    that names no item of the issue (or no unsent article, for a pin) is a
    ``ReviewError``; otherwise (edits applied again to a rebuilt issue) it is skipped.
    """
    entries = [
        (item, article_id)
        for item, article_id in zip(issue.items, article_ids, strict=True)
        if item.url not in edits.drop
    ]
    present = {item.url for item in issue.items}
    missing = [url for url in edits.drop if url not in present]
    for url in edits.pin:
        if url in pinned and url not in {item.url for item, _ in entries}:
            entries.append((pinned[url][1], pinned[url][0]))
        elif url not in pinned and url not in present:
            missing.append(url)
    for url, position in edits.moves:
        at = next((i for i, (item, _) in enumerate(entries) if item.url == url), None)
        if at is None:
            missing.append(url)
            continue
        entry = entries.pop(at)
        entries.insert(min(max(position, 1), len(entries) + 1) - 1, entry)
    if strict and missing:
        raise ReviewError(
            f"Issue #{issue.number} of '{issue.newsletter}' has no story at {missing[0]} "
            f"(nor is it an unsent article to pin); 'digest draft {issue.newsletter}' lists them."
        )
    if not entries:
        raise ReviewError(
            f"Issue #{issue.number} of '{issue.newsletter}' would have no story left."
        )
    top = entries[0][0] if issue.top is not None else None
    grouped: dict[str, list[Item]] = {}
    for item, _ in entries[1:] if top else entries:
        grouped.setdefault(section_of(item), []).append(item)
    sections = tuple(Section(name, tuple(items)) for name, items in grouped.items())
    edited = replace(issue, top=top, sections=sections, note=edits.note, subject=edits.subject)
    by_url = {item.url: article_id for item, article_id in entries}
    return edited, tuple(by_url[item.url] for item in edited.items)


class Editorial:
    """The editorial review of the newsletters of ``pipeline``'s config."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.store = pipeline.store
        self.config = pipeline.config

    def _newsletter(self, name: str) -> NewsletterConfig:
        return self.config.newsletter(name)

    def _pinned(
        self, name: str, newsletter: NewsletterConfig, urls: tuple[str, ...]
    ) -> dict[str, tuple[int, Item]]:
        """The unsent articles of ``name`` at ``urls`` as items (URL -> id, item)."""
        if not urls:
            return {}
        return {
            article.url: (
                article_id,
                summarize(article, newsletter.summary_words, language=newsletter.language),
            )
            for article_id, article in articles.unsent(self.store, name, urls)
        }

    def _make(
        self, name: str, composed: issues.Composed, edits: Edits, kept: Edits, *, strict: bool
    ) -> tuple[issues.Composed, int]:
        """``composed`` as ``edits`` change it, rendered, frozen as the draft of ``name``
        and recorded as its new version (not approved) made with ``kept`` (every edit
        made to this issue, applied again when it is rebuilt)."""
        newsletter = self._newsletter(name)
        pinned = self._pinned(name, newsletter, edits.pin)
        issue, ids = apply_edits(composed.issue, composed.article_ids, edits, pinned, strict=strict)
        rendered = Renderer(self.config, newsletter).render(issue)
        budget = newsletter.max_html_kb * 1024
        if html_size(rendered) > budget:
            rendered = replace(
                rendered,
                notes=(
                    f"The HTML is {html_size(rendered) // 1024} KB, over the "
                    f"{newsletter.max_html_kb} KB budget: drop a story or two.",
                ),
            )
        edited = issues.Composed(issue, rendered, ids)
        issues.freeze(self.store, name, edited)
        version = store.save_version(self.store, name, issue.number, rendered, kept)
        log.info(
            "event=draft newsletter=%s issue=%d version=%d items=%d",
            name,
            issue.number,
            version,
            len(ids),
        )
        return edited, version

    async def draft(self, name: str, out_dir: Path) -> tuple[DraftStatus, PreviewFiles] | Built:
        """Build the next issue of ``name`` afresh, apply the edits made to it so far,
        freeze it as a new (unapproved) version and write its preview files into
        ``out_dir``; the ``Built`` alone when there is nothing new."""
        built = await self.pipeline.build(name)
        if built.issue is None or built.rendered is None:
            return built
        kept = store.state(self.store, name)
        edits = kept.edits if kept is not None and kept.number == built.issue.number else Edits()
        edited, _ = self._make(name, built.composed, edits, edits, strict=False)
        redone = Built(
            edited.issue,
            edited.rendered,
            edited.article_ids,
            built.sources,
            built.problems,
            built.candidate_ids,
        )
        files = self.pipeline.write_preview(name, redone, out_dir)
        return self.status(name), files

    def _current(self, name: str) -> tuple[issues.Composed, State]:
        composed, kept = store.reviewed(self.store, name)
        if composed is None or kept is None:
            raise ReviewError(
                f"'{name}' has no draft under review: build it with 'digest draft {name}'."
            )
        return composed, kept

    def composed(self, name: str) -> issues.Composed:
        """The current editorial draft of ``name``; ``ReviewError`` without one."""
        return self._current(name)[0]

    def status(self, name: str) -> DraftStatus:
        """The current editorial draft of ``name``; ``ReviewError`` without one."""
        composed, kept = self._current(name)
        return DraftStatus(
            newsletter=name,
            number=composed.issue.number,
            version=kept.version,
            items=composed.issue.items,
            subject=composed.rendered.subject,
            edited_subject=composed.issue.subject,
            note=composed.issue.note,
            approved=kept.approved,
            approved_by=kept.approved_by,
            notes=composed.rendered.notes,
        )

    def edit(
        self, name: str, change: Edits, *, note: bool = False, subject: bool = False
    ) -> DraftStatus:
        """Apply ``change`` to the current draft of ``name`` (``note``/``subject``: whether
        it sets them): a new version, so any approval is withdrawn. No change at all
        changes nothing."""
        composed, kept = self._current(name)
        if change == Edits() and not note and not subject:
            return self.status(name)
        edits = Edits(
            drop=change.drop,
            pin=change.pin,
            moves=change.moves,
            note=change.note if note else composed.issue.note,
            subject=change.subject if subject else composed.issue.subject,
        )
        merged = kept.edits.then(change, note=note, subject=subject)
        self._make(name, composed, edits, merged, strict=True)
        if kept.approved:
            log.info(
                "event=approval-withdrawn newsletter=%s issue=%d reason=edit",
                name,
                composed.issue.number,
            )
        return self.status(name)

    def approve(self, name: str, by: str, version: int | None = None) -> DraftStatus:
        """Approve the current draft of ``name`` (only if it is ``version``, when given)."""
        _, kept = self._current(name)
        wanted = kept.version if version is None else version
        if wanted != kept.version or not store.approve(self.store, name, wanted, by):
            raise ReviewError(
                f"The draft of '{name}' changed since this approval was asked for "
                f"(version {wanted}, now {kept.version}): review it again."
            )
        log.info("event=approved newsletter=%s version=%d by=%s", name, wanted, by)
        return self.status(name)

    def revoke(self, name: str) -> DraftStatus:
        """Withdraw the approval of the draft of ``name``."""
        self._current(name)
        if store.revoke(self.store, name):
            log.info("event=approval-revoked newsletter=%s", name)
        return self.status(name)

    async def send_review(self, name: str) -> tuple[Delivery, ...]:
        """Mail each reviewer of ``name`` the current draft with "[REVIEW]" before the
        subject and a box on top with their own signed approve and open links.
        Records nothing in the ledger."""
        newsletter = self._newsletter(name)
        review = newsletter.review
        if review is None or not review.reviewers:
            return ()
        composed, kept = self._current(name)
        messages = self.pipeline.messages
        key = messages.secret
        now = self.pipeline.now()
        built = []
        for position, reviewer in enumerate(review.reviewers, start=1):
            approve_url, open_url = review_links(
                self.config.base_url, key, ReviewLink(name, kept.version, reviewer)
            )
            rendered = with_review_box(
                composed.rendered,
                intro=(
                    f"Review copy of issue #{composed.issue.number} of {newsletter.title}: "
                    f"it goes out only once approved. Readers get it without this box."
                ),
                approve_url=approve_url,
                open_url=open_url,
            )
            factory = messages.factory(
                name,
                rendered,
                message_key=f"{name}.{composed.issue.number}.review.{kept.version}.{position}",
                date=now,
                subject=REVIEW_PREFIX + composed.rendered.subject,
            )
            built.append(factory.build(Subscriber(id=-position, email=reviewer)))
        backend = self.pipeline.backend(name)
        async with backend:
            deliveries = await backend.send(built)
        log.info(
            "event=review-mail newsletter=%s issue=%d version=%d reviewers=%d",
            name,
            composed.issue.number,
            kept.version,
            len(built),
        )
        return tuple(deliveries)

    def reviewed_slot(self, name: str) -> datetime | None:
        """The slot whose review mail last went out for ``name``."""
        kept = store.state(self.store, name)
        return kept.review_slot if kept is not None else None
