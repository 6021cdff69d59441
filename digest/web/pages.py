"""Subscriber pages: subscribe and confirm (double opt-in), one-click unsubscribe
(RFC 8058) and preferences.

Every link carries a token (``digest.tokens``) bound to a purpose, a subscriber and
a list; a forged, truncated or cross-purpose token gets a 400 page and changes
nothing. ``GET`` never changes state, except ``/confirm/<token>``, whose whole
purpose is to be followed from the confirmation email.
"""

from __future__ import annotations

import logging

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import subscriptions
from ..config import Config
from ..confirmation import send_confirmation
from ..errors import SubscriberError
from ..store import Store
from ..store.status import SubscriberStatus as Status
from ..store.subscribers import SubscriberRecord
from ..subscriptions import CONFIRM_FOR, STICKY, Confirmation
from ..tokens import make_token, read_token
from .limits import RateLimiter
from .templating import message_page, page

log = logging.getLogger("digest.web")

PAUSE_CHOICES = (0, 1, 2, 4, 8, 12)
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
    return [name for name, n in config.newsletters.items() if n.list_name == list_name]


def _what(config: Config, list_name: str) -> str:
    titles = [config.newsletters[n].title for n in _newsletters_of(config, list_name)]
    return ", ".join(titles) if titles else f"the list '{list_name}'"


def _bad_link() -> Response:
    return message_page("Link not valid", INVALID_LINK, 400)


def _standing(request: Request, purpose: str) -> subscriptions.Standing | Response:
    """The subscriber a token in the path speaks for, or the error page to answer with.
    Reads the database: call it from a worker thread."""
    claim = read_token(_secret(request), purpose, request.path_params["token"])
    if claim is None:
        log.info("rejected a %s link with an invalid token", purpose)
        return _bad_link()
    found = subscriptions.standing(_store(request), claim.subscriber_id, claim.list_name)
    if found is None:
        return message_page(
            "Not subscribed",
            f"This address is no longer on {_what(_config(request), claim.list_name)}; "
            "nothing will be sent to it.",
            404,
        )
    return found


def _link(request: Request, purpose: str, subscriber_id: int, list_name: str) -> str:
    token = make_token(_secret(request), purpose, subscriber_id, list_name)
    return f"{_config(request).base_url}/{purpose}/{token}"


async def _form(request: Request) -> FormData | None:
    return await request.form() if request.method == "POST" else None


# -- subscribe and confirm ------------------------------------------------------------


def subscribe_form(request: Request) -> Response:
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
        list_name=newsletter.list_name,
        action=f"{config.base_url}/subscribe",
    )


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def subscribe(request: Request) -> Response:
    """``POST /subscribe`` (form: ``email``, ``list``, optional ``name``).

    Asks the subscriptions service to add a ``pending`` subscriber and sends a
    confirmation email through the backend of the list's newsletter. The answer is the
    same whether the address is new, pending, active, unsubscribed or suppressed, so the
    form cannot be used to learn who subscribes; too many requests from one IP get 429,
    too many for one address are answered the same but send nothing.
    """
    ip_limiter: RateLimiter = request.app.state.ip_limiter
    ip = _client_ip(request)
    if not ip_limiter.allow(ip):
        return message_page(
            "Too many requests",
            "Too many sign-ups from your network. Please try again later.",
            429,
            {"Retry-After": str(ip_limiter.retry_after(ip))},
        )
    form = await request.form()
    config = _config(request)
    address_limiter: RateLimiter = request.app.state.address_limiter
    list_name = str(form.get("list", "")).strip()
    raw_email = str(form.get("email", ""))
    name = subscriptions.clean_name(str(form.get("name", "")))
    newsletters = _newsletters_of(config, list_name)
    if not newsletters:
        return message_page(
            "No such list", f"There is no newsletter list called '{list_name[:100]}'.", 400
        )
    try:
        email, key = subscriptions.normalize_email(raw_email)
    except SubscriberError as exc:
        return message_page(
            "Check the address", f"'{raw_email[:320]}' is not an email address: {exc}", 400
        )
    checking = message_page(
        "Check your inbox",
        f"If {email} can subscribe to {_what(config, list_name)}, a message to confirm the "
        "subscription is on its way. Follow the link in it to start receiving issues.",
    )
    # The limiters are not thread-safe: they are only used here, on the event loop.
    if not address_limiter.allow(key):
        log.info("subscribe: address rate limit reached; no confirmation sent")
        return checking
    to_confirm = await run_in_threadpool(
        subscriptions.request, _store(request), list_name, email, name, f"from {ip}"
    )
    if to_confirm is None:
        log.info("subscribe: nothing to confirm (active, bounced or suppressed); nothing sent")
        return checking
    link = _link(request, "confirm", to_confirm.id, list_name)
    checking.background = BackgroundTask(
        request.app.state.background.run,
        f"the confirmation message to subscriber {to_confirm.id}",
        send_confirmation,
        config,
        newsletters[0],
        to_confirm,
        link,
    )
    return checking


