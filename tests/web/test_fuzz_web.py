"""Property-based tests of the web service's and the importer's outside input: the CSV
importer, the form endpoints (subscribe, unsubscribe, preferences) and each provider's
webhook body. Whatever comes in, no exception escapes (a request gets a status below
500, the importer raises nothing but ``SubscriberError``), and a rejected input
changes nothing in the database.

Run on SQLite and, when ``DIGEST_TEST_DATABASE_URL`` is set, PostgreSQL (which refuses
NUL characters and values longer than a column). The default suite runs a modest
number of examples; ``bench/fuzz/run.py`` runs many more (``DIGEST_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.testclient import TestClient

from digest.config import load_config
from digest.errors import SubscriberError, WebhookRejected
from digest.store import Store
from digest.store.tables import (
    ListRow,
    PreferenceRow,
    SoftBounceRow,
    SubscriberEventRow,
    SubscriberRow,
    SuppressionRow,
    WebhookEventRow,
)
from digest.subscribers_csv import import_csv
from digest.subscriptions import clean_name, email_key
from digest.tokens import make_token
from digest.web import create_app
from digest.webhooks.ses import sns_string_to_sign
from tests.support.sns import sns_certificate
from tests.support.subscribers import SECRET, demo_project

EXAMPLES = int(os.environ.get("DIGEST_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
POSTMARK_TOKEN = "pm-fuzz-token"
MAILGUN_KEY = "mailgun-fuzz-key"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def snapshot(store: Store) -> dict[str, Any]:
    """Everything an input may change."""
    with store.session() as session:
        return {
            "lists": session.scalars(select(ListRow.name).order_by(ListRow.id)).all(),
            "subscribers": session.execute(
                select(
                    SubscriberRow.id,
                    SubscriberRow.email,
                    SubscriberRow.name,
                    SubscriberRow.status,
                    SubscriberRow.attributes,
                    SubscriberRow.updated_at,
                ).order_by(SubscriberRow.id)
            ).all(),
            "events": session.scalars(select(SubscriberEventRow.id)).all(),
            "preferences": session.execute(
                select(PreferenceRow.subscriber_id, PreferenceRow.sections)
            ).all(),
            "suppressions": session.scalars(select(SuppressionRow.email_key)).all(),
            "soft": session.execute(select(SoftBounceRow.email_key, SoftBounceRow.count)).all(),
            "seen": session.scalars(select(WebhookEventRow.event_id)).all(),
        }


def keys_are_lower_case(store: Store) -> None:
    with store.session() as session:
        for email, key in session.execute(select(SubscriberRow.email, SubscriberRow.email_key)):
            assert key == email_key(email) == key.lower()


# -- text that breaks things -------------------------------------------------------------

NASTY = st.sampled_from(
    [
        "",
        "\x00",
        "\r\n",
        "\n",
        "\t",
        ",",
        '"',
        "'",
        "=",
        "+",
        "-",
        "@",
        "é",
        "\u202e",
        "\ud800",
        "\uff10",
        "ANN@EXAMPLE.ORG",
        "ann@example.org",
        "Ann@Example.org",
        "x" * 600,
        '=HYPERLINK("http://evil.example")',
        "a@b",
        "<script>",
        "99999999999999999999",
        "-1",
        "1e999",
        "NaN",
    ]
)
TEXT = st.one_of(NASTY, st.text(max_size=40), st.lists(NASTY, max_size=4).map("".join))
JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


# What a header can carry (no line breaks or NUL: the HTTP client refuses those).
HEADER_TEXT = TEXT.map(lambda text: "".join(c for c in text if c not in "\r\n\x00"))


def maybe(value: Any) -> st.SearchStrategy[Any]:
    """``value`` most of the time, else anything JSON can hold."""
    return st.one_of(st.just(value), st.just(value), JSON)


# -- the CSV importer ----------------------------------------------------------------------

HEADERS = st.sampled_from(
    [
        "email,name",
        "Email,Name,City",
        "\ufeffemail,name,plan",
        "name,email",
        "email",
        "'=cmd,email",
        "e-mail,name",
        "",
        'email,"na\nme"',
    ]
)
CELL = st.one_of(
    TEXT,
    st.sampled_from(["ann@example.org", "ANN@example.org", "bob@example.org", "'-x@example.org"]),
)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


@FUZZ
@given(
    header=HEADERS,
    rows=st.lists(st.lists(CELL, min_size=0, max_size=4), max_size=6),
    raw=st.binary(max_size=40),
    status=st.sampled_from(["active", "pending", "bounced"]),
)
def test_any_csv_imports_or_says_why_and_a_refused_file_changes_nothing(
    store: Store,
    tmp_path: Path,
    header: str,
    rows: list[list[str]],
    raw: bytes,
    status: str,
) -> None:
    lines = [header, *(",".join(row) for row in rows)]
    data = "\n".join(lines).encode("utf-8", "surrogatepass") + raw
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    before = snapshot(store)
    try:
        report = import_csv(store, "fuzz", path, status=status)
    except SubscriberError as exc:
        assert str(exc).strip()
        assert snapshot(store) == before
        return
    assert all(problem.strip() for problem in report.problems)
    keys_are_lower_case(store)
    with store.session() as session:
        names = session.scalars(select(SubscriberRow.name)).all()
    assert all(len(name) <= 200 and name == clean_name(name) for name in names)


# -- the form endpoints --------------------------------------------------------------------


def _project(folder: Path) -> Path:
    (folder / "sns.pem").write_bytes(sns_certificate(SNS_KEY))
    public_der = SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    extra = (
        "web:\n"
        "  subscribe_per_ip: 1000000000\n"
        "  subscribe_per_address: 1000000000\n"
        f"  sendgrid_public_key: {base64.b64encode(public_der).decode()}\n"
        "  sns_certificate: sns.pem\n"
        f"  sns_topic_arns: ['{TOPIC}']\n"
    )
    return demo_project(folder, base_url="http://127.0.0.1:8000", extra_yaml=extra)


@pytest.fixture
def web(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Store]]:
    """The demo's web app, every webhook configured, on ``database_url``."""
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    monkeypatch.setenv("DIGEST_POSTMARK_WEBHOOK_TOKEN", POSTMARK_TOKEN)
    monkeypatch.setenv("DIGEST_MAILGUN_WEBHOOK_SIGNING_KEY", MAILGUN_KEY)
    config = load_config(_project(tmp_path))
    store = Store(database_url)
    import_csv(store, "demo", tmp_path / "examples" / "subscribers.csv")
    with TestClient(create_app(config, store)) as client:
        yield client, store
    store.close()


