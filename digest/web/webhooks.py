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
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import Config
from ..errors import WebhookRejected
from ..store import Store
from ..store.tables import WebhookEventRow, utcnow
from ..subscribers import record_bounce
from ..webhooks import PROVIDERS, Parsed

log = logging.getLogger("digest.web.webhooks")

KEEP_IDS_DAYS = 30


def apply(store: Store, provider: str, parsed: Parsed, soft_limit: int) -> list[str]:
    """Record the request's ids and apply its events in one transaction; ``WebhookRejected``
    (409) when any id was seen before, in which case nothing changes."""
    try:
        with store.session() as session:
            seen = session.scalar(
                select(WebhookEventRow.event_id).where(
                    WebhookEventRow.provider == provider, WebhookEventRow.event_id.in_(parsed.once)
                )
            )
            if seen is not None:
                raise WebhookRejected(409, f"already processed ({seen}): a replay")
            # Signed providers' replays are stopped by the timestamp window long before this;
            # the ids are kept a while longer for Postmark, which signs no timestamp.
            session.execute(
                delete(WebhookEventRow).where(
                    WebhookEventRow.received_at < utcnow() - timedelta(days=KEEP_IDS_DAYS)
                )
            )
            session.add_all(
                WebhookEventRow(provider=provider, event_id=i) for i in set(parsed.once)
            )
            session.flush()
            return [
                record_bounce(
                    session,
                    event.email,
                    event.kind,
                    f"webhook:{provider}",
                    event.detail,
                    soft_limit=soft_limit,
                )
                for event in parsed.events
            ]
    except IntegrityError:
        raise WebhookRejected(409, "already processed (concurrently): a replay") from None


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
        outcomes = apply(request.app.state.store, provider, parsed, config.web.soft_bounce_limit)
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
