"""The public archive: every issue that went out, at a stable URL, and an index per
newsletter, and an Atom feed of the newest (``/archive/<newsletter>/feed.xml``).

``/archive/<newsletter>/<number>`` is the "view in browser" link of each message
(``digest.render.issue_links``). It shows the issue as rendered once for everyone,
with the per-recipient slots filled with neutral values, so no subscriber's
unsubscribe or preferences link is ever in it.
"""

from __future__ import annotations

import html
from urllib.parse import quote
from xml.etree import ElementTree

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


#: How many of the newest issues the Atom feed carries.
FEED_ENTRIES = 20


def archive_feed(request: Request) -> Response:
    """``GET /archive/<newsletter>/feed.xml``: an Atom feed of the newest public issues,
    each entry the issue's web version (link and content, without personal links)."""
    config, store, name = _names(request)
    newsletter = config.newsletters.get(name)
    listed = public_issues(store, name)[:FEED_ENTRIES]
    if newsletter is None and not listed:
        return message_page("No such newsletter", f"There is no newsletter called '{name}'.", 404)
    base = f"{config.base_url}/archive/{quote(name, safe='')}"
    atom = "http://www.w3.org/2005/Atom"
    feed = ElementTree.Element("feed", xmlns=atom)
    ElementTree.SubElement(feed, "title").text = newsletter.title if newsletter else name
    ElementTree.SubElement(feed, "id").text = f"{base}/feed.xml"
    ElementTree.SubElement(feed, "link", rel="self", href=f"{base}/feed.xml")
    ElementTree.SubElement(feed, "link", rel="alternate", href=base)
    ElementTree.SubElement(feed, "updated").text = _atom_date(
        listed[0].issue_date if listed else "1970-01-01"
    )
    for listing in listed:
        issue = public_issue(store, name, listing.number)
        if issue is None:  # withdrawn between the two reads
            continue
        url = f"{base}/{issue.number}"
        entry = ElementTree.SubElement(feed, "entry")
        ElementTree.SubElement(entry, "title").text = issue.subject
        ElementTree.SubElement(entry, "id").text = url
        ElementTree.SubElement(entry, "link", rel="alternate", type="text/html", href=url)
        ElementTree.SubElement(entry, "updated").text = _atom_date(issue.issue_date)
        ElementTree.SubElement(entry, "content", type="html").text = public_html(config, issue)
    body = ElementTree.tostring(feed, encoding="unicode", xml_declaration=True)
    return Response(
        body,
        media_type="application/atom+xml; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


def _atom_date(issue_date: str) -> str:
    """An issue's date (``YYYY-MM-DD``) as an Atom timestamp (midnight UTC)."""
    return f"{issue_date}T00:00:00Z"


def routes() -> list[BaseRoute]:
    """The archive's routes."""
    return [
        Route("/archive/{newsletter}", archive_index, methods=["GET"]),
        Route("/archive/{newsletter}/feed.xml", archive_feed, methods=["GET"]),
        Route("/archive/{newsletter}/{number:int}", archive_issue, methods=["GET"]),
    ]
