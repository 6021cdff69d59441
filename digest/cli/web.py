"""``digest serve``: the web service on uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from ..web import create_app, require_secret
from .app import ConfigOption, app, open_config, say


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on; 127.0.0.1 keeps it private to this machine.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    config: ConfigOption = None,
) -> None:
    """Run the web service: subscribe, unsubscribe and preference pages, archive, webhooks.

    Needs DIGEST_SECRET_KEY in the environment unless base_url is a loopback address
    (the demo).
    """
    cfg, store = open_config(config)
    require_secret(cfg)
    web_app = create_app(cfg, store)
    say(f"Serving on http://{host}:{port} (public address in schedules.yaml: {cfg.base_url})")
    uvicorn.run(web_app, host=host, port=port, log_level="warning")
