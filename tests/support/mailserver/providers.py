"""A local stand-in for the providers' HTTP APIs (Starlette on uvicorn, loopback).

Each route checks a request the way the provider documents it (auth header, JSON
shape, batch limits) and answers in the provider's documented format, including
per-recipient rejections. ``script`` queues canned answers (429 with Retry-After,
5xx, HTML instead of JSON) that are served before the normal behaviour.

SendGrid and Mailgun also do what their batch APIs do with a batch: fill in each
recipient's values (SendGrid ``substitutions``, Mailgun ``recipient-variables``)
and keep what each recipient would get in ``received``; an address containing
``rejected`` (or without a dot in its domain) is refused the way each provider
refuses one, failing the whole request.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import getaddresses
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import free_port

KEY = "test-key-123"
INACTIVE = "inactive"  # a To containing this is "inactive" at Postmark
REJECTED = "rejected"  # an address containing this is refused by SendGrid and Mailgun
SENDGRID_RESERVED = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}
MAILGUN_VARIABLE = re.compile(r"%recipient\.([^%]+)%")


def _fill_variables(template: str, values: dict[str, str]) -> str:
    """``template`` with each ``%recipient.NAME%`` replaced by ``values[NAME]``."""
    return MAILGUN_VARIABLE.sub(lambda m: values[m.group(1)], template)


def refused_address(address: str) -> bool:
    local, _, domain = address.rpartition("@")
    return not local or "." not in domain or REJECTED in address


@dataclass
class ProviderState:
    script: list[Response] = field(default_factory=list)
    delivered: Counter[str] = field(default_factory=Counter)
    requests: list[tuple[str, Any]] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    idempotent: dict[str, Any] = field(default_factory=dict)
    mime: list[bytes] = field(default_factory=list)
    # address -> what the recipient got from a batch: subject, text, html, headers, to
    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    # a placeholder left in a delivered body means a value was not filled in
    leftover: re.Pattern[str] = re.compile(r"@@")


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
            # Postmark reads To as a comma-separated list of addresses.
            for _, address in getaddresses([item["To"]]):
                state.delivered[address] += 1
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
        if [c.get("type") for c in content][:1] != ["text/plain"] or not all(
            isinstance(c.get("value"), str) and c["value"] for c in content
        ):
            return _bad(
                state,
                "sendgrid: content",
                400,
                {"errors": [{"message": "text/plain first, no empty value", "field": "content"}]},
            )
        errors = sendgrid_errors(body, people)
        if errors:
            if any(REJECTED not in e["message"] for e in errors):
                state.problems.extend(e["message"] for e in errors)
            return JSONResponse({"errors": errors}, 400)
        state.batch_sizes.append(len(people))
        for person in people:
            substitutions = person.get("substitutions", {})
            filled = {}
            for c in content:
                value = c["value"]
                for tag, replacement in substitutions.items():
                    value = value.replace(tag, replacement)
                filled[c["type"]] = value
            if any(state.leftover.search(v) for v in filled.values()):
                state.problems.append(f"sendgrid: a placeholder left for {person['to']}")
            to = person["to"][0]
            state.delivered[to["email"]] += 1
            state.received[to["email"]] = {
                "subject": body["subject"],
                "text": filled.get("text/plain", ""),
                "html": filled.get("text/html", ""),
                "headers": {**body.get("headers", {}), **person.get("headers", {})},
                "to": to,
            }
            state.requests.append(("sendgrid", {**body, "personalizations": [person]}))
        return Response(status_code=202, headers={"X-Message-Id": uuid.uuid4().hex})

    def sendgrid_errors(body: dict[str, Any], people: list[Any]) -> list[dict[str, Any]]:
        """mail/send's validation, in its documented error format (``field`` says where)."""
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        keys: set[str] | None = None
        for name in body.get("headers", {}):
            if name.lower() in SENDGRID_RESERVED:
                errors.append({"message": f"reserved header {name}", "field": "headers"})
        recipients = 0
        for n, person in enumerate(people):
            to = person.get("to")
            if not isinstance(to, list) or len(to) != 1 or not to[0].get("email"):
                errors.append(
                    {"message": "one to per message", "field": f"personalizations.{n}.to"}
                )
                continue
            recipients += len(to)
            address, name = to[0]["email"], to[0].get("name", "")
            if refused_address(address):
                errors.append(
                    {
                        "message": f"Does not contain a valid address ({REJECTED}).",
                        "field": f"personalizations.{n}.to.0.email",
                    }
                )
            if address.lower() in seen:
                errors.append(
                    {"message": f"{address} more than once", "field": f"personalizations.{n}"}
                )
            seen.add(address.lower())
            if re.search("[,;]", name) and not (name.startswith('"') and name.endswith('"')):
                errors.append(
                    {
                        "message": "to.name cannot hold , or ;",
                        "field": f"personalizations.{n}.to.0.name",
                    }
                )
            headers = person.get("headers", {})
            if any(h.lower() in SENDGRID_RESERVED for h in headers) or not all(
                isinstance(v, str) for v in headers.values()
            ):
                errors.append({"message": "bad headers", "field": f"personalizations.{n}.headers"})
            substitutions = person.get("substitutions", {})
            size = sum(len(k.encode()) + len(v.encode()) for k, v in substitutions.items())
            if size > 10_000 or not all(isinstance(v, str) for v in substitutions.values()):
                errors.append(
                    {
                        "message": "substitutions over 10,000 bytes",
                        "field": f"personalizations.{n}.substitutions",
                    }
                )
            if keys is not None and set(substitutions) != keys and substitutions:
                errors.append(
                    {
                        "message": "substitution keys differ",
                        "field": f"personalizations.{n}.substitutions",
                    }
                )
            keys = set(substitutions) if substitutions else keys
        if recipients > 1000:
            errors.append({"message": "1000 recipients at most", "field": "personalizations"})
        return errors

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

    async def mailgun_batch(request: Request) -> Response:
        if (canned := scripted()) is not None:
            return canned
        auth = request.headers.get("authorization", "")
        if auth != "Basic " + base64.b64encode(f"api:{KEY}".encode()).decode():
            return Response("Forbidden", 401, media_type="text/plain")
        form = await request.form(max_fields=2000)  # 1,000 "to" and the rest
        fields = {key: str(value) for key, value in form.multi_items() if key != "to"}
        to = [str(value) for value in form.getlist("to")]
        if not fields.get("from") or not fields.get("subject") or not to:
            return _bad(
                state, "mailgun: form", 400, {"message": "from, to and subject are required"}
            )
        if not fields.get("text") and not fields.get("html"):
            return _bad(
                state, "mailgun: body", 400, {"message": "Need at least one of 'text' or 'html'"}
            )
        if len(to) > 1000:
            return _bad(state, "mailgun: batch size", 400, {"message": "Too many recipients"})
        recipients = []
        for value in to:
            parsed = getaddresses([value])
            if len(parsed) != 1 or refused_address(parsed[0][1]):
                return JSONResponse(
                    {
                        "message": "'to' parameter is not a valid address. please check documentation"
                    },
                    400,
                )
            recipients.append((str(make_header(decode_header(parsed[0][0]))), parsed[0][1]))
        try:
            variables = json.loads(fields.get("recipient-variables", ""))
        except ValueError:
            return _bad(state, "mailgun: recipient-variables", 400, {"message": "invalid JSON"})
        if set(variables) != {address for _, address in recipients}:
            return _bad(
                state,
                "mailgun: variables keys",
                400,
                {"message": "recipient-variables keys differ from to"},
            )
        templated = {
            k: v
            for k, v in fields.items()
            if k in ("subject", "text", "html") or k.startswith("h:")
        }
        used = {key for value in templated.values() for key in MAILGUN_VARIABLE.findall(value)}
        for _, address in recipients:
            if missing := used - set(variables[address]):
                return _bad(
                    state,
                    f"mailgun: {address} has no {missing}",
                    400,
                    {"message": "missing variables"},
                )
        state.batch_sizes.append(len(to))
        for name, address in recipients:
            values = variables[address]
            filled = {k: _fill_variables(value, values) for k, value in templated.items()}
            state.delivered[address] += 1
            state.received[address] = {
                "subject": filled["subject"],
                "text": filled.get("text", ""),
                "html": filled.get("html", ""),
                "headers": {k[2:]: v for k, v in filled.items() if k.startswith("h:")},
                "to": {"email": address, "name": name},
            }
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
                for _, address in getaddresses([to]):
                    state.delivered[address] += 1
        answer = {"data": [{"id": str(uuid.uuid4())} for _ in body]}
        if key:
            state.idempotent[key] = answer
        return JSONResponse(answer)

    return Starlette(
        routes=[
            Route("/email/batch", postmark, methods=["POST"]),
            Route("/v3/mail/send", sendgrid, methods=["POST"]),
            Route("/v3/{domain}/messages.mime", mailgun, methods=["POST"]),
            Route("/v3/{domain}/messages", mailgun_batch, methods=["POST"]),
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
