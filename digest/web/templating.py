"""HTML pages of the web service: Jinja2 templates in ``templates/``, autoescaped.

Every page is sent with headers that keep it private and inert: not cached, not
indexed, no referrer (token URLs must not leak to the sites a page links to), and
a Content-Security-Policy that allows no script and forms only to this service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.responses import HTMLResponse

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def page(
    template: str, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    """``template`` rendered with ``context`` as an HTML response with ``PAGE_HEADERS``."""
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})


def message_page(
    title: str, text: str, status_code: int = 200, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """A page with a heading and one paragraph (confirmations, errors)."""
    return page("message.html", status_code, headers, title=title, text=text)
