"""Signed link tokens: bound to purpose, subscriber and list; anything else is rejected."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from digest.tokens import make_token, read_token, secret_key

KEY = b"k" * 32


def test_a_token_reads_back_its_claim() -> None:
    token = make_token(KEY, "unsubscribe", 42, "demo list")
    claim = read_token(KEY, "unsubscribe", token)
    assert claim is not None and (claim.subscriber_id, claim.list_name) == (42, "demo list")


def test_tokens_are_url_safe_and_differ_per_subscriber() -> None:
    a, b = make_token(KEY, "unsubscribe", 1, "demo"), make_token(KEY, "unsubscribe", 2, "demo")
    assert a != b
    assert all(c.isalnum() or c in "-_." for c in a)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(make_token(KEY, "preferences", 42, "demo"), id="other-purpose"),
        pytest.param(make_token(b"another key", "unsubscribe", 42, "demo"), id="other-key"),
        pytest.param(make_token(KEY, "unsubscribe", 42, "demo")[:-4], id="truncated"),
        pytest.param("43" + make_token(KEY, "unsubscribe", 42, "demo")[2:], id="other-subscriber"),
        pytest.param("", id="empty"),
        pytest.param("x.y.z", id="not-a-number"),
        pytest.param("1.!!.??", id="bad-base64"),
        pytest.param("1.gA.AAAA", id="list-not-utf8"),
        pytest.param("1.ZGVtbw.AAAA.extra", id="too-many-parts"),
    ],
)
def test_anything_but_the_right_token_is_rejected(token: str) -> None:
    assert read_token(KEY, "unsubscribe", token) is None


def test_other_list_in_a_token_breaks_its_signature() -> None:
    sid, list_part, mac = make_token(KEY, "unsubscribe", 42, "demo").split(".")
    other_list = make_token(KEY, "unsubscribe", 42, "other").split(".")[1]
    assert read_token(KEY, "unsubscribe", f"{sid}.{other_list}.{mac}") is None
    assert read_token(KEY, "unsubscribe", f"{sid}.{list_part}.{mac}") is not None


def test_secret_key_prefers_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", "from-env")
    assert secret_key(tmp_path) == b"from-env"
    assert not (tmp_path / ".digest-secret").exists()


def test_without_the_environment_a_private_key_file_is_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_SECRET_KEY", raising=False)
    first = secret_key(tmp_path)
    assert len(first) >= 32 and secret_key(tmp_path) == first
    assert stat.S_IMODE((tmp_path / ".digest-secret").stat().st_mode) == 0o600
