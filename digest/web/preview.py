"""The local preview gallery at ``/preview`` (``digest serve``).

``/preview`` lists the newsletters; ``/preview/{name}`` shows the next issue of one at
desktop and mobile widths side by side, its text part, its headers and a size meter
against Gmail's 102 KB clipping limit. The page polls ``/preview/changes`` (the
modification times of schedules.yaml and the email templates) and reloads itself
when one changes, so editing a template shows its effect at once.

The gallery builds the issue afresh (schedules.yaml re-read, sources collected) when
a watched file changed or its last build is over 30 seconds old, and freezes
nothing: ``digest preview`` is the command that fixes what ``run`` sends. Requests
that arrive while a build is running wait for that build: twenty at once cause one.

It is the operator's tool (``web.preview``): with ``token_env`` set every request
must carry that token (HTTP Basic password or a bearer token); without it the gallery
answers only this machine, and only when ``base_url`` is a loopback address. It shows
the sample reader with links that carry no token (``Messages.sample``), and its error
pages name files relative to schedules.yaml's folder, never by absolute path.
The gallery's own page uses a little JavaScript; the email never does. Reading
schedules.yaml and the templates' modification times happens in worker threads; the
build itself is the pipeline's (``Pipeline.build``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import html
import inspect
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import Config, load_config
from ..errors import DigestError
from ..pipeline import Pipeline, Sample
from ..render import GMAIL_CLIP_BYTES, default_template_dir
from ..store import Store
from ..urls import is_loopback

DESKTOP_WIDTH = 800
MOBILE_WIDTH = 375

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 22px; margin: 0 0 8px; }
.frames { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
figure { margin: 0; }
iframe { border: 1px solid #d0d7de; height: 900px; background: #fff; }
meter { width: 320px; height: 18px; }
pre { background: #f6f8fa; padding: 12px; overflow: auto; max-width: 100%; }
.note { background: #fff8c5; padding: 8px 12px; }
.error { background: #ffebe9; padding: 8px 12px; white-space: pre-wrap; }
"""

_RELOAD = """
<script>
const seen = %s;
setInterval(async () => {
  try {
    const answer = await fetch('/preview/changes');
    if ((await answer.json()).version !== seen) location.reload();
  } catch (e) { /* the server is restarting: try again on the next tick */ }
}, 1000);
</script>
"""


def _error(config: Config, exc: DigestError) -> str:
    """The message of ``exc`` for a page: paths under schedules.yaml's folder relative
    to it, so a page never tells where the configuration lives."""
    text = str(exc)
    for folder in {str(config.root), str(config.root.resolve())}:
        text = text.replace(folder + os.sep, "").replace(folder, ".")
    return html.escape(text)


def _page(title: str, body: str, version: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{_STYLE}</style></head><body>{body}{_RELOAD % repr(version)}</body></html>"
    )


def watched_files(config: Config) -> list[Path]:
    """schedules.yaml and every file of every template folder its newsletters use."""
    folders = {default_template_dir()}
    folders.update(Path(n.template_dir) for n in config.newsletters.values() if n.template_dir)
    files = [config.path]
    for folder in sorted(folders):
        if folder.is_dir():
            files.extend(sorted(p for p in folder.rglob("*") if p.is_file()))
    return files


def version(config: Config) -> str:
    """A fingerprint of the watched files' names, sizes and modification times."""
    digest = hashlib.sha256()
    for path in watched_files(config):
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
    return digest.hexdigest()[:16]


def _current_config(request: Request) -> Config:
    """schedules.yaml as it is on disk now; ``ConfigError`` while it is invalid."""
    config: Config = request.app.state.config
    return load_config(config.path)


def _watched_version(request: Request) -> str:
    # The file on disk decides which template folders to watch; while it is invalid
    # (mid-edit) the configuration the server started with does.
    try:
        return version(_current_config(request))
    except DigestError:
        return version(request.app.state.config)


@dataclass(frozen=True, slots=True)
class _Preview:
    subject: str
    number: int
    items: int
    notes: tuple[str, ...]
    sample: Sample


# A page and its two frames arrive within a moment of each other: they share one build
# (keyed by the watched files' version) instead of collecting the sources three times.
CACHE_SECONDS = 30.0


async def _cached_build(request: Request, config: Config, name: str) -> _Preview | None:
    """The preview of ``name``: the build of the watched files' current version when it
    is under ``CACHE_SECONDS`` old or still running (requests arriving meanwhile wait
    for it rather than collecting the sources again), else a new one."""
    cache: dict[str, tuple[str, float, asyncio.Future[_Preview | None]]] | None = getattr(
        request.app.state, "preview_cache", None
    )
    if cache is None:
        cache = request.app.state.preview_cache = {}
    stamp = await run_in_threadpool(version, config)
    hit = cache.get(name)
    if hit and hit[0] == stamp and (not hit[2].done() or time.monotonic() - hit[1] < CACHE_SECONDS):
        build = hit[2]
    else:
        build = asyncio.ensure_future(_build(config, request.app.state.store, name))
        cache[name] = (stamp, time.monotonic(), build)
    # Shielded: a visitor who goes away does not cancel the build the others wait for.
    return await asyncio.shield(build)


async def _build(config: Config, store: Store, name: str) -> _Preview | None:
    pipeline = Pipeline(config, store)
    built = await pipeline.build(name)
    if built.issue is None or built.rendered is None:
        return None
    return _Preview(
        subject=built.rendered.subject,
        number=built.issue.number,
        items=len(built.issue.items),
        notes=built.rendered.notes,
        sample=pipeline.sample(name, built),
    )


