"""schedules.yaml: the newsletters, their sources, lists, backends and cadence.

``load_config(path)`` returns a frozen ``Config`` or raises ``ConfigError`` whose
message names the file, the key path (``newsletters.weekly.cron``) and what is wrong.
Relative paths in the file (feeds, outbox folders, SQLite files, template folders)
are resolved against the folder that holds the file, so a config works from any
working directory.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, ValidationError, field_validator, model_validator

from .backends import BACKEND_TYPES, AnyBackendConfig
from .cadence import DAYS, SendWindow, parse_clock, parse_day, parse_duration
from .errors import ConfigError
from .extract.css import css_is_valid
from .models import Corrections
from .redact import mask_url
from .schema import StrictModel
from .urls import is_loopback

DEFAULT_CONFIG = "schedules.yaml"
DEFAULT_DATABASE = "sqlite:///digest.db"
DEFAULT_FROM = "Digest <digest@localhost>"


def _one_line(value: str | None) -> str | None:
    """Refuse a value that ends up in a mail header if it holds a line break or another
    control character: CR/LF there would start a header of the file's choosing (Bcc:)."""
    if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must be on one line, without control characters (it is used in headers)")
    return value


class ExtractConfig(StrictModel):
    """A source's corrections for extraction on its site: CSS selectors that win over
    the heuristics (``headline``, ``standfirst``, ``body``) and blocks to ``drop``."""

    headline: str | None = None
    standfirst: str | None = None
    body: str | None = None
    drop: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _valid_css(self) -> ExtractConfig:
        for selector in [self.headline, self.standfirst, self.body, *self.drop]:
            if selector is not None and not css_is_valid(selector):
                raise ValueError(f"'{selector}' is not a CSS selector lexbor can read")
        return self


class SourceConfig(StrictModel):
    """One place articles come from: exactly one of ``feed``, ``sitemap`` or ``listing``.

    Each is a URL or a local path. ``selector`` picks article links on a listing page
    (default: same-site links that look like articles). ``allow_private_networks``
    lets the source reach loopback/private addresses (refused otherwise: SSRF guard).
    ``deadline`` bounds the whole source (listing plus pages) in seconds; ``robots``
    obeys robots.txt; ``per_host`` caps concurrent requests to one host;
    ``max_articles`` caps the new pages fetched per run (newest first where dated);
    ``extract`` corrects extraction on the source's pages (``ExtractConfig``).
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
    extract: ExtractConfig | None = None

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

    @property
    def corrections(self) -> Corrections:
        """The source's selectors for extraction (none without ``extract:``)."""
        fix = self.extract
        if fix is None:
            return Corrections()
        return Corrections(
            fix.headline or "", fix.standfirst or "", fix.body or "", tuple(fix.drop)
        )


class ListConfig(StrictModel):
    """A subscriber list named once under ``lists:`` and referenced by newsletters."""

    title: str = ""
    description: str = ""