_CONFIRMED_PAGES: dict[Confirmation, tuple[str, str, int]] = {
    Confirmation.CONFIRMED: ("Subscription confirmed", "Thank you: you will receive {what}.", 200),
    Confirmation.ALREADY: ("Already confirmed", "You already receive {what}.", 200),
    Confirmation.NOT_CURRENT: (
        "Nothing to confirm",
        "This confirmation link is no longer current; subscribe again to get a new one.",
        400,
    ),
    Confirmation.EXPIRED: (
        "Link expired",
        f"This confirmation link has expired (links work for {CONFIRM_FOR.days} days). "
        "Subscribe again to get a new one.",
        400,
    ),
}


def confirm(request: Request) -> Response:
    """``GET /confirm/<token>``: a pending subscriber becomes active."""
    found = _standing(request, "confirm")
    if isinstance(found, Response):
        return found
    outcome = subscriptions.confirm(_store(request), found.record.id)
    title, text, status_code = _CONFIRMED_PAGES[outcome]
    what = _what(_config(request), found.record.list_name)
    return message_page(title, text.format(what=what), status_code)


# -- one-click unsubscribe ----------------------------------------------------------


def _unsubscribe_page(request: Request, record: SubscriberRecord, *, done: bool) -> Response:
    config = _config(request)
    what = _what(config, record.list_name)
    return page(
        "unsubscribe.html",
        title="Unsubscribed" if done else "Unsubscribe",
        done=done,
        text=f"{record.email} is unsubscribed from {what}. Nothing more will be sent to it."
        if done
        else "",
        email=record.email,
        what=what,
        preferences_url=_link(request, "preferences", record.id, record.list_name),
    )


async def unsubscribe(request: Request) -> Response:
    """``GET`` shows a page whose one button POSTs; ``POST`` with the RFC 8058 body
    ``List-Unsubscribe=One-Click`` unsubscribes at once (no cookie, no login) and
    answers 200."""
    return await run_in_threadpool(_unsubscribe, request, await _form(request))


def _unsubscribe(request: Request, form: FormData | None) -> Response:
    found = _standing(request, "unsubscribe")
    if isinstance(found, Response):
        return found
    record = found.record
    if form is None:
        return _unsubscribe_page(request, record, done=record.status in STICKY)
    if form.get("List-Unsubscribe") != "One-Click":
        return message_page(
            "Not an unsubscribe request",
            "An unsubscribe request must be a POST with the body List-Unsubscribe=One-Click.",
            400,
        )
    after = subscriptions.unsubscribe(_store(request), record.id, "one-click")
    if after.status != record.status:
        log.info("subscriber %s unsubscribed from %s (one-click)", record.id, record.list_name)
    return _unsubscribe_page(request, after, done=True)


# -- preferences ----------------------------------------------------------------------


def _sections(config: Config, list_name: str) -> list[str]:
    seen: dict[str, None] = {}
    for name in _newsletters_of(config, list_name):
        seen.update(dict.fromkeys(config.newsletters[name].sections))
    return list(seen)


