"""schedules.yaml: the newsletters, their sources, lists, backends and cadence.

``load_config(path)`` returns a frozen ``Config`` or raises ``ConfigError`` whose
message names the file, the key path (``newsletters.weekly.cron``) and what is wrong.
Relative paths in the file (feeds, outbox folders, SQLite files, template folders)
are resolved against the folder that holds the file, so a config works from any
working directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

DEFAULT_CONFIG = "schedules.yaml"
DEFAULT_DATABASE = "sqlite:///digest.db"
DEFAULT_FROM = "Digest <digest@localhost>"


class _Model(BaseModel):
    """Frozen, and strict about unknown keys so a typo is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SourceConfig(_Model):
    """One place articles come from: exactly one of ``feed``, ``sitemap`` or ``listing``.

    Each is a URL or a local path. ``selector`` picks article links on a listing page
    (default: same-site links that look like articles). ``allow_private_networks``
    lets the source reach loopback/private addresses (refused otherwise: SSRF guard).
    ``deadline`` bounds the whole source (listing plus pages) in seconds; ``robots``
    obeys robots.txt; ``per_host`` caps concurrent requests to one host;
    ``max_articles`` caps the new pages fetched per run (newest first where dated).
    """

    feed: str | None = None
    sitemap: str | None = None
    listing: str | None = None
    selector: str | None = None
    allow_private_networks: bool = False
    deadline: float = Field(120.0, gt=0)
    robots: bool = True
    per_host: int = Field(4, ge=1, le=64)
    max_articles: int = Field(100, ge=1)

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> SourceConfig:
        kinds = [k for k in ("feed", "sitemap", "listing") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError("a source needs exactly one of 'feed', 'sitemap' or 'listing'")
        return self

    @property
    def kind(self) -> str:
        """``feed``, ``sitemap`` or ``listing``."""
        return "feed" if self.feed else "sitemap" if self.sitemap else "listing"

    @property
    def location(self) -> str:
        """The URL or path of the source."""
        return self.feed or self.sitemap or self.listing or ""


class OutboxBackendConfig(_Model):
    """Writes each message as a ``.eml`` file into a Maildir (the embedded default)."""

    type: Literal["outbox"]
    path: str = "outbox"


BackendConfig = Annotated[OutboxBackendConfig, Field(discriminator="type")]


class NewsletterConfig(_Model):
    """One newsletter: what it collects, how it looks, to whom and how it is sent."""

    title: str
    sender: str = Field(DEFAULT_FROM, alias="from")
    reply_to: str | None = None
    sources: list[SourceConfig] = Field(min_length=1)
    list: str
    backend: str
    cron: str = "0 7 * * mon"
    timezone: str = "UTC"
    subject: str = "{{ title }} #{{ number }}: {{ top_headline }}"
    template_dir: str | None = None
    language: str = "en"
    sections: list[str] = Field(default_factory=list)
    min_items: int = Field(1, ge=0)
    max_items: int = Field(30, ge=1)
    summary_words: int = Field(60, ge=10)
    postal_address: str = ""
    enabled: bool = True
    section_max_items: int | None = Field(None, ge=1)
    top_story: bool = False
    max_html_kb: int = Field(80, ge=20)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(
                f"'{value}' is not a five-field cron expression (minute hour day month weekday)"
            )
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"'{value}' is not a valid cron expression: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"'{value}' is not an IANA time zone such as 'Europe/London'"
            ) from None
        return value

    @field_validator("sender", "reply_to")
    @classmethod
    def _no_header_injection(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("must be on one line")
        return value


class WebConfig(_Model):
    """Settings of ``digest serve``: request limits, rate limits and webhook checks.

    Webhook secrets (Postmark credentials, the Mailgun signing key) come from the
    environment, never from here; SendGrid's verification key and the SNS signing
    certificate are public material, so they may be named here.
    """

    max_body_bytes: int = Field(1_048_576, ge=1024)
    subscribe_per_ip: int = Field(10, ge=1)
    subscribe_per_address: int = Field(3, ge=1)
    rate_window_seconds: int = Field(3600, ge=1)
    soft_bounce_limit: int = Field(3, ge=1)
    webhook_max_age_seconds: int = Field(900, ge=10)
    sendgrid_public_key: str | None = None
    sns_certificate: str | None = None
    sns_topic_arns: list[str] = Field(default_factory=list)


class Config(_Model):
    """The whole of schedules.yaml, paths already resolved."""

    database: str = DEFAULT_DATABASE
    base_url: str = "http://127.0.0.1:8000"
    unsubscribe_mailto: str | None = None
    user_agent: str = "digest/0.1"
    #: Where a site owner can read who is crawling and how to reach them; sent in the User-Agent.
    contact_url: str = "https://github.com/digest-newsletter/digest"
    backends: dict[str, BackendConfig] = Field(default_factory=dict)
    newsletters: dict[str, NewsletterConfig] = Field(default_factory=dict)
    web: WebConfig = Field(default_factory=WebConfig)
    path: Path = Field(Path(DEFAULT_CONFIG), exclude=True)

    @field_validator("base_url")
    @classmethod
    def _absolute_base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                f"'{value}' must be an absolute http(s) URL such as https://news.example.org"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _references_exist(self) -> Config:
        for name, newsletter in self.newsletters.items():
            if newsletter.backend not in self.backends:
                known = ", ".join(sorted(self.backends)) or "none are defined"
                raise ValueError(
                    f"newsletters.{name}.backend: '{newsletter.backend}' is not a backend "
                    f"defined under 'backends' ({known})"
                )
        return self

    @property
    def http_user_agent(self) -> str:
        """The User-Agent of every request: the project, its version and the contact URL."""
        return f"{self.user_agent} (+{self.contact_url})"

    def newsletter(self, name: str) -> NewsletterConfig:
        """The newsletter called ``name``; ``ConfigError`` listing the known ones otherwise."""
        try:
            return self.newsletters[name]
        except KeyError:
            known = ", ".join(sorted(self.newsletters)) or "none"
            raise ConfigError(
                f"There is no newsletter '{name}' in {self.path} (known: {known})."
            ) from None

    @property
    def root(self) -> Path:
        """The folder that holds schedules.yaml; relative paths are resolved against it."""
        return self.path.parent

    def resolve(self, location: str) -> str:
        """A source location or file path made absolute against ``root`` (URLs unchanged)."""
        if "://" in location:
            return location
        path = Path(location).expanduser()
        return str(path if path.is_absolute() else (self.root / path).resolve())

    @property
    def database_url(self) -> str:
        """``database`` with a relative SQLite path resolved against ``root``."""
        prefix = "sqlite:///"
        url = self.database
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str((self.root / url[len(prefix) :]).resolve())
        return url


def _key_path(loc: tuple[Any, ...]) -> str:
    # pydantic puts the discriminator tag and the model name into loc; users know only keys.
    parts = [str(p) for p in loc if p not in ("outbox",) and not str(p).startswith("function-")]
    return ".".join(parts)


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        where = _key_path(error["loc"])
        if error["type"] == "extra_forbidden":
            message = "is not a known setting (check the spelling)"
        elif error["type"] == "missing":
            message = "is required"
        if message.startswith("newsletters."):  # cross-reference errors carry their own path
            where, _, message = message.partition(": ")
        lines.append(f"{path}: {where}: {message}" if where else f"{path}: {message}")
    return "\n".join(lines)


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: ``explicit``, else ``$DIGEST_CONFIG``, else ``./schedules.yaml``."""
    return Path(explicit or os.environ.get("DIGEST_CONFIG") or DEFAULT_CONFIG)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, validate and resolve schedules.yaml. ``ConfigError`` says what to fix."""
    file = config_path(path)
    try:
        raw = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{file}: no such file. Create it (see README.md) or pass --config PATH."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot be read ({exc}).") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{file}: is not valid YAML{where}: {problem}.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: must be a mapping of settings, not a {type(data).__name__}.")
    try:
        config = Config.model_validate({**data, "path": file.resolve()})
    except ValidationError as exc:
        raise ConfigError(_format_errors(file, exc)) from None
    return _resolve_paths(config)


def _resolve_paths(config: Config) -> Config:
    backends = {
        name: backend.model_copy(update={"path": config.resolve(backend.path)})
        if isinstance(backend, OutboxBackendConfig)
        else backend
        for name, backend in config.backends.items()
    }
    newsletters = {}
    for name, newsletter in config.newsletters.items():
        sources = [
            source.model_copy(update={source.kind: config.resolve(source.location)})
            for source in newsletter.sources
        ]
        update: dict[str, Any] = {"sources": sources}
        if newsletter.template_dir:
            update["template_dir"] = config.resolve(newsletter.template_dir)
        newsletters[name] = newsletter.model_copy(update=update)
    return config.model_copy(update={"backends": backends, "newsletters": newsletters})
