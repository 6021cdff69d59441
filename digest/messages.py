"""The messages of a newsletter's issues: per-recipient links, the message factory of
an issue, a sample for the preview, and the per-reader variants of an issue being sent."""

from __future__ import annotations

import html as html_lib
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache, partial
from pathlib import Path

from .backends import make_backend
from .config import Config
from .dispatch import MessageSource
from .errors import SubscriberError
from .models import Rendered, Subscriber
from .personalize import MessageFactory, fill_slots, list_id
from .render import Renderer, ui_text
from .reports import Built, PreviewFiles, Sample, TestSend
from .sections import per_reader
from .store import Store, issues
from .store.issues import StoredIssue
from .subscribers import normalize_email, section_preferences
from .tokens import make_token, require_secret

#: The reader every preview shows (``digest preview``, the gallery): never a real
#: subscriber, so a preview served or forwarded gives nobody's address away.
PREVIEW_SUBSCRIBER = Subscriber(id=0, email="reader@example.org", name="Preview Reader")
#: What a preview's unsubscribe and preferences links end in instead of a token: the
#: pages answer that the link is not valid, so a preview can unsubscribe nobody.
PREVIEW_TOKEN = "preview"
#: Before the subject of a test send.
TEST_PREFIX = "[TEST] "


class Messages:
    """Messages of the newsletters of ``config``; ``now`` is the pipeline's clock."""

    def __init__(self, config: Config, store: Store, now: Callable[[], datetime]) -> None:
        self.config = config
        self.store = store
        self.now = now
        self._secret: bytes | None = None

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = require_secret(self.config)
        return self._secret

    def links(self, list_name: str) -> Callable[[Subscriber], dict[str, str]]:
        """The per-recipient URLs of messages to ``list_name``."""
        base = self.config.base_url
        key = self.secret

        def for_subscriber(subscriber: Subscriber) -> dict[str, str]:
            return {
                "unsubscribe_url": f"{base}/unsubscribe/{make_token(key, 'unsubscribe', subscriber.id, list_name)}",
                "preferences_url": f"{base}/preferences/{make_token(key, 'preferences', subscriber.id, list_name)}",
            }

        return for_subscriber

    def factory(
        self,
        name: str,
        rendered: Rendered,
        *,
        message_key: str,
        date: datetime,
        subject: str | None = None,
        links: Callable[[Subscriber], dict[str, str]] | None = None,
    ) -> MessageFactory:
        """The message factory of one issue of ``name`` (``links``: the per-recipient
        URLs, by default signed for each subscriber)."""
        newsletter = self.config.newsletter(name)
        return MessageFactory(
            rendered,
            sender=newsletter.sender,
            reply_to=newsletter.reply_to,
            list_id=f'"{newsletter.title}" <{list_id(name, newsletter.list_name, newsletter.sender)}>',
            links=links or self.links(newsletter.list_name),
            message_key=message_key,
            date=date,
            unsubscribe_mailto=self.config.unsubscribe_mailto,
            subject=subject,
            greet=ui_text(newsletter.language).greet,
        )

    def sample_links(self, _subscriber: Subscriber) -> dict[str, str]:
        """The unsubscribe and preferences links of a preview: the real pages, no token."""
        base = self.config.base_url
        return {
            "unsubscribe_url": f"{base}/unsubscribe/{PREVIEW_TOKEN}",
            "preferences_url": f"{base}/preferences/{PREVIEW_TOKEN}",
        }

    def sample(self, name: str, built: Built) -> Sample:
        """``built`` (which must hold an issue) as ``PREVIEW_SUBSCRIBER`` would get it,
        with links that carry no token: HTML and text filled in, and the whole message."""
        assert built.issue is not None and built.rendered is not None
        newsletter = self.config.newsletter(name)
        subscriber = PREVIEW_SUBSCRIBER
        links = self.sample_links(subscriber)
        greeting = ui_text(newsletter.language).greet(subscriber.name)
        text_values = {"greeting": greeting, **links}
        html_values = {k: html_lib.escape(v) for k, v in text_values.items()}
        factory = self.factory(
            name,
            built.rendered,
            message_key=f"{name}.{built.issue.number}.preview",
            date=self.now(),
            links=self.sample_links,
        )
        return Sample(
            html=fill_slots(built.rendered.html, built.rendered, html_values),
            text=fill_slots(built.rendered.text, built.rendered, text_values),
            eml=factory.build(subscriber).data,
        )

    def for_issue(self, stored: StoredIssue) -> MessageSource:
        """The messages of ``stored`` as dispatch asks for them: the issue as rendered,
        and for readers who chose sections a variant rendered once per distinct one."""
        newsletter = self.config.newsletter(stored.newsletter)
        make = partial(
            self.factory,
            stored.newsletter,
            message_key=f"{stored.newsletter}.{stored.number}.{stored.id}",
            date=stored.created_at,
        )
        with self.store.session() as session:
            wanted = section_preferences(session, newsletter.list_name)
        # Loaded when a first variant is needed: most issues go out as rendered.
        renderer = cache(lambda: Renderer(self.config, newsletter))
        return per_reader(
            make(stored.rendered),
            stored.issue,
            newsletter.sections,
            wanted,
            lambda issue: make(renderer().render(issue)),
        )

    def write_preview(self, name: str, built: Built, out_dir: Path) -> PreviewFiles:
        """Write ``built`` (which holds an issue) as ``NAME.html``, ``NAME.txt`` and
        ``NAME.eml`` into ``out_dir``, as the list's first subscriber would get it."""
        sample = self.sample(name, built)
        out_dir.mkdir(parents=True, exist_ok=True)
        files = PreviewFiles(
            html=out_dir / f"{name}.html",
            text=out_dir / f"{name}.txt",
            eml=out_dir / f"{name}.eml",
            built=built,
        )
        files.html.write_text(sample.html, encoding="utf-8")
        files.text.write_text(sample.text, encoding="utf-8")
        files.eml.write_bytes(sample.eml)
        return files

    async def send_test(self, name: str, built: Built, addresses: Sequence[str]) -> TestSend:
        """Send ``built``, the next issue of ``name`` (its draft when still current), to ``addresses``
        with "[TEST]" before the subject, through the newsletter's backend. Records
        nothing: no issue, no ledger row, no article marked sent. An unusable address
        is reported and the others still get the message."""
        if built.issue is None or built.rendered is None:
            return TestSend(None, (), (), built)
        draft, _ = issues.current_draft(self.store, name, built.candidate_ids)
        rendered = draft.composed.rendered if draft is not None else built.rendered
        factory = self.factory(
            name,
            rendered,
            message_key=f"{name}.{built.issue.number}.test.{self.now():%Y%m%d%H%M%S}",
            date=self.now(),
            subject=TEST_PREFIX + rendered.subject,
        )
        messages, problems = [], []
        for position, address in enumerate(addresses, start=1):
            try:
                email, _ = normalize_email(address)
                messages.append(factory.build(Subscriber(id=-position, email=email)))
            except SubscriberError as exc:
                problems.append(f"{address!r}: {exc}")
        newsletter = self.config.newsletter(name)
        backend = make_backend(newsletter.backend, self.config.backends[newsletter.backend])
        async with backend:
            deliveries = await backend.send(messages)
        return TestSend(built.issue.number, tuple(deliveries), tuple(problems), built)
