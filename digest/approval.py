"""Whether a newsletter under ``review`` may send now, and what: the run's side of
editorial review (``digest.editorial`` builds, edits and approves the draft;
``digest.review_slots`` makes the scheduler wait for it)."""

from __future__ import annotations

from .config import NewsletterConfig
from .reports import Built, RunReport
from .store import Store, editorial, issues


def gate(
    store: Store, name: str, newsletter: NewsletterConfig, require_approval: bool
) -> tuple[RunReport | None, Built | None, tuple[str, ...]]:
    """For a newsletter under review: the report of a run that waits for approval,
    or the editorial draft to send (with a note for the report), or neither (no
    editorial draft, and none needed: build as usual)."""
    draft, state = editorial.reviewed(store, name)
    approved = draft is not None and state is not None and state.approved
    assert newsletter.review is not None
    if newsletter.review.required and require_approval and not approved:
        if draft is None:
            why = (
                "its draft under review was replaced since (by 'digest preview'?)"
                if state is not None and state.number == issues.next_number(store, name)
                else "it has no draft yet"
            )
            message = (
                f"Nothing sent for '{name}': its next issue needs an editor's approval and "
                f"{why}; build one with 'digest draft {name}'."
            )
        else:
            message = (
                f"Nothing sent for '{name}': issue #{draft.issue.number} is awaiting "
                f"approval; 'digest approve {name}' approves it."
            )
        number = draft.issue.number if draft else None
        items = len(draft.issue.items) if draft else 0
        return RunReport(name, number, items, 0, None, message=message), None, ()
    if draft is None:
        return None, None, ()
    how = "exactly as approved" if approved else "as drafted, without approval"
    built = Built(draft.issue, draft.rendered, draft.article_ids, (), ())
    return None, built, (f"Sent issue #{draft.issue.number} {how}.",)
