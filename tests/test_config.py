"""schedules.yaml: valid files load with paths resolved; broken ones fail with the file,
the key path and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.backends.outbox import OutboxBackendConfig
from digest.config import load_config
from digest.errors import ConfigError
from tests.support import write_config

VALID = """\
database: sqlite:///digest.db
base_url: https://news.example.org
backends:
  local: {type: outbox, path: outbox}
newsletters:
  weekly:
    title: The Weekly Round-up
    from: The Weekly Round-up <news@example.org>
    sources: [{feed: examples/site/feed.xml}]
    list: demo
    backend: local
    cron: "0 7 * * mon"
    timezone: Europe/London
"""


def test_valid_file_loads_and_resolves_relative_paths_against_its_folder(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, VALID))
    weekly = config.newsletter("weekly")
    assert weekly.sender == "The Weekly Round-up <news@example.org>"
    assert weekly.sources[0].feed == str(tmp_path / "examples/site/feed.xml")
    outbox = config.backends["local"]
    assert isinstance(outbox, OutboxBackendConfig) and outbox.path == str(tmp_path / "outbox")
    assert config.database_url == f"sqlite:///{tmp_path / 'digest.db'}"
    assert config.base_url == "https://news.example.org"


def test_defaults_fill_what_is_omitted(tmp_path: Path) -> None:
    minimal = "backends: {b: {type: outbox}}\nnewsletters: {n: {title: T, sources: [{feed: f.xml}], list: l, backend: b}}\n"
    config = load_config(write_config(tmp_path, minimal))
    assert config.database_url == f"sqlite:///{tmp_path / 'digest.db'}"
    assert config.newsletter("n").cron == "0 7 * * mon"


def test_bad_cron_names_the_key_path(tmp_path: Path) -> None:
    path = write_config(tmp_path, VALID.replace('"0 7 * * mon"', '"0 25 * * mon"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: newsletters.weekly.cron: '0 25 * * mon' is not a valid cron expression: "
        "Error validating expression '25': the last value (25) is higher than the maximum value (23)"
    )


def test_unknown_time_zone_and_misspelt_key_are_both_reported(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        VALID.replace("Europe/London", "Europe/Londn").replace("    list: demo", "    lists: demo"),
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).splitlines() == [
        f"{path}: newsletters.weekly.list: is required",
        f"{path}: newsletters.weekly.timezone: 'Europe/Londn' is not an IANA time zone such as 'Europe/London'",
        f"{path}: newsletters.weekly.lists: is not a known setting (check the spelling)",
    ]


def test_undefined_backend_is_named_with_the_known_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path, VALID.replace("backend: local", "backend: smtp-main"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: newsletters.weekly.backend: 'smtp-main' is not a backend defined under 'backends' (local)"
    )


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        VALID.replace(
            "  local: {type: outbox, path: outbox}", "  local: {type: outbox, path: outbox"
        ),
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: is not valid YAML at line ")
    assert "expected ',' or '}'" in message


def test_source_needs_exactly_one_kind(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        VALID.replace("[{feed: examples/site/feed.xml}]", "[{feed: a.xml, sitemap: b.xml}]"),
    )
    with pytest.raises(
        ConfigError, match=r"newsletters\.weekly\.sources\.0: a source needs exactly one of"
    ):
        load_config(path)


def test_missing_file_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"no such file\. Create it \(see README.md\) or pass --config PATH\."
    ):
        load_config(tmp_path / "nope.yaml")


def test_header_injection_in_from_is_refused(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        VALID.replace(
            "from: The Weekly Round-up <news@example.org>",
            'from: "X <a@b.org>\\r\\nBcc: all@example.org"',
        ),
    )
    with pytest.raises(ConfigError, match=r"newsletters\.weekly\.from: must be on one line"):
        load_config(path)


def test_config_from_environment_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, VALID)
    monkeypatch.setenv("DIGEST_CONFIG", str(path))
    assert load_config().path == path.resolve()


def test_unknown_newsletter_lists_the_known_ones(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, VALID))
    with pytest.raises(
        ConfigError, match=r"There is no newsletter 'monthly' in .* \(known: weekly\)\."
    ):
        config.newsletter("monthly")
