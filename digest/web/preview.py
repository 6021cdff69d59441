"""The local preview gallery at ``/preview`` (``digest serve``).

``/preview`` lists the newsletters; ``/preview/{name}`` shows the next issue of one at
desktop and mobile widths side by side, its text part, its headers and a size meter
against Gmail's 102 KB clipping limit. The page polls ``/preview/changes`` (the
modification times of schedules.yaml and the email templates) and reloads itself
when one changes, so editing a template shows its effect at once.

The gallery builds the issue afresh (schedules.yaml re-read, sources collected) when
a watched file changed or its last build is over 30 seconds old, and freezes
nothing: ``digest preview`` is the command that fixes what ``run`` sends.
The gallery's own page uses a little JavaScript; the email never does. Reading
schedules.yaml and the templates' modification times happens in worker threads; the
build itself is the pipeline's (``Pipeline.build``).
"""

from __future__ import annotations

import hashlib
import html
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import Config, load_config
from ..errors import DigestError
from ..pipeline import Pipeline, Sample
from ..render import GMAIL_CLIP_BYTES, default_template_dir
from ..store import Store

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
    cache: dict[str, tuple[str, float, _Preview | None]] | None = getattr(
        request.app.state, "preview_cache", None
    )
    if cache is None:
        cache = request.app.state.preview_cache = {}
    stamp = await run_in_threadpool(version, config)
    hit = cache.get(name)
    if hit and hit[0] == stamp and time.monotonic() - hit[1] < CACHE_SECONDS:
        return hit[2]
    preview = await _build(config, request.app.state.store, name)
    cache[name] = (stamp, time.monotonic(), preview)
    return preview


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
        return _page("Preview", f"<p class='error'>{html.escape(str(exc))}</p>", stamp)
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
        return _page(name, f"<p class='error'>{html.escape(str(exc))}</p>", stamp)
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
        return HTMLResponse(f"<p>{html.escape(str(exc))}</p>", status_code=404)
    if preview is None:
        return HTMLResponse("<p>No new articles since the last issue.</p>", status_code=404)
    return HTMLResponse(preview.sample.html)


def routes() -> list[BaseRoute]:
    """The gallery's routes."""
    return [
        Route("/preview", gallery),
        Route("/preview/changes", changes),
        Route("/preview/{name}", newsletter_preview),
        Route("/preview/{name}/email.html", email_html),
    ]
