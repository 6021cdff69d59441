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

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import Config
from ..store import Store
from ..store.archive import ArchivedIssue, public_issue, public_issues
from .templating import message_page, page

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


def public_html(config: Config, issue: ArchivedIssue) -> str:
    """The stored HTML of an issue with its slots filled by ``neutral_values``."""
    text = issue.html
    values = neutral_values(config, issue.newsletter)
    for name, token in issue.slots:
        text = text.replace(token, html.escape(values.get(name, "")))
    return text


def _names(request: Request) -> tuple[Config, Store, str]:
    return request.app.state.config, request.app.state.store, request.path_params["newsletter"]


def archive_index(request: Request) -> Response:
    """``GET /archive/<newsletter>``: the newsletter's issues, newest first."""
    config, store, name = _names(request)
    newsletter = config.newsletters.get(name)
    issues = public_issues(store, name)
    if newsletter is None and not issues:
        return message_page("No such newsletter", f"There is no newsletter called '{name}'.", 404)
    base = f"{config.base_url}/archive/{quote(name, safe='')}"
    return page(
        "archive_index.html",
        title=f"{newsletter.title if newsletter else name}: all issues",
        issues=[
            {
                "number": i.number,
                "date": i.issue_date,
                "subject": i.subject,
                "url": f"{base}/{i.number}",
            }
            for i in issues
        ],
        subscribe_url=f"{config.base_url}/subscribe/{quote(name, safe='')}",
        headers={"Cache-Control": "public, max-age=300"},
    )


def archive_issue(request: Request) -> Response:
    """``GET /archive/<newsletter>/<number>``: one issue as sent, without personal links."""
    config, store, name = _names(request)
    number = request.path_params["number"]
    issue = public_issue(store, name, number)
    if issue is None:
        return message_page("No such issue", f"'{name}' has no issue #{number} (yet).", 404)
    return HTMLResponse(public_html(config, issue), headers=ARCHIVE_HEADERS)


def routes() -> list[BaseRoute]:
    """The archive's routes."""
    return [
        Route("/archive/{newsletter}", archive_index, methods=["GET"]),
        Route("/archive/{newsletter}/{number:int}", archive_issue, methods=["GET"]),
    ]