def changes(request: Request) -> JSONResponse:
    """``{"version": ...}``: changes whenever schedules.yaml or a template changes."""
    return JSONResponse({"version": _watched_version(request)})


def gallery(request: Request) -> Response:
    """The list of newsletters, each linking to its preview."""
    stamp = _watched_version(request)
    try:
        config = _current_config(request)
    except DigestError as exc:
        return _page(
            "Preview", f"<p class='error'>{_error(request.app.state.config, exc)}</p>", stamp
        )
    links = "".join(
        f"<li><a href='/preview/{html.escape(name)}'>{html.escape(n.title)}</a> ({html.escape(name)})</li>"
        for name, n in config.newsletters.items()
    )
    return _page("Preview", f"<h1>Next issues</h1><ul>{links}</ul>", stamp)


async def newsletter_preview(request: Request) -> Response:
    """One newsletter's next issue: desktop and mobile side by side, text, headers, size."""
    name = request.path_params["name"]
    stamp = await run_in_threadpool(_watched_version, request)
    try:
        config = await run_in_threadpool(_current_config, request)
        preview = await _cached_build(request, config, name)
    except DigestError as exc:
        error = _error(request.app.state.config, exc)
        return _page(name, f"<p class='error'>{error}</p>", stamp)
    if preview is None:
        body = f"<h1>{html.escape(name)}</h1><p>No new articles since the last issue.</p>"
        return _page(name, body, stamp)
    size = len(preview.sample.html.encode("utf-8"))
    budget = config.newsletter(name).max_html_kb * 1024
    headers = preview.sample.eml.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    message = message_from_bytes(preview.sample.eml, policy=policy.default)
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in preview.notes)
    frame = f"/preview/{html.escape(name)}/email.html"
    verdict = "clipped by Gmail" if size > GMAIL_CLIP_BYTES else "not clipped by Gmail"
    body = f"""
<h1>{html.escape(str(message["Subject"]))}</h1>
<p>Issue #{preview.number}, {preview.items} item(s). <a href="/preview">All newsletters</a></p>
{notes}
<p>HTML size: <strong>{size / 1024:.1f} KB</strong> of 102 KB
<meter id="size" min="0" max="{GMAIL_CLIP_BYTES}" low="{budget}" high="{GMAIL_CLIP_BYTES}"
 optimum="0" value="{size}">{size} bytes</meter> ({verdict}; budget {budget // 1024} KB)</p>
<div class="frames">
  <figure><figcaption>Desktop ({DESKTOP_WIDTH} px)</figcaption>
    <iframe title="Desktop preview" src="{frame}" width="{DESKTOP_WIDTH}"></iframe></figure>
  <figure><figcaption>Mobile ({MOBILE_WIDTH} px)</figcaption>
    <iframe title="Mobile preview" src="{frame}" width="{MOBILE_WIDTH}"></iframe></figure>
</div>
<h2>Headers</h2>
<pre id="headers">{html.escape(headers)}</pre>
<h2>Text part</h2>
<pre id="text">{html.escape(preview.sample.text)}</pre>
"""
    return _page(str(message["Subject"]), body, stamp)


async def email_html(request: Request) -> Response:
    """The HTML part of the next issue, filled in for the sample recipient."""
    name = request.path_params["name"]
    try:
        config = await run_in_threadpool(_current_config, request)
        preview = await _cached_build(request, config, name)
    except DigestError as exc:
        error = _error(request.app.state.config, exc)
        return HTMLResponse(f"<p>{error}</p>", status_code=404)
    if preview is None:
        return HTMLResponse("<p>No new articles since the last issue.</p>", status_code=404)
    return HTMLResponse(preview.sample.html)


def _allowed(request: Request) -> Response | None:
    """``None`` when the request may see the gallery; else the answer that refuses it."""
    config: Config = request.app.state.config
    env = config.web.preview.token_env
    if env is None:
        client = request.client.host if request.client else ""
        if is_loopback(config.base_url) and is_loopback(f"http://{client}/"):
            return None
        return Response(
            "The preview gallery is the operator's: set web.preview.token_env in "
            "schedules.yaml to the environment variable holding a token, and send it.\n",
            status_code=403,
            media_type="text/plain",
        )
    token = os.environ.get(env, "")
    if token and hmac.compare_digest(_presented(request).encode(), token.encode()):
        return None
    return Response(
        "The preview gallery needs the operator's token.\n",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="digest preview", charset="UTF-8"'},
        media_type="text/plain",
    )


def _presented(request: Request) -> str:
    """The token a request carries: a bearer token, or the password of HTTP Basic."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


def _operator_only(
    handler: Callable[[Request], Awaitable[Response]] | Callable[[Request], Response],
) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` behind ``_allowed``; a plain ``def`` runs in the thread pool, as
    Starlette would run it."""

    async def guarded(request: Request) -> Response:
        refused = _allowed(request)
        if refused is not None:
            return refused
        if inspect.iscoroutinefunction(handler):
            return await handler(request)
        # Not a coroutine function, so a plain one (mypy cannot narrow by iscoroutinefunction).
        return await run_in_threadpool(cast(Callable[[Request], Response], handler), request)

    return guarded


def routes() -> list[BaseRoute]:
    """The gallery's routes, each for the operator only (see ``_allowed``)."""
    return [
        Route("/preview", _operator_only(gallery)),
        Route("/preview/changes", _operator_only(changes)),
        Route("/preview/{name}", _operator_only(newsletter_preview)),
        Route("/preview/{name}/email.html", _operator_only(email_html)),
    ]
