"""Backend settings in schedules.yaml: one model per type, credentials named by variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.backends import BACKENDS, make_backend
from digest.config import load_config
from digest.errors import ConfigError

BASE = """\
newsletters:
  weekly:
    title: Weekly
    sources: [{feed: feed.xml}]
    list: news
    backend: mail
backends:
  mail:
"""


def write(tmp_path: Path, backend: str) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(BASE + "".join(f"    {line}\n" for line in backend.strip().splitlines()))
    return path


def test_every_backend_type_has_a_class_with_the_same_name_pattern() -> None:
    assert set(BACKENDS) == {"outbox", "smtp", "postmark", "sendgrid", "mailgun", "ses", "resend"}
    for kind, cls in BACKENDS.items():
        assert cls.type == kind
        assert cls.__name__.lower() == f"{kind}backend"


def test_smtp_settings_with_rate_and_connections(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = load_config(
        write(
            tmp_path,
            """
type: smtp
host: smtp.example.org
port: 465
security: tls
username_env: SMTP_USER
password_env: SMTP_PASS
connections: 8
max_messages_per_connection: 50
rate: {per_second: 20, per_hour: 50000}
""",
        )
    )
    backend = make_backend("mail", config.backends["mail"])
    assert backend.connections == 8
    assert backend.limiter.rate == 20 and backend.limiter.per_hour == 50000


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("type: smtp\nhost: h\nusername_env: U", "set both 'username_env' and 'password_env'"),
        (
            "type: smtp\nhost: h\npassword: hunter2",
            "backends.mail.password: is not a known setting",
        ),
        ("type: smtp\nhost: h\nsecurity: ssl", "backends.mail.security"),
        ("type: smtp\nhost: h\nconnections: 0", "backends.mail.connections"),
        ("type: postmark\nrate: {per_second: -1}", "backends.mail.rate.per_second"),
        ("type: mailgun", "backends.mail.domain: is required"),
        ("type: carrier-pigeon", "carrier-pigeon"),
    ],
)
def test_bad_backend_settings_name_the_key(tmp_path, settings, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, settings))
    assert message in str(caught.value)
