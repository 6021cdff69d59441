"""The send path from the CLI on the bundled demo (issue 12): a relay refusing every
recipient leaves the list and the issue as they were and the next run resumes
(items 3 and 11); the operator's way back from bounces (item 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digest.cli import main
from digest.config import load_config
from digest.store import Store, issues
from digest.subscribers import subscriber_details
from digest.subscriptions import bounce
from tests.support.mailserver.faults import Faults, FaultServer

DEMO_SUBSCRIBERS = 4


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


@pytest.fixture
def demo_with_list(demo: Path) -> Path:
    csv = demo.parent / "examples/subscribers.csv"
    assert cli(demo, "subscribers", "import", "demo", str(csv)) == 0
    return demo


def through_smtp(config: Path, port: int) -> None:
    """Send the demo through an SMTP server on 127.0.0.1:``port``."""
    text = config.read_text()
    if "relay:" not in text:
        text = text.replace(
            "  local: {type: outbox, path: outbox}",
            "  local: {type: outbox, path: outbox}\n"
            "  relay: {type: smtp, host: 127.0.0.1, port: 1, security: none}",
        ).replace("    backend: local", "    backend: relay")
    start = text.index("port: ", text.index("relay:"))
    end = text.index(",", start)
    config.write_text(text[:start] + f"port: {port}" + text[end:])


def counts(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, int]:
    capsys.readouterr()
    assert cli(config, "subscribers", "counts", "demo", "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_a_relay_refusal_of_every_recipient_keeps_list_and_issue_and_the_next_run_resumes(
    demo_with_list: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_with_list
    with FaultServer(Faults(refuse_every_rcpt="550 5.7.1 Relay access denied")) as server:
        through_smtp(config, server.port)
        capsys.readouterr()
        assert cli(config, "run", "weekly") == 1
    printed = capsys.readouterr()
    assert "Relay access denied" in printed.err and "Traceback" not in printed.err
    assert counts(config, capsys)["active"] == DEMO_SUBSCRIBERS
    assert counts(config, capsys)["suppressed"] == 0
    store = Store(load_config(config).database_url)
    unfinished = issues.unfinished(store, "weekly")
    assert unfinished is not None and unfinished.number == 1  # not recorded sent

    with FaultServer() as server:
        through_smtp(config, server.port)
        assert cli(config, "run", "weekly") == 0
    assert len(server.counts()) == DEMO_SUBSCRIBERS  # the same issue, its articles kept
    assert set(server.counts().values()) == {1}
    assert issues.unfinished(store, "weekly") is None
    sent = issues.find(store, "weekly", 1)
    assert sent is not None and sent.items > 0


def test_reactivate_undoes_a_bounce_with_an_event_and_add_says_what_it_did(
    demo_with_list: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_with_list
    store = Store(load_config(config).database_url)
    address = "ada@example.org"
    assert cli(config, "subscribers", "add", "demo", address, "--name", "Ada") == 0
    with store.session() as session:
        bounce(session, address, "hard", "send:smtp", "550 5.7.1 Relay access denied")
    capsys.readouterr()

    assert cli(config, "subscribers", "add", "demo", address) == 0
    said = capsys.readouterr().out
    assert "stays bounced" in said and "nothing changed" in said and "reactivate" in said

    assert cli(config, "subscribers", "reactivate", address) == 0
    assert "active again on 'demo'" in capsys.readouterr().out
    assert cli(config, "subscribers", "show", "demo", address) == 0
    shown = capsys.readouterr().out
    assert ": active" in shown and "suppressed: no" in shown
    last = subscriber_details(store, "demo", address).history[-1]
    assert (last.previous, last.status, last.source) == ("bounced", "active", "cli")

    # An unsubscription is the person's word: reactivate does not undo it.
    assert cli(config, "subscribers", "remove", "demo", address) == 0
    capsys.readouterr()
    assert cli(config, "subscribers", "reactivate", address) == 1
    assert "not bounced" in capsys.readouterr().err


def test_unsuppress_says_where_the_address_is_still_bounced(
    demo_with_list: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_with_list
    store = Store(load_config(config).database_url)
    address = "bo@example.org"
    assert cli(config, "subscribers", "add", "demo", address) == 0
    with store.session() as session:
        bounce(session, address, "hard", "send:smtp", "550 5.7.1 Relay access denied")
    capsys.readouterr()
    assert cli(config, "subscribers", "unsuppress", address) == 0
    said = capsys.readouterr().out
    assert "taken off" in said and "still bounced on 'demo'" in said


def test_retry_resends_the_failed_rows_of_the_last_issue_once_the_cause_is_fixed(
    demo_with_list: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_with_list
    full = {"ava.lindqvist@example.org", "samuel.okoye@example.org"}
    faults = Faults(tempfail_first=full, tempfail_reply="552 5.2.2 Mailbox full")
    with FaultServer(faults) as server:
        through_smtp(config, server.port)
        assert cli(config, "run", "weekly") == 1  # two deliveries failed
        assert len(server.counts()) == DEMO_SUBSCRIBERS - len(full)
        capsys.readouterr()
        assert cli(config, "retry", "weekly") == 0  # the mailboxes were emptied
        assert "Issue #1 of 'weekly': 2 failed deliveries queued again." in capsys.readouterr().out
        assert len(server.counts()) == DEMO_SUBSCRIBERS
        assert set(server.counts().values()) == {1}
        assert cli(config, "retry", "weekly") == 0
        assert "no failed delivery" in capsys.readouterr().out
    store = Store(load_config(config).database_url)
    assert issues.unfinished(store, "weekly") is None
    assert counts(config, capsys)["active"] == DEMO_SUBSCRIBERS
