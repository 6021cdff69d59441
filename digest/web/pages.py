"""Subscriber pages: subscribe and confirm (double opt-in), one-click unsubscribe
(RFC 8058) and preferences.

Every link carries a token (``digest.tokens``) bound to a purpose, a subscriber and
a list; a forged, truncated or cross-purpose token gets a 400 page and changes
nothing. ``GET`` never changes state, except ``/confirm/<token>``, whose whole
purpose is to be followed from the confirmation email.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..backends import make_backend
from ..config import Config
from ..errors import DigestError, SubscriberError
from ..models import DeliveryStatus, Subscriber
from ..personalize import address_domain, standalone
from ..store import Store
from ..store.tables import ListRow, SubscriberRow, utcnow
from ..subscribers import (
    STICKY,
    find_subscriber,
    get_list,
    get_preferences,
    is_suppressed,
    normalize_email,
    set_preferences,
    set_status,
)
from ..tokens import make_token, read_token
from .limits import RateLimiter
from .templating import message_page, page

log = logging.getLogger("digest.web")

PAUSE_CHOICES = (0, 1, 2, 4, 8, 12)
#: How long a confirmation link works after the last request to subscribe: an old link
#: found in a forwarded or leaked mailbox should not sign anyone up months later.
CONFIRM_FOR = timedelta(days=7)
INVALID_LINK = (
    "This link is not valid. It may have been cut short when it was copied; "
    "open it again from the email, or use the link in a newer issue."
)


def _config(request: Request) -> Config:
    return request.app.state.config


def _store(request: Request) -> Store:
    return request.app.state.store


def _secret(request: Request) -> bytes:
    return request.app.state.secret


def _newsletters_of(config: Config, list_name: str) -> list[str]:
    return [name for name, n in config.newsletters.items() if n.list == list_name]


def _what(config: Config, list_name: str) -> str:
    titles = [config.newsletters[n].title for n in _newsletters_of(config, list_name)]
    return ", ".join(titles) if titles else f"the list '{list_name}'"


def _bad_link() -> Response:
    return message_page("Link not valid", INVALID_LINK, 400)


def _subscriber(
    request: Request, purpose: str
) -> tuple[SubscriberRow | None, str | None, Response | None]:
    """The subscriber a token in the path speaks for, read in a fresh session, or the
    error page to answer with."""
    claim = read_token(_secret(request), purpose, request.path_params["token"])
    if claim is None:
        log.info("rejected a %s link with an invalid token", purpose)
        return None, None, _bad_link()
    with _store(request).session() as session:
        row = session.scalar(
            select(SubscriberRow)
            .join(ListRow, ListRow.id == SubscriberRow.list_id)
            .where(SubscriberRow.id == claim.subscriber_id, ListRow.name == claim.list_name)
        )
    if row is None:
        return (
            None,
            claim.list_name,
            message_page(
                "Not subscribed",
                f"This address is no longer on {_what(_config(request), claim.list_name)}; "
                "nothing will be sent to it.",
                404,
            ),
        )
    return row, claim.list_name, None


def _link(request: Request, purpose: str, subscriber_id: int, list_name: str) -> str:
    token = make_token(_secret(request), purpose, subscriber_id, list_name)
    return f"{_config(request).base_url}/{purpose}/{token}"


# -- subscribe and confirm ------------------------------------------------------------


async def subscribe_form(request: Request) -> Response:
    """``GET /subscribe/<newsletter>``: the sign-up form of a newsletter."""
    config = _config(request)
    name = request.path_params["newsletter"]
    newsletter = config.newsletters.get(name)
    if newsletter is None:
        return message_page("No such newsletter", f"There is no newsletter called '{name}'.", 404)
    return page(
        "subscribe.html",
        title=f"Subscribe to {newsletter.title}",
        newsletter_title=newsletter.title,
        list_name=newsletter.list,
        action=f"{config.base_url}/subscribe",
    )


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def subscribe(request: Request) -> Response:
    """``POST /subscribe`` (form: ``email``, ``list``, optional ``name``).

    Creates a ``pending`` subscriber and sends a confirmation email through the
    backend of the list's newsletter. The answer is the same whether the address is
    new, pending, active, unsubscribed or suppressed, so the form cannot be used to
    learn who subscribes; too many requests from one IP get 429, too many for one
    address are answered the same but send nothing.
    """
    config = _config(request)
    ip_limiter: RateLimiter = request.app.state.ip_limiter
    address_limiter: RateLimiter = request.app.state.address_limiter
    ip = _client_ip(request)
    if not ip_limiter.allow(ip):
        return message_page(
            "Too many requests",
            "Too many sign-ups from your network. Please try again later.",
            429,
            {"Retry-After": str(ip_limiter.retry_after(ip))},
        )
    form = await request.form()
    list_name = str(form.get("list", "")).strip()
    raw_email = str(form.get("email", ""))
    name = " ".join(str(form.get("name", "")).split())[:200]
    newsletters = _newsletters_of(config, list_name)
    if not newsletters:
        return message_page(
            "No such list", f"There is no newsletter list called '{list_name[:100]}'.", 400
        )
    try:
        email, key = normalize_email(raw_email)
    except SubscriberError as exc:
        return message_page(
            "Check the address", f"'{raw_email[:320]}' is not an email address: {exc}", 400
        )
    checking = message_page(
        "Check your inbox",
        f"If {email} can subscribe to {_what(config, list_name)}, a message to confirm the "
        "subscription is on its way. Follow the link in it to start receiving issues.",
    )
    if not address_limiter.allow(key):
        log.info("subscribe: address rate limit reached; no confirmation sent")
        return checking
    to_confirm: SubscriberRow | None = None
    with _store(request).session() as session:
        list_row = get_list(session, list_name, create=True)
        assert list_row is not None
        row = find_subscriber(session, list_row, key)
        # Never mail an address that bounced or complained, not even to confirm.
        mailable = not is_suppressed(session, email) and (
            row is None or row.status not in ("bounced", "complained")
        )
        if not mailable:
            log.info("subscribe: a suppressed address asked again; nothing sent")
        elif row is None:
            now = utcnow()
            row = SubscriberRow(
                list_id=list_row.id,
                email=email,
                email_key=key,
                name=name,
                status="",  # set_status below records the first status in the history
                status_source="form",
                attributes={},
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            set_status(session, row, "pending", "form", f"from {ip}", now=now)
            to_confirm = row
        elif row.status in ("pending", "unsubscribed"):
            # Someone who left may come back, but only through a confirmed address.
            set_status(session, row, "pending", "form", f"from {ip}")
            row.updated_at = utcnow()  # the confirmation link works for CONFIRM_FOR from now
            if name:
                row.name = name
            to_confirm = row
    if to_confirm is None:
        return checking
    link = _link(request, "confirm", to_confirm.id, list_name)
    checking.background = BackgroundTask(
        send_confirmation,
        config,
        newsletters[0],
        to_confirm.email,
        to_confirm.name,
        to_confirm.id,
        link,
    )
    return checking


async def send_confirmation(
    config: Config, newsletter_name: str, email: str, name: str, subscriber_id: int, link: str
) -> None:
    """Send the double opt-in message through the newsletter's backend. Runs after the
    response is sent, so its duration reveals nothing about the address."""
    newsletter = config.newsletters[newsletter_name]
    try:
        outgoing = standalone(
            Subscriber(id=subscriber_id, email=email, name=name),
            sender=newsletter.sender,
            subject=f"Confirm your subscription to {newsletter.title}",
            text=(
                f"Hello{' ' + name if name else ''},\n\n"
                f"Someone, probably you, asked to receive {newsletter.title} at this address.\n"
                f"To confirm, open this link:\n\n{link}\n\n"
                "If it was not you, ignore this message: nothing will be sent unless the link is opened.\n"
            ),
            date=datetime.now(UTC),
            message_id=f"<confirm.{uuid.uuid4().hex}@{address_domain(newsletter.sender)}>",
            headers=(("Auto-Submitted", "auto-generated"),),
        )
        backend = make_backend(newsletter.backend, config.backends[newsletter.backend])
        async with backend:
            (delivery,) = await backend.send([outgoing])
    except DigestError as exc:
        log.error("the confirmation message to subscriber %s was not sent: %s", subscriber_id, exc)
        return
    if delivery.status is not DeliveryStatus.SENT:
        log.error(
            "the confirmation message to subscriber %s was not sent: %s",
            subscriber_id,
            delivery.error,
        )


async def confirm(request: Request) -> Response:
    """``GET /confirm/<token>``: a pending subscriber becomes active."""
    row, list_name, error = _subscriber(request, "confirm")
    if error is not None or row is None or list_name is None:
        return error or _bad_link()
    what = _what(_config(request), list_name)
    with _store(request).session() as session:
        current = session.get(SubscriberRow, row.id)
        assert current is not None
        if current.status == "active":
            return message_page("Already confirmed", f"You already receive {what}.")
        if current.status != "pending" or is_suppressed(session, current.email):
            return message_page(
                "Nothing to confirm",
                "This confirmation link is no longer current; subscribe again to get a new one.",
                400,
            )
        if utcnow() - current.updated_at > CONFIRM_FOR:
            return message_page(
                "Link expired",
                f"This confirmation link has expired (links work for {CONFIRM_FOR.days} days). "
                "Subscribe again to get a new one.",
                400,
            )
        set_status(session, current, "active", "confirm")
    return message_page("Subscription confirmed", f"Thank you: you will receive {what}.")


# -- one-click unsubscribe ----------------------------------------------------------


def _unsubscribe_page(
    request: Request, row: SubscriberRow, list_name: str, *, done: bool, text: str = ""
) -> Response:
    config = _config(request)
    return page(
        "unsubscribe.html",
        title="Unsubscribed" if done else "Unsubscribe",
        done=done,
        text=text,
        email=row.email,
        what=_what(config, list_name),
        preferences_url=_link(request, "preferences", row.id, list_name),
    )


async def unsubscribe(request: Request) -> Response:
    """``GET`` shows a page whose one button POSTs; ``POST`` with the RFC 8058 body
    ``List-Unsubscribe=One-Click`` unsubscribes at once (no cookie, no login) and
    answers 200."""
    row, list_name, error = _subscriber(request, "unsubscribe")
    if error is not None or row is None or list_name is None:
        return error or _bad_link()
    if request.method == "GET":
        if row.status in STICKY:
            return _unsubscribe_page(
                request,
                row,
                list_name,
                done=True,
                text=_left_text(_config(request), row, list_name),
            )
        return _unsubscribe_page(request, row, list_name, done=False)
    form = await request.form()
    if form.get("List-Unsubscribe") != "One-Click":
        return message_page(
            "Not an unsubscribe request",
            "An unsubscribe request must be a POST with the body List-Unsubscribe=One-Click.",
            400,
        )
    with _store(request).session() as session:
        current = session.get(SubscriberRow, row.id)
        assert current is not None
        if current.status in ("active", "pending"):
            set_status(session, current, "unsubscribed", "one-click")
            log.info("subscriber %s unsubscribed from %s (one-click)", current.id, list_name)
        text = _left_text(_config(request), current, list_name)
    return _unsubscribe_page(request, row, list_name, done=True, text=text)


def _left_text(config: Config, row: SubscriberRow, list_name: str) -> str:
    return f"{row.email} is unsubscribed from {_what(config, list_name)}. Nothing more will be sent to it."


# -- preferences ----------------------------------------------------------------------


def _sections(config: Config, list_name: str) -> list[str]:
    seen: dict[str, None] = {}
    for name in _newsletters_of(config, list_name):
        seen.update(dict.fromkeys(config.newsletters[name].sections))
    return list(seen)


def _preferences_page(
    request: Request, subscriber_id: int, list_name: str, notice: str = "", status_code: int = 200
) -> Response:
    config = _config(request)
    with _store(request).session() as session:
        row = session.get(SubscriberRow, subscriber_id)
        assert row is not None
        prefs = get_preferences(session, subscriber_id)
        suppressed = is_suppressed(session, row.email)
    if suppressed or row.status in ("bounced", "complained"):
        state = "mail to this address could not be delivered, so nothing is sent to it."
    elif row.status == "unsubscribed":
        state = "you are unsubscribed."
    elif row.status == "pending":
        state = "your subscription is waiting for you to confirm it (see the email we sent)."
    elif prefs.paused_until is not None:
        state = f"paused until {prefs.paused_until:%-d %B %Y}."
    else:
        state = "you are subscribed."
    return page(
        "preferences.html",
        status_code,
        title="Your preferences",
        notice=notice,
        email=row.email,
        what=_what(config, list_name),
        state=state,
        can_receive=row.status in ("active", "pending") and not suppressed,
        can_resubscribe=row.status == "unsubscribed" and not suppressed,
        sections=_sections(config, list_name),
        wanted=prefs.sections,
        pause_choices=PAUSE_CHOICES,
    )


async def preferences(request: Request) -> Response:
    """``GET`` shows the preferences; ``POST`` (``action`` = ``save``,
    ``unsubscribe-all`` or ``resubscribe``) changes them."""
    row, list_name, error = _subscriber(request, "preferences")
    if error is not None or row is None or list_name is None:
        return error or _bad_link()
    if request.method == "GET":
        return _preferences_page(request, row.id, list_name)
    form = await request.form()
    action = form.get("action")
    config = _config(request)
    if action == "save":
        offered = _sections(config, list_name)
        chosen = [s for s in form.getlist("section") if s in offered]
        try:
            weeks = int(str(form.get("pause_weeks", "0")))
        except ValueError:
            weeks = -1
        if weeks not in PAUSE_CHOICES:
            return _preferences_page(
                request, row.id, list_name, "Choose a pause from the list.", 400
            )
        if offered and not chosen:
            return _preferences_page(
                request,
                row.id,
                list_name,
                "Choose at least one section, or unsubscribe below.",
                400,
            )
        # Every section ticked means "everything", new sections included.
        sections = None if set(chosen) == set(offered) else chosen
        with _store(request).session() as session:
            set_preferences(session, row.id, sections=sections, pause_weeks=weeks)
        return _preferences_page(request, row.id, list_name, "Your preferences are saved.")
    if action == "unsubscribe-all":
        with _store(request).session() as session:
            for other in session.scalars(
                select(SubscriberRow).where(SubscriberRow.email_key == row.email_key)
            ):
                if other.status in ("active", "pending"):
                    set_status(
                        session, other, "unsubscribed", "preferences", "unsubscribe from all"
                    )
        return _preferences_page(
            request, row.id, list_name, "You are unsubscribed from all our newsletters."
        )
    if action == "resubscribe":
        with _store(request).session() as session:
            current = session.get(SubscriberRow, row.id)
            assert current is not None
            # The token came in mail to this address, which proves it: no new opt-in needed.
            if current.status == "unsubscribed" and not is_suppressed(session, current.email):
                set_status(session, current, "active", "preferences", "subscribed again")
        return _preferences_page(
            request, row.id, list_name, "Welcome back: you are subscribed again."
        )
    return _preferences_page(request, row.id, list_name, "Unknown action.", 400)


def routes() -> list[BaseRoute]:
    """The subscriber pages' routes."""
    return [
        Route("/subscribe", subscribe, methods=["POST"]),
        Route("/subscribe/{newsletter}", subscribe_form, methods=["GET"]),
        Route("/confirm/{token}", confirm, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/preferences/{token}", preferences, methods=["GET", "POST"]),
    ]
