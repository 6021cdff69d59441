"""The outbox on a full disk (issue 12, item 8): the send stops with a sentence, no
partial file stays in ``tmp/``, every message written is recorded, and the next run
delivers the rest, nobody twice.

The full disk is a file-size limit (``RLIMIT_FSIZE``) in a child process: a write
past it fails with EFBIG, as one on a full tmpfs fails with ENOSPC."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from email import policy
from pathlib import Path

import pytest

from digest.backends.outbox import OutboxBackend, OutboxBackendConfig
from digest.dispatch import SendOptions, send_issue
from tests.support import ROOT, emails
from tests.support.mailserver.issue import queued_issue

LIMIT = 2 * 1024 * 1024
FAST = SendOptions(backoff_base=0.01, backoff_max=0.02)

CHILD = textwrap.dedent(
    """
    import asyncio, dataclasses, resource, signal, sys
    from digest.backends.outbox import OutboxBackend, OutboxBackendConfig
    from digest.dispatch import SendOptions, send_issue
    from digest.errors import DigestError
    from digest.store import Store
    from tests.support.mailserver.issue import make_factory

    db, outbox, issue_id, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

    class Padded:
        # reader5's message is larger than the disk has room for.
        def __init__(self):
            self.inner = make_factory()
        def build(self, subscriber):
            message = self.inner.build(subscriber)
            if subscriber.email == "reader5@example.test":
                message = dataclasses.replace(message, data=message.data + b"x" * 2 * limit)
            return message

    async def main():
        store = Store(f"sqlite:///{db}")
        backend = OutboxBackend("local", OutboxBackendConfig(type="outbox", path=outbox))
        async with backend:
            if limit:  # the database is written in place, well under it; the outbox is not
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            await send_issue(store, issue_id, Padded(), backend, options=SendOptions())

    try:
        asyncio.run(main())
    except DigestError as exc:
        print(exc)
        sys.exit(1)
    """
)


def recipients(outbox: Path) -> Counter[str]:
    return Counter(
        str(email.message_from_bytes(path.read_bytes(), policy=policy.default)["To"])
        for path in (outbox / "new").iterdir()
    )


async def test_a_full_disk_stops_the_send_and_the_next_run_sends_each_message_once(
    tmp_path: Path,
) -> None:
    db, outbox = tmp_path / "d.db", tmp_path / "outbox"
    issue = queued_issue(db, emails(10))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), str(outbox), str(issue.issue_id), str(LIMIT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 1, child.stderr
    assert "cannot take another message (File too large)" in child.stdout
    assert "Traceback" not in child.stdout + child.stderr
    assert list((outbox / "tmp").iterdir()) == []  # no partial file left
    statuses = issue.statuses()
    assert [statuses[e] for e in emails(10)] == ["sent"] * 5 + ["queued"] * 5
    assert recipients(outbox) == Counter({e: 1 for e in emails(5)})
    assert issue.issue_status() == "sending"

    # Room again: the next run delivers the five left, and nobody gets two.
    backend = OutboxBackend("local", OutboxBackendConfig(type="outbox", path=str(outbox)))
    async with backend:
        report = await send_issue(issue.store, issue.issue_id, issue.factory, backend, options=FAST)
    assert report.sent == 5
    assert recipients(outbox) == Counter({e: 1 for e in emails(10)})
    assert issue.issue_status() == "sent"


# Root writes anywhere whatever the modes: as root, the sender runs without the
# capabilities that override them (util-linux's setpriv). Running it as another user
# instead needs a Python that user may read, which a root-only pyenv is not.
SETPRIV = shutil.which("setpriv")
_NO_OVERRIDE = "-dac_override,-dac_read_search"
AS_OWNER = (
    [SETPRIV, f"--inh-caps={_NO_OVERRIDE}", f"--bounding-set={_NO_OVERRIDE}", "--"]
    if os.geteuid() == 0 and SETPRIV
    else []
)


@pytest.mark.skipif(
    os.geteuid() == 0 and SETPRIV is None,
    reason="as root, needs util-linux's setpriv to send without overriding file modes",
)
def test_a_read_only_outbox_stops_the_send_and_leaves_every_row_queued() -> None:
    folder = Path(tempfile.mkdtemp())
    try:
        db, outbox = folder / "d.db", folder / "outbox"
        issue = queued_issue(db, emails(4))
        OutboxBackend("local", OutboxBackendConfig(type="outbox", path=str(outbox)))
        for part in ("", "tmp", "new", "cur"):
            (outbox / part).mkdir(exist_ok=True)
            (outbox / part).chmod(0o555)
        child = subprocess.run(
            [
                *AS_OWNER,
                sys.executable,
                "-c",
                CHILD,
                str(db),
                str(outbox),
                str(issue.issue_id),
                "0",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        assert child.returncode == 1, child.stderr
        assert "cannot take another message (Permission denied)" in child.stdout
        assert "Traceback" not in child.stdout + child.stderr
        assert set(issue.statuses().values()) == {"queued"}
        assert issue.issue_status() == "sending"
        assert list((outbox / "tmp").iterdir()) == [] and list((outbox / "new").iterdir()) == []
    finally:
        shutil.rmtree(folder)
