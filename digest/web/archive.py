"""The public archive: every issue that went out, at a stable URL, and an index per
newsletter.

``/archive/<newsletter>/<number>`` is the "view in browser" link of each message
(``digest.render.issue_links``). It shows the issue as rendered once for everyone,
with the per-recipient slots filled with neutral values, so no subscriber's
unsubscribe or preferences link is ever in it.
"""

from __future__ import annotations

import html
from urllib.parse import quote

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import Config
from ..store import Store
from ..store.tables import IssueRow
from .templating import message_page, page

# An issue is public from the moment its first message can arrive.
PUBLIC = ("sending", "sent")

ARCHIVE_HEADERS = {
    "Cache-Control": "public, max-age=300",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The email's own HTML: no script ever, images from anywhere (as in a mail client).
    "Content-Security-Policy": (
        "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'; "
        "font-src http: https:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
}


def neutral_values(config: Config, newsletter: str) -> dict[str, str]:
    """The slot values of the public copy: a greeting to nobody in particular and the
    archive index where a reader's own links would be."""
    index = f"{config.base_url}/archive/{quote(newsletter, safe='')}"
    return {"greeting": "Hello,", "unsubscribe_url": index, "preferences_url": index}


def public_html(config: Config, row: IssueRow) -> str:
    """The stored HTML of an issue with its slots filled by ``neutral_values``."""
    text = row.html
    values = neutral_values(config, row.newsletter)
    for name, token in row.slots.items():
        text = text.replace(token, html.escape(values.get(name, "")))
    return text


def _names(request: Request) -> tuple[Config, Store, str]:
    return request.app.state.config, request.app.state.store, request.path_params["newsletter"]


async def archive_index(request: Request) -> Response:
    """``GET /archive/<newsletter>``: the newsletter's issues, newest first."""
    config, store, name = _names(request)
    newsletter = config.newsletters.get(name)
    with store.session() as session:
        rows = session.execute(
            select(IssueRow.number, IssueRow.issue_date, IssueRow.subject)
            .where(IssueRow.newsletter == name, IssueRow.status.in_(PUBLIC))
            .order_by(IssueRow.number.desc())
        ).all()
    if newsletter is None and not rows:
        return message_page("No such newsletter", f"There is no newsletter called '{name}'.", 404)
    base = f"{config.base_url}/archive/{quote(name, safe='')}"
    return page(
        "archive_index.html",
        title=f"{newsletter.title if newsletter else name}: all issues",
        issues=[{"number": n, "date": d, "subject": s, "url": f"{base}/{n}"} for n, d, s in rows],
        subscribe_url=f"{config.base_url}/subscribe/{quote(name, safe='')}",
        headers={"Cache-Control": "public, max-age=300"},
    )


async def archive_issue(request: Request) -> Response:
    """``GET /archive/<newsletter>/<number>``: one issue as sent, without personal links."""
    config, store, name = _names(request)
    number = request.path_params["number"]
    with store.session() as session:
        row = session.scalar(
            select(IssueRow).where(
                IssueRow.newsletter == name,
                IssueRow.number == number,
                IssueRow.status.in_(PUBLIC),
            )
        )
        if row is None:
            return message_page("No such issue", f"'{name}' has no issue #{number} (yet).", 404)
        return HTMLResponse(public_html(config, row), headers=ARCHIVE_HEADERS)


def routes() -> list[BaseRoute]:
    """The archive's routes."""
    return [
        Route("/archive/{newsletter}", archive_index, methods=["GET"]),
        Route("/archive/{newsletter}/{number:int}", archive_issue, methods=["GET"]),
    ]
