"""`digest schedules [--json]` and `digest history NAME [--json]` after a scheduled run,
and the structured log lines of that run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.schedule import Sent, run_cli
from tests.support.schedule import sent as sent  # the fixture


def test_schedules_json_gives_next_run_in_zone_and_utc_and_last_results(
    sent: Sent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "-c", str(sent.config), "schedules", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["name"] == "news" and row["enabled"] is True
    local = datetime.fromisoformat(row["next_run"])
    assert (local.weekday(), local.hour, local.minute) == (0, 7, 0)
    assert local.utcoffset() in (timedelta(hours=-5), timedelta(hours=-4))  # EST or EDT
    utc = datetime.fromisoformat(row["next_run_utc"])
    assert utc.utcoffset() == timedelta(0) and utc == local
    assert local > datetime.now(UTC)
    assert row["last_issue"]["number"] == 1 and row["last_issue"]["status"] == "sent"
    assert row["last_result"]["status"] == "failed"  # one unusable address failed
    assert datetime.fromisoformat(row["last_result"]["slot"]) == sent.slot
    assert "3 delivered, 1 failed" in row["last_result"]["message"]


def test_schedules_table_lists_each_newsletter(
    sent: Sent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "-c", str(sent.config), "schedules")
    assert code == 0
    assert "news" in out and "#1 sent" in out


def test_history_counts_items_recipients_and_failures(
    sent: Sent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "-c", str(sent.config), "history", "news", "--json")
    assert code == 0
    (issue,) = json.loads(out)
    assert issue["number"] == 1 and issue["status"] == "sent"
    assert (issue["items"], issue["recipients"], issue["sent"], issue["failed"]) == (10, 4, 3, 1)
    assert issue["sent_at"] is not None


def test_history_of_unknown_newsletter_is_an_error(
    sent: Sent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "-c", str(sent.config), "history", "nope")
    assert code == 1
    assert "There is no newsletter 'nope'" in err and "(known: news)" in err


def test_a_run_logs_each_stage_with_counts_and_timings(
    sent: Sent, caplog: pytest.LogCaptureFixture
) -> None:
    lines = [record.getMessage() for record in caplog.get_records("setup")]  # logged by `sent`
    collect = next(line for line in lines if "stage=collect" in line)
    assert "sources=1 source_errors=0 unsent=10" in collect and "seconds=" in collect
    assert any("stage=render" in line and "items=10" in line for line in lines)
    send = next(line for line in lines if "stage=send" in line)
    assert "queued=4 sent=3 failed=1" in send
    done = next(line for line in lines if line.startswith("event=failed newsletter=news"))
    assert "issue=1 items=10 recipients=4 sent=3 failed=1" in done and "seconds=" in done
