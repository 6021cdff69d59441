"""The demo issue through SpamAssassin's local rules: nothing in its HTML scores.

Debian's ``spamassassin`` with ``-L`` (local tests only: no DNS, no network). Skipped
with the reason where it is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from digest.cli import main

SPAMASSASSIN = shutil.which("spamassassin")
pytestmark = pytest.mark.skipif(
    SPAMASSASSIN is None,
    reason="needs Debian's spamassassin (apt-get install -y spamassassin)",
)
_HIT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z][A-Z0-9_]+)\s", re.M)


def scores(message: bytes) -> dict[str, float]:
    """The rules SpamAssassin (local tests only) hits on ``message``, with their points."""
    report = subprocess.run(
        [str(SPAMASSASSIN), "-L", "-t"], input=message, capture_output=True, check=True, timeout=120
    ).stdout.decode("utf-8", "replace")
    table = report.split("Content analysis details:", 1)[1].split("\n\n", 2)[1]
    return {name: float(points) for points, name in _HIT.findall(table)}


def test_demo_issue_scores_nothing_from_html_rules(demo: Path) -> None:
    out = demo.parent / "preview"
    assert main(["--config", str(demo), "preview", "weekly", "--out", str(out)]) == 0
    hits = scores((out / "weekly.eml").read_bytes())
    assert "HTML_MESSAGE" in hits  # SpamAssassin did read the HTML part
    html = {name: points for name, points in hits.items() if "HTML" in name and points}
    assert html == {}, html
    assert sum(hits.values()) <= 0.5, hits


def test_scores_sees_a_low_contrast_font() -> None:
    """The check above can fail: white text on white is scored."""
    html = (
        '<html><body style="background:#ffffff"><p>Hello there, reader.</p>'
        '<div style="color:#ffffff">' + "hidden words " * 40 + "</div></body></html>"
    )
    message = (
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n\r\n' + html + "\r\n"
    ).encode()
    assert scores(message).get("HTML_FONT_LOW_CONTRAST", 0) > 0