def _encodable(text: str) -> str:
    # A lone surrogate cannot be put in a form by any client (it would be bytes, which
    # the server decodes with replacement characters).
    return text.encode("utf-8", "replace").decode("utf-8")


def _post(client: TestClient, store: Store, path: str, **request: Any) -> int:
    """POST and check the property: below 500, and nothing changed when refused."""
    if "data" in request:
        request["data"] = {_encodable(k): _encodable(v) for k, v in request["data"].items()}
    before = snapshot(store)
    response = client.post(path, **request)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert snapshot(store) == before, (path, response.status_code)
    keys_are_lower_case(store)
    return response.status_code


FORM_VALUE = st.one_of(TEXT, st.sampled_from(["demo", "One-Click", "save", "resubscribe"]))
BODIES = st.one_of(
    st.dictionaries(
        st.sampled_from(
            ["email", "list", "name", "List-Unsubscribe", "action", "section", "pause_weeks"]
        )
        | TEXT,
        FORM_VALUE,
        max_size=5,
    ).map(lambda form: {"data": form}),
    st.builds(
        lambda body, kind: {"content": body, "headers": {"Content-Type": kind}},
        st.binary(max_size=80),
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=xx",
                "multipart/form-data",
                "text/plain",
                "application/json",
            ]
        ),
    ),
)


@FUZZ
@given(body=BODIES, email=TEXT, list_name=st.sampled_from(["demo", "", "nope"]) | TEXT)
def test_any_subscribe_post_is_answered_below_500(
    web: tuple[TestClient, Store], body: dict[str, Any], email: str, list_name: str
) -> None:
    client, store = web
    if "data" in body:
        body["data"].setdefault("email", email)
        body["data"].setdefault("list", list_name)
    _post(client, store, "/subscribe", **body)


PURPOSE = st.sampled_from(["unsubscribe", "preferences"])


@FUZZ
@given(
    purpose=PURPOSE,
    subscriber=st.integers(min_value=-5, max_value=2**40),
    list_name=st.sampled_from(["demo", "other"]) | TEXT,
    token=st.none() | st.text(max_size=60),
    body=BODIES,
)
def test_any_token_and_form_on_the_subscriber_pages_is_answered_below_500(
    web: tuple[TestClient, Store],
    purpose: str,
    subscriber: int,
    list_name: str,
    token: str | None,
    body: dict[str, Any],
) -> None:
    client, store = web
    if token is None and subscriber > 0:
        # Tokens are only made for list names from schedules.yaml: one line of text.
        name = _encodable(list_name).replace("\x00", "")
        token = make_token(SECRET.encode(), purpose, subscriber % 6 + 1, name)
    path = f"/{purpose}/{quote(token or 'x', safe='', errors='surrogatepass')}"
    assert client.get(path).status_code < 500
    _post(client, store, path, **body)


@FUZZ
@given(number=st.integers(min_value=-(10**30), max_value=10**30), name=TEXT)
def test_any_archive_path_is_answered_below_500(
    web: tuple[TestClient, Store], number: int, name: str
) -> None:
    client, _ = web
    newsletter = quote(name, safe="", errors="surrogatepass") or "weekly"
    assert client.get(f"/archive/{newsletter}/{number}").status_code < 500
    assert client.get(f"/archive/{newsletter}").status_code < 500


# -- webhook bodies, signed and unsigned ----------------------------------------------------

ADDRESS = st.one_of(
    st.sampled_from(
        ["ava.lindqvist@example.org", "AVA.Lindqvist@example.org", "nobody@example.org"]
    ),
    TEXT,
    JSON,
)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


