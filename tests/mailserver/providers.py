"""A local stand-in for the providers' HTTP APIs (Starlette on uvicorn, loopback).

Each route checks a request the way the provider documents it (auth header, JSON
shape, batch limits) and answers in the provider's documented format, including
per-recipient rejections. ``script`` queues canned answers (429 with Retry-After,
5xx, HTML instead of JSON) that are served before the normal behaviour.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .servers import free_port

KEY = "test-key-123"
INACTIVE = "inactive"  # a To containing this is "inactive" at Postmark


@dataclass
class ProviderState:
    script: list[Response] = field(default_factory=list)
    delivered: Counter[str] = field(default_factory=Counter)
    requests: list[tuple[str, Any]] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    idempotent: dict[str, Any] = field(default_factory=dict)
    mime: list[bytes] = field(default_factory=list)


def _bad(state: ProviderState, problem: str, status: int, body: Any) -> JSONResponse:
    state.problems.append(problem)
    return JSONResponse(body, status)


def make_app(state: ProviderState) -> Starlette:
    def scripted() -> Response | None:
        return state.script.pop(0) if state.script else None

    async def postmark(request: Request) -> Response:
        if (canned := scripted()) is not None:
            return canned
        if request.headers.get("x-postmark-server-token") != KEY:
            return JSONResponse(
                {"ErrorCode": 10, "Message": "The Server Token you provided was invalid."}, 401
            )
        if "application/json" not in request.headers.get("accept", ""):
            return _bad(state, "postmark: Accept", 422, {"ErrorCode": 300, "Message": "Accept"})
        body = await request.json()
        if not isinstance(body, list) or not 1 <= len(body) <= 500:
            return _bad(
                state, "postmark: batch size", 422, {"ErrorCode": 300, "Message": "batch of 1-500"}
            )
        state.batch_sizes.append(len(body))
        results = []
        for item in body:
            missing = {"From", "To", "Subject", "MessageStream"} - set(item)
            if missing or not (item.get("HtmlBody") or item.get("TextBody")):
                state.problems.append(f"postmark: missing {missing}")
                results.append({"ErrorCode": 300, "Message": "Invalid email request"})
                continue
            state.requests.append(("postmark", item))
            if INACTIVE in item["To"]:
                results.append(
                    {
                        "ErrorCode": 406,
                        "Message": "You tried to send to a recipient that has been marked as inactive.",
                    }
                )
                continue
            state.delivered[item["To"]] += 1
            results.append(
                {
                    "ErrorCode": 0,
                    "Message": "OK",
                    "MessageID": str(uuid.uuid4()),
                    "SubmittedAt": "2026-11-22T07:00:00Z",
                    "To": item["To"],
                }
            )
        return JSONResponse(results)

    async def sendgrid(request: Request) -> Response:
        if (canned := scripted()) is not None:
            return canned
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": "The provided authorization grant is invalid, expired, or revoked",
                            "field": None,
                            "help": None,
                        }
                    ]
                },
                401,
            )
        body = await request.json()
        people = body.get("personalizations")
        if not isinstance(people, list) or not 1 <= len(people) <= 1000:
            return _bad(
                state,
                "sendgrid: personalizations",
                400,
                {"errors": [{"message": "personalizations 1-1000", "field": "personalizations"}]},
            )
        content = body.get("content") or []
        if not body.get("from", {}).get("email") or not body.get("subject"):
            return _bad(
                state,
                "sendgrid: from/subject",
                400,
                {"errors": [{"message": "from and subject are required"}]},
            )
        if [c.get("type") for c in content][:1] != ["text/plain"]:
            return _bad(
                state,
                "sendgrid: content order",
                400,
                {"errors": [{"message": "text/plain must come first", "field": "content"}]},
            )
        state.batch_sizes.append(len(people))
        for person in people:
            for to in person["to"]:
                state.delivered[to["email"]] += 1
            state.requests.append(("sendgrid", {**body, "personalizations": [person]}))
        return Response(status_code=202, headers={"X-Message-Id": uuid.uuid4().hex})

    async def mailgun(request: Request) -> Response:
        if (canned := scripted()) is not None:
            return canned
        auth = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"api:{KEY}".encode()).decode()
        if auth != expected:
            return Response("Forbidden", 401, media_type="text/plain")
        form = await request.form()
        upload = form.get("message")
        to = form.get("to")
        if upload is None or isinstance(upload, str) or not to:
            return _bad(state, "mailgun: form", 400, {"message": "'to' and 'message' are required"})
        data = await upload.read()
        parsed = message_from_bytes(data, policy=policy.default)
        if not parsed["From"]:
            return JSONResponse({"message": "'from' parameter is missing"}, 400)
        state.mime.append(data)
        state.delivered[str(to)] += 1
        state.batch_sizes.append(1)
        return JSONResponse(
            {
                "id": f"<{uuid.uuid4().hex}@{request.path_params['domain']}>",
                "message": "Queued. Thank you.",
            }
        )

    async def resend(request: Request) -> Response:
        if (canned := scripted()) is not None:
            return canned
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return JSONResponse(
                {
                    "statusCode": 401,
                    "name": "missing_api_key",
                    "message": "Missing API key in the authorization header.",
                },
                401,
            )
        key = request.headers.get("idempotency-key")
        if key and key in state.idempotent:
            return JSONResponse(state.idempotent[key])
        body = await request.json()
        if not isinstance(body, list) or not 1 <= len(body) <= 100:
            return _bad(
                state,
                "resend: batch size",
                422,
                {"statusCode": 422, "name": "validation_error", "message": "batch of 1-100"},
            )
        for item in body:
            if (
                not {"from", "to", "subject"} <= set(item)
                or not isinstance(item["to"], list)
                or len(item["to"]) > 50
            ):
                return _bad(
                    state,
                    "resend: item",
                    422,
                    {
                        "statusCode": 422,
                        "name": "validation_error",
                        "message": "from, to (<=50) and subject are required",
                    },
                )
        state.batch_sizes.append(len(body))
        for item in body:
            state.requests.append(("resend", item))
            for to in item["to"]:
                state.delivered[to] += 1
        answer = {"data": [{"id": str(uuid.uuid4())} for _ in body]}
        if key:
            state.idempotent[key] = answer
        return JSONResponse(answer)

    return Starlette(
        routes=[
            Route("/email/batch", postmark, methods=["POST"]),
            Route("/v3/mail/send", sendgrid, methods=["POST"]),
            Route("/v3/{domain}/messages.mime", mailgun, methods=["POST"]),
            Route("/emails/batch", resend, methods=["POST"]),
        ]
    )


class ProviderServer:
    """Context manager: the fake provider APIs on ``http://127.0.0.1:port``."""

    def __init__(self) -> None:
        self.state = ProviderState()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            make_app(self.state), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ProviderServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the fake provider server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
