"""The editorial review in the browser: what a reviewer's signed links open.

``/review/<newsletter>/<token>`` shows the draft under review (its stories, subject,
editor's note and the email itself) with forms to approve it, drop or move a story and
set the note or subject; ``/review/<newsletter>/approve/<token>`` asks to confirm and
approves on POST (a GET never changes anything: mail scanners follow links).

Tokens come from ``digest.editorial.review_token``: bound to their purpose, the
newsletter, the reviewer (who must still be one of its ``review.reviewers``) and the
draft version. A forged link gets 403; a link to an older version of the draft gets
410 (the draft changed since; any change makes a new version). After an edit the page
moves to the link of the new version.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import Config
from ..editorial import APPROVE, OPEN, Editorial, ReviewLink, read_review_token, review_token
from ..errors import ReviewError
from ..personalize import fill_slots
from ..pipeline import Pipeline
from ..store.editorial import Edits
from .archive import ARCHIVE_HEADERS, neutral_values
from .templating import PAGE_HEADERS, message_page, page

# The review page frames the draft's HTML, served by this service.
REVIEW_HEADERS = {
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"] + "; frame-src 'self'"
}
EMAIL_HEADERS = {
    **ARCHIVE_HEADERS,
    "Cache-Control": "no-store",
    "Content-Security-Policy": ARCHIVE_HEADERS["Content-Security-Policy"].replace(
        "frame-ancestors 'none'", "frame-ancestors 'self'"
    ),
}


def _editorial(request: Request) -> Editorial:
    return Editorial(Pipeline(request.app.state.config, request.app.state.store))


def _check(request: Request, purpose: str) -> tuple[ReviewLink, Editorial] | Response:
    """The link of the request when it is valid and current; else the page saying why."""
    config: Config = request.app.state.config
    name = request.path_params["newsletter"]
    link = read_review_token(request.app.state.secret, purpose, request.path_params["token"])
    newsletter = config.newsletters.get(name)
    if (
        link is None
        or link.newsletter != name
        or newsletter is None
        or newsletter.review is None
        or link.reviewer not in newsletter.review.reviewers
    ):
        return message_page("Link not valid", "This review link is not valid.", 403)
    editorial = _editorial(request)
    try:
        status = editorial.status(name)
    except ReviewError as exc:
        return message_page("No draft", str(exc), 404)
    if status.version != link.version:
        return message_page(
            "Link out of date",
            f"The draft of issue #{status.number} changed since this link was made (version "
            f"{link.version}, now {status.version}), so it no longer approves or edits anything. "
            "The newest review mail, or the web app, has the current link.",
            410,
        )
    return link, editorial


def _open_url(request: Request, link: ReviewLink) -> str:
    token = review_token(
        request.app.state.secret, OPEN, link.newsletter, link.version, link.reviewer
    )
    return f"/review/{quote(link.newsletter, safe='')}/{token}"


def review_page(request: Request) -> Response:
    """``GET /review/<newsletter>/<token>``: the draft and the reviewer's forms."""
    checked = _check(request, OPEN)
    if isinstance(checked, Response):
        return checked
    link, editorial = checked
    status = editorial.status(link.newsletter)
    here = _open_url(request, link)
    return page(
        "review.html",
        headers=REVIEW_HEADERS,
        title=f"Review: issue #{status.number} of {link.newsletter}",
        status=status,
        action=here,
        email_url=f"{here}/email.html",
    )


def review_email(request: Request) -> Response:
    """``GET /review/<newsletter>/<token>/email.html``: the draft's HTML as readers see it
    (slots filled with the archive's neutral values)."""
    checked = _check(request, OPEN)
    if isinstance(checked, Response):
        return checked
    link, editorial = checked
    rendered = editorial.composed(link.newsletter).rendered
    values = {
        key: html.escape(value)
        for key, value in neutral_values(request.app.state.config, link.newsletter).items()
    }
    return HTMLResponse(fill_slots(rendered.html, rendered, values), headers=EMAIL_HEADERS)


async def review_action(request: Request) -> Response:
    """``POST /review/<newsletter>/<token>``: approve, drop, move, note or subject."""
    form = await request.form()
    return await run_in_threadpool(_act, request, form)


def _act(request: Request, form: FormData) -> Response:
    checked = _check(request, OPEN)
    if isinstance(checked, Response):
        return checked
    link, editorial = checked
    name = link.newsletter
    action = str(form.get("action", ""))
    url = str(form.get("url", ""))
    try:
        if action == "approve":
            status = editorial.approve(name, f"{link.reviewer} (web)", link.version)
            return message_page("Approved", _approved(status.number, name), 200)
        if action == "drop":
            status = editorial.edit(name, Edits(drop=(url,)))
        elif action == "move":
            try:
                position = int(str(form.get("to", "")))
            except ValueError:
                return message_page("Not a position", "The position must be a number.", 400)
            status = editorial.edit(name, Edits(moves=((url, position),)))
        elif action == "note":
            status = editorial.edit(name, Edits(note=str(form.get("note", ""))), note=True)
        elif action == "subject":
            subject = " ".join(str(form.get("subject", "")).split())
            status = editorial.edit(name, Edits(subject=subject), subject=True)
        else:
            return message_page("Unknown action", "That is not something a reviewer can do.", 400)
    except ReviewError as exc:
        return message_page("Not changed", str(exc), 409)
    current = ReviewLink(name, status.version, link.reviewer)
    return RedirectResponse(_open_url(request, current), status_code=303)


def _approved(number: int, name: str) -> str:
    return (
        f"Issue #{number} of '{name}' is approved and goes out at its scheduled time, "
        "exactly as it is now. Any later edit withdraws the approval."
    )


def approve_page(request: Request) -> Response:
    """``GET /review/<newsletter>/approve/<token>``: asks to confirm (changes nothing)."""
    checked = _check(request, APPROVE)
    if isinstance(checked, Response):
        return checked
    link, editorial = checked
    status = editorial.status(link.newsletter)
    return page(
        "review_approve.html",
        title=f"Approve issue #{status.number} of {link.newsletter}?",
        status=status,
        open_url=_open_url(request, link),
    )


def approve(request: Request) -> Response:
    """``POST /review/<newsletter>/approve/<token>``: approves the version the link is for."""
    checked = _check(request, APPROVE)
    if isinstance(checked, Response):
        return checked
    link, editorial = checked
    try:
        status = editorial.approve(link.newsletter, f"{link.reviewer} (web)", link.version)
    except ReviewError as exc:
        return message_page("Not approved", str(exc), 409)
    return message_page("Approved", _approved(status.number, link.newsletter), 200)


def routes() -> list[BaseRoute]:
    """The review routes."""
    return [
        Route("/review/{newsletter}/approve/{token}", approve_page, methods=["GET"]),
        Route("/review/{newsletter}/approve/{token}", approve, methods=["POST"]),
        Route("/review/{newsletter}/{token}/email.html", review_email, methods=["GET"]),
        Route("/review/{newsletter}/{token}", review_page, methods=["GET"]),
        Route("/review/{newsletter}/{token}", review_action, methods=["POST"]),
    ]
