"""Backend settings in schedules.yaml: one model per type, credentials named by variable."""

from __future__ import annotations

from pathlib import Path

import pytest

import digest.backends
from digest.backends import BACKENDS, make_backend
from digest.config import load_config
from digest.errors import ConfigError
from tests.support import write_config

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
    return write_config(
        tmp_path, BASE + "".join(f"    {line}\n" for line in backend.strip().splitlines())
    )


def test_every_backend_module_registers_one_type_named_like_it() -> None:
    folder = Path(digest.backends.__file__).parent
    modules = {path.stem for path in folder.glob("*.py")} - {"__init__", "base", "merge"}
    assert set(BACKENDS) == modules and "smtp" in modules and "outbox" in modules
    for kind, cls in BACKENDS.items():
        assert cls.type == kind and cls.__module__ == f"digest.backends.{kind}"
        assert cls.__name__.lower() == f"{kind}backend"
        assert cls.config_model.__name__.lower() == f"{kind}backendconfig"


def test_an_unknown_type_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, "type: carrier-pigeon"))
    assert "backends.mail" in str(error.value)
    assert all(f"'{kind}'" in str(error.value) for kind in BACKENDS)


def test_smtp_settings_with_rate_and_connections(tmp_path: Path) -> None:
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
def test_bad_backend_settings_name_the_key(tmp_path: Path, settings, message) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, settings))
    assert message in str(caught.value)
