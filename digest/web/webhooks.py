"""Provider webhooks for bounces and complaints: ``POST /webhooks/<provider>``.

Each provider's request is authenticated the way that provider signs it, before
anything is read from it, by its parser in ``digest.webhooks.<provider>`` (whose
docstring says how). Signed timestamps older than ``web.webhook_max_age_seconds``
are refused, and each provider event id is accepted once: a replay is refused with
409. A refused request gets a 4xx, is logged, and changes nothing. Hard bounces and
complaints suppress the address on every list; soft bounces are counted and
suppress it at ``web.soft_bounce_limit``.
"""

from __future__ import annotations

import logging
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import Config
from ..errors import WebhookRejected
from ..store import Store
from ..subscriptions import apply_provider_events, clean_text
from ..webhooks import PROVIDERS, Parsed

log = logging.getLogger("digest.web.webhooks")


def apply(store: Store, provider: str, parsed: Parsed, soft_limit: int) -> list[str]:
    """Apply the request's events and record its ids (``subscriptions.apply_provider_events``);
    ``WebhookRejected`` (409) when any id was seen before, in which case nothing changes.
    Reads and writes the database: call it from a worker thread."""
    applied = apply_provider_events(
        store,
        provider,
        parsed.once,
        # A provider's free text is kept as one line without control characters.
        [(event.email, event.kind, clean_text(event.detail, 500)) for event in parsed.events],
        soft_limit=soft_limit,
    )
    if applied.replay_of is not None:
        raise WebhookRejected(409, f"already processed ({applied.replay_of}): a replay")
    return list(applied.outcomes)


async def webhook(request: Request) -> Response:
    """``POST /webhooks/<provider>``."""
    provider = request.path_params["provider"]
    parse = PROVIDERS.get(provider)
    if parse is None:
        return PlainTextResponse(
            f"Unknown provider; use one of: {', '.join(PROVIDERS)}.\n", status_code=404
        )
    config: Config = request.app.state.config
    body = await request.body()
    try:
        parsed = parse(request, body, request.app.state.webhook_keys, time.time())
        outcomes = await run_in_threadpool(
            apply, request.app.state.store, provider, parsed, config.web.soft_bounce_limit
        )
    except WebhookRejected as exc:
        log.warning(
            "webhook %s from %s refused (%d): %s",
            provider,
            request.client.host if request.client else "?",
            exc.status,
            exc.reason,
        )
        return PlainTextResponse(f"Refused: {exc.reason}.\n", status_code=exc.status)
    for event, outcome in zip(parsed.events, outcomes, strict=True):
        log.info("webhook %s: %s %s -> %s", provider, event.kind, event.email, outcome)
    return JSONResponse({"events": len(parsed.events), "outcomes": outcomes})


def routes() -> list[BaseRoute]:
    """The webhook route."""
    return [Route("/webhooks/{provider}", webhook, methods=["POST"])]