def _state(found: subscriptions.Standing) -> str:
    status = found.record.status
    if found.suppressed or status in (Status.BOUNCED, Status.COMPLAINED):
        return "mail to this address could not be delivered, so nothing is sent to it."
    if status == Status.UNSUBSCRIBED:
        return "you are unsubscribed."
    if status == Status.PENDING:
        return "your subscription is waiting for you to confirm it (see the email we sent)."
    if found.preferences.paused_until is not None:
        return f"paused until {found.preferences.paused_until:%-d %B %Y}."
    return "you are subscribed."


def _preferences_page(
    request: Request, subscriber_id: int, list_name: str, notice: str = "", status_code: int = 200
) -> Response:
    config = _config(request)
    found = subscriptions.standing(_store(request), subscriber_id, list_name)
    assert found is not None
    status = found.record.status
    return page(
        "preferences.html",
        status_code,
        title="Your preferences",
        notice=notice,
        email=found.record.email,
        what=_what(config, list_name),
        state=_state(found),
        can_receive=status in (Status.ACTIVE, Status.PENDING) and not found.suppressed,
        can_resubscribe=status == Status.UNSUBSCRIBED and not found.suppressed,
        sections=_sections(config, list_name),
        wanted=found.preferences.sections,
        pause_choices=PAUSE_CHOICES,
    )


async def preferences(request: Request) -> Response:
    """``GET`` shows the preferences; ``POST`` (``action`` = ``save``,
    ``unsubscribe-all`` or ``resubscribe``) changes them."""
    return await run_in_threadpool(_preferences, request, await _form(request))


def _preferences(request: Request, form: FormData | None) -> Response:
    found = _standing(request, "preferences")
    if isinstance(found, Response):
        return found
    record = found.record
    if form is None:
        return _preferences_page(request, record.id, record.list_name)
    store = _store(request)
    action = form.get("action")
    if action == "save":
        return _save_preferences(request, record, form)
    if action == "unsubscribe-all":
        subscriptions.unsubscribe_everywhere(
            store, record.email, "preferences", "unsubscribe from all"
        )
        notice = "You are unsubscribed from all our newsletters."
        return _preferences_page(request, record.id, record.list_name, notice)
    if action == "resubscribe":
        # The token came in mail to this address, which proves it: no new opt-in needed.
        subscriptions.resubscribe(store, record.id, "preferences", "subscribed again")
        notice = "Welcome back: you are subscribed again."
        return _preferences_page(request, record.id, record.list_name, notice)
    return _preferences_page(request, record.id, record.list_name, "Unknown action.", 400)


def _save_preferences(request: Request, record: SubscriberRecord, form: FormData) -> Response:
    offered = _sections(_config(request), record.list_name)
    chosen = [s for s in form.getlist("section") if isinstance(s, str) and s in offered]
    try:
        weeks = int(str(form.get("pause_weeks", "0")))
    except ValueError:
        weeks = -1
    problem = ""
    if weeks not in PAUSE_CHOICES:
        problem = "Choose a pause from the list."
    elif offered and not chosen:
        problem = "Choose at least one section, or unsubscribe below."
    if problem:
        return _preferences_page(request, record.id, record.list_name, problem, 400)
    # Every section ticked means "everything", new sections included.
    sections = None if set(chosen) == set(offered) else chosen
    subscriptions.save_preferences(_store(request), record.id, sections=sections, pause_weeks=weeks)
    return _preferences_page(request, record.id, record.list_name, "Your preferences are saved.")


def routes() -> list[BaseRoute]:
    """The subscriber pages' routes."""
    return [
        Route("/subscribe", subscribe, methods=["POST"]),
        Route("/subscribe/{newsletter}", subscribe_form, methods=["GET"]),
        Route("/confirm/{token}", confirm, methods=["GET"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/preferences/{token}", preferences, methods=["GET", "POST"]),
    ]