@st.composite
def postmark_requests(draw: st.DrawFn) -> dict[str, Any]:
    record = {
        "RecordType": draw(maybe("Bounce") | st.sampled_from(["SpamComplaint", "Bounce"])),
        "ID": draw(maybe(draw(st.integers(min_value=0, max_value=10**6)))),
        "Type": draw(maybe("HardBounce") | st.sampled_from(["SoftBounce", "Transient"])),
        "Email": draw(ADDRESS),
        "Description": draw(maybe("mailbox not found")),
    }
    body = _json_bytes(draw(maybe(record)))
    token = draw(st.sampled_from([POSTMARK_TOKEN, POSTMARK_TOKEN, "", "wrong", "é"]))
    headers = {"X-Digest-Webhook-Token": token.encode("utf-8")}
    return {"content": body, "headers": headers}


@st.composite
def mailgun_requests(draw: st.DrawFn) -> dict[str, Any]:
    stamp = draw(
        st.sampled_from([str(int(time.time()))] * 3 + ["0", "1" + "0" * 40, "x", "é"]) | TEXT
    )
    token = draw(st.text(min_size=1, max_size=80))
    signature = hmac.new(
        MAILGUN_KEY.encode(),
        (stamp + token).encode("utf-8", "surrogatepass"),
        hashlib.sha256,
    ).hexdigest()
    block = {
        "timestamp": stamp,
        "token": token,
        "signature": draw(maybe(signature) | st.just(signature)),
    }
    data = {
        "event": draw(maybe("failed") | st.just("complained")),
        "severity": draw(maybe("permanent")),
        "recipient": draw(ADDRESS),
        "reason": draw(maybe("bounce")),
        "delivery-status": draw(maybe({"description": "No such mailbox"})),
    }
    body = {"signature": draw(maybe(block)), "event-data": draw(maybe(data))}
    return {"content": _json_bytes(draw(maybe(body)))}


@st.composite
def sendgrid_requests(draw: st.DrawFn) -> dict[str, Any]:
    events = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "event": maybe("bounce") | st.just("spamreport"),
                    "type": maybe("bounce") | st.just("blocked"),
                    "email": ADDRESS,
                    "reason": maybe("550 5.1.1"),
                    "sg_event_id": maybe("id") | TEXT,
                }
            ),
            max_size=3,
        )
    )
    body = _json_bytes(draw(maybe(events)))
    stamp = draw(st.sampled_from([str(int(time.time()))] * 3 + ["0", "x"]) | HEADER_TEXT)
    signed = SENDGRID_KEY.sign(
        stamp.encode("utf-8", "surrogatepass") + body, ec.ECDSA(hashes.SHA256())
    )
    signature = draw(
        st.sampled_from([base64.b64encode(signed).decode()] * 3 + ["", "é", "!!"]) | HEADER_TEXT
    )
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": signature.encode("utf-8", "surrogatepass"),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp.encode("utf-8", "surrogatepass"),
    }
    return {"content": body, "headers": headers}


@st.composite
def ses_requests(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(maybe("Bounce") | st.just("Complaint"))
    recipients = draw(maybe([{"emailAddress": draw(ADDRESS)}]))
    notification = {
        "notificationType": kind,
        "bounce": draw(maybe({"bounceType": "Permanent", "bouncedRecipients": recipients})),
        "complaint": draw(maybe({"complainedRecipients": recipients})),
    }
    message: dict[str, Any] = {
        "Type": draw(maybe("Notification")),
        "MessageId": draw(maybe("m-1") | TEXT),
        "TopicArn": draw(maybe(TOPIC)),
        "Message": draw(maybe(json.dumps(notification)) | st.just(json.dumps(notification))),
        "Timestamp": draw(maybe(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")) | TEXT),
        "SignatureVersion": draw(maybe("1") | st.just("2")),
    }
    if draw(st.booleans()):
        message["Subject"] = draw(TEXT)
    try:
        canonical = sns_string_to_sign(message)
    except (WebhookRejected, UnicodeEncodeError):  # refused before any signature check
        canonical = b""
    algorithm = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    signed = base64.b64encode(SNS_KEY.sign(canonical, padding.PKCS1v15(), algorithm)).decode()
    message["Signature"] = draw(maybe(signed) | st.just(signed))
    return {"content": _json_bytes(draw(maybe(message)))}


REQUESTS = {
    "postmark": postmark_requests(),
    "mailgun": mailgun_requests(),
    "sendgrid": sendgrid_requests(),
    "ses": ses_requests(),
}


@pytest.mark.parametrize("provider", sorted(REQUESTS))
@FUZZ
@given(data=st.data())
def test_any_webhook_body_is_answered_below_500_and_a_refusal_changes_nothing(
    web: tuple[TestClient, Store], provider: str, data: st.DataObject
) -> None:
    client, store = web
    request = data.draw(REQUESTS[provider] | st.builds(lambda b: {"content": b}, st.binary()))
    _post(client, store, f"/webhooks/{provider}", **request)