class ReviewConfig(StrictModel):
    """``review:`` of a newsletter: an editor approves each issue before it goes out
    (``digest.editorial``). ``ahead`` is how long before its slot the draft is built and
    mailed to the ``reviewers``; ``on_timeout`` is what the scheduler does when the
    slot's ``misfire_grace`` ends with the draft still unapproved."""

    required: bool = True
    reviewers: list[str] = Field(default_factory=list)
    ahead: timedelta = timedelta(hours=24)
    on_timeout: Literal["skip", "send"] = "skip"

    @field_validator("ahead", mode="before")
    @classmethod
    def _valid_ahead(cls, value: Any) -> timedelta:
        return value if isinstance(value, timedelta) else parse_duration(value)

    @field_validator("reviewers")
    @classmethod
    def _valid_reviewers(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or _one_line(address) != address:
                raise ValueError(f"'{address}' is not an email address")
        return value


class NewsletterConfig(StrictModel):
    """One newsletter: what it collects, how it looks, to whom and how it is sent."""

    title: str
    sender: str = Field(DEFAULT_FROM, alias="from")
    reply_to: str | None = None
    sources: list[SourceConfig] = Field(min_length=1)
    list_name: str = Field(alias="list")
    backend: str
    cron: str = "0 7 * * mon"
    weekly: str | None = None
    daily: str | None = None
    timezone: str = "UTC"
    send_window: str | None = None
    misfire_grace: timedelta = timedelta(hours=6)
    subject: str = "{{ top_headline }}"
    preheader: str = ""
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
    review: ReviewConfig | None = None

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

    @field_validator("weekly")
    @classmethod
    def _valid_weekly(cls, value: str | None) -> str | None:
        if value is not None:
            parts = value.split()
            if len(parts) != 2:
                raise ValueError(f"'{value}' is not of the form 'monday 07:00'")
            parse_day(parts[0])
            parse_clock(parts[1])
        return value

    @field_validator("daily")
    @classmethod
    def _valid_daily(cls, value: str | None) -> str | None:
        if value is not None:
            parse_clock(value)
        return value

    @field_validator("send_window")
    @classmethod
    def _valid_window(cls, value: str | None) -> str | None:
        if value is not None:
            SendWindow.parse(value)
        return value

    @field_validator("misfire_grace", mode="before")
    @classmethod
    def _valid_grace(cls, value: Any) -> timedelta:
        return value if isinstance(value, timedelta) else parse_duration(value)

    @field_validator("sections")
    @classmethod
    def _valid_sections(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for section in value:
            if not section.strip():
                raise ValueError("a section name cannot be empty")
            if section.casefold() in seen:
                raise ValueError(f"'{section}' is listed twice")
            seen.add(section.casefold())
        return value

    @model_validator(mode="after")
    def _one_cadence(self) -> NewsletterConfig:
        given = [k for k in ("cron", "weekly", "daily") if k in self.model_fields_set]
        if len(given) > 1:
            raise ValueError(f"give only one of {', '.join(given)}: they all set the cadence")
        return self

    @property
    def crontab(self) -> str:
        """The five-field cron expression of the cadence (``weekly``/``daily`` translated)."""
        if self.weekly:
            day, clock = self.weekly.split()
            at = parse_clock(clock)
            return f"{at.minute} {at.hour} * * {DAYS[parse_day(day)]}"
        if self.daily:
            at = parse_clock(self.daily)
            return f"{at.minute} {at.hour} * * *"
        return self.cron

    @property
    def window(self) -> SendWindow | None:
        """The parsed ``send_window``, or None when any time will do."""
        return SendWindow.parse(self.send_window) if self.send_window else None

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

    @field_validator("title", "sender", "reply_to", "subject", "list_name", "language")
    @classmethod
    def _no_header_injection(cls, value: str | None) -> str | None:
        return _one_line(value)


class PreviewConfig(StrictModel):
    """Who may see the preview gallery (``/preview``), an operator's tool.

    ``token_env`` names the environment variable holding the operator's token; each
    request then carries it (HTTP Basic password, any user name, or ``Authorization:
    Bearer``). Unset, the gallery answers only requests from this machine, and only
    when ``base_url`` is a loopback address (the demo, a local edit of templates).
    """

    token_env: str | None = None


class WebConfig(StrictModel):
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
    preview: PreviewConfig = Field(default_factory=PreviewConfig)


class WorkersConfig(StrictModel):
    """``workers:``: send on Celery workers (``digest worker``) through ``broker``
    (``amqp://...`` for RabbitMQ, ``redis://...``); see docs/scaling.md."""

    broker: str
    #: Ledger rows one task sends; a task redelivered after its worker died sends
    #: only those of them nobody sent.
    batch: int = Field(500, ge=1)
    #: The broker queue of this installation's tasks (several may share a broker).
    queue: str = "digest"
    #: The Redis that keeps the rate limits the workers share (``limits``); by default
    #: the broker when it is Redis. Without one each worker paces itself alone.
    limits: str | None = None
    #: Seconds without a row settled, with no worker holding one and the broker queue
    #: empty, after which ``digest run`` publishes the issue's tasks again (a broker
    #: restarted without persistence loses them; the ledger makes a repeat harmless).
    republish_after: float = Field(120.0, ge=1)

    @property
    def limits_url(self) -> str | None:
        """Where the shared rate limits live, if anywhere."""
        if self.limits:
            return self.limits
        return self.broker if self.broker.startswith(("redis://", "rediss://")) else None


class Config(StrictModel):
    """The whole of schedules.yaml, paths already resolved."""

    database: str = DEFAULT_DATABASE
    base_url: str = "http://127.0.0.1:8000"
    unsubscribe_mailto: str | None = None
    user_agent: str = "digest/0.1"
    #: Where a site owner can read who is crawling and how to reach them; sent in the User-Agent.
    contact_url: str = "https://github.com/digest-newsletter/digest"
    backends: dict[str, AnyBackendConfig] = Field(default_factory=dict)
    lists: dict[str, ListConfig] | None = None
    newsletters: dict[str, NewsletterConfig] = Field(default_factory=dict)
    web: WebConfig = Field(default_factory=WebConfig)
    workers: WorkersConfig | None = None
    path: Path = Field(Path(DEFAULT_CONFIG), exclude=True)

    @field_validator("base_url")
    @classmethod
    def _absolute_base(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(
                mask_url(
                    f"'{value}' must be an absolute http(s) URL such as https://news.example.org"
                )
            )
        _one_line(value)
        # One-click unsubscribe (RFC 8058) must be HTTPS; plain http only for this machine.
        if value.startswith("http://") and not is_loopback(value):
            raise ValueError(
                f"'{value}' must use https: one-click unsubscribe links (RFC 8058) need "
                "HTTPS; plain http is only for a loopback address (127.0.0.1, localhost)"
            )
        return value.rstrip("/")

    @field_validator("unsubscribe_mailto")
    @classmethod
    def _mailto_one_line(cls, value: str | None) -> str | None:
        return _one_line(value)

    @field_validator("newsletters", "backends", "lists")
    @classmethod
    def _names_one_line(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Names reach List-Id and Message-ID headers and log lines.
        for name in value or {}:
            if _one_line(name) is not None and not name.strip():
                raise ValueError("a name cannot be empty")
        return value

    @model_validator(mode="after")
    def _workers_share_a_server(self) -> Config:
        if self.workers is not None and self.database.startswith("sqlite"):
            raise ValueError(
                "workers: needs a database every worker can reach (PostgreSQL, "
                "'database: postgresql+psycopg://...'); SQLite is a file on one machine"
            )
        return self

    @model_validator(mode="after")
    def _references_exist(self) -> Config:
        problems = []
        for name, newsletter in self.newsletters.items():
            if newsletter.backend not in self.backends:
                known = ", ".join(sorted(self.backends)) or "none are defined"
                problems.append(
                    f"newsletters.{name}.backend: '{newsletter.backend}' is not a backend "
                    f"defined under 'backends' ({known})"
                )
            # Lists may be named once under 'lists:'; without that section any name goes.
            if self.lists is not None and newsletter.list_name not in self.lists:
                known = ", ".join(sorted(self.lists)) or "none are defined"
                problems.append(
                    f"newsletters.{name}.list: '{newsletter.list_name}' is not a list "
                    f"defined under 'lists' ({known})"
                )
        if problems:
            raise ValueError("\n".join(problems))
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
    parts = [str(p) for p in loc if p not in BACKEND_TYPES and not str(p).startswith("function-")]
    return ".".join(parts)


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines: list[str] = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        where = _key_path(error["loc"])
        if error["type"] == "extra_forbidden":
            message = "is not a known setting (check the spelling)"
        elif error["type"] == "missing":
            message = "is required"
        if message.startswith("newsletters."):  # cross-reference errors carry their own path
            lines.extend(f"{path}: {line}" for line in message.splitlines())
            continue
        lines.append(f"{path}: {where}: {message}" if where else f"{path}: {message}")
    return "\n".join(lines)


class _DuplicateKey(yaml.YAMLError):
    """A mapping of schedules.yaml names one key twice (YAML 1.2 forbids it; PyYAML would
    silently keep the last one, so a second ``list:`` or ``weekly:`` block would win)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, naming both lines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.setdefault(key, line)
            except TypeError:  # an unhashable key: PyYAML's own error says so below
                continue
            if first != line:
                raise _DuplicateKey(
                    f"the key '{key}' appears twice in one mapping, at lines {first} and "
                    f"{line}; keep one"
                )
        return super().construct_mapping(node, deep=deep)


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
        data = yaml.load(raw, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: safe
    except _DuplicateKey as exc:
        raise ConfigError(f"{file}: {exc}.") from None
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
    config = _resolve_paths(config)
    _check_templates(file, config)
    return config


def _check_templates(file: Path, config: Config) -> None:
    """A ``template_dir`` must be a folder holding ``issue.mjml`` (checked at load time so a
    typo is found now, not when the job fires)."""
    problems = []
    for name, newsletter in config.newsletters.items():
        if not newsletter.template_dir:
            continue
        folder = Path(newsletter.template_dir)
        if not folder.is_dir():
            problems.append(f"{file}: newsletters.{name}.template_dir: {folder} is not a folder")
        elif not (folder / "issue.mjml").is_file():
            problems.append(
                f"{file}: newsletters.{name}.template_dir: {folder} has no issue.mjml template"
            )
    if problems:
        raise ConfigError("\n".join(problems))


def _resolve_paths(config: Config) -> Config:
    backends = {name: backend.resolved(config.resolve) for name, backend in config.backends.items()}
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
