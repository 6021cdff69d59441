"""Two ``digest run`` of one newsletter started together (issue 12, item 13): the one
that loses the race to record the issue stops with a sentence, having recorded
nothing, instead of a unique-key traceback; nobody gets two copies."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from digest.errors import RunConflict
from digest.store import Store, issues
from digest.store.tables import DeliveryRow, IssueDraftRow, IssueRow
from tests.support import ROOT
from tests.support.issues import WHEN, composed
from tests.support.issues import store as store  # the fixture


def test_the_second_run_to_record_an_issue_records_nothing_and_is_told_to_join(
    store: Store,
) -> None:
    # Both runs composed issue #1 from the same articles before either recorded it.
    both = composed(store)
    first = issues.record(store, "weekly", both, "readers", WHEN)
    # The second recording records nothing and says so (None): its run joins the first.
    assert issues.record(store, "weekly", both, "readers", WHEN) is None
    assert first is not None
    with store.session() as session:
        assert session.scalar(select(func.count(IssueRow.id))) == 1
        rows = session.scalar(select(func.count(DeliveryRow.id)))
    assert rows == 2 and first.number == 1


def test_two_runs_started_together_send_each_message_once_without_a_traceback(
    demo: Path,
) -> None:
    csv = demo.parent / "examples/subscribers.csv"
    command = [sys.executable, "-m", "digest", "--config", str(demo)]
    subprocess.run([*command, "subscribers", "import", "demo", str(csv)], check=True, cwd=ROOT)
    runs = [
        subprocess.Popen(
            [*command, "run", "weekly"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    for code, _, err in results:
        assert code in (0, 1), err
        assert "Traceback" not in err, err
        if code == 1:
            assert len(err.strip().splitlines()) == 1, err
    sent = Counter(
        line.split(":", 1)[1].strip()
        for path in (demo.parent / "outbox" / "new").iterdir()
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.startswith("To:")
    )
    assert len(sent) == 4 and set(sent.values()) == {1}


def test_two_previews_saved_at_once_the_second_gets_a_sentence(store: Store) -> None:
    """On PostgreSQL the second INSERT of a newsletter's draft waits for the first and
    then meets its unique key (SQLite's write lock serialises the two instead)."""
    both = composed(store)
    outcome: list[BaseException | None] = []

    def second_preview() -> None:
        try:
            issues.freeze(store, "weekly", both)
            outcome.append(None)
        except BaseException as exc:  # the thread's result, checked below
            outcome.append(exc)

    with store.session() as first:  # a preview in the middle of saving its draft
        first.add(
            IssueDraftRow(
                newsletter="weekly",
                number=1,
                issue_date="2026-11-30",
                subject="s",
                html="h",
                text="t",
            )
        )
        first.flush()
        thread = threading.Thread(target=second_preview)
        thread.start()
        thread.join(timeout=1.0)  # on PostgreSQL it waits for this transaction
    thread.join(timeout=30)
    assert len(outcome) == 1
    if store.engine.dialect.name == "postgresql":
        assert isinstance(outcome[0], RunConflict)
        assert "Another preview of 'weekly'" in str(outcome[0])
    else:
        assert outcome[0] is None
    with store.session() as session:  # one draft kept, whichever
        assert session.scalar(select(func.count(IssueDraftRow.id))) == 1
