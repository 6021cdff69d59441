"""The ``smtp`` backend: a pool of persistent connections.

Up to ``connections`` connections are open at once, each carrying many messages
(up to ``max_messages_per_connection``, then it says QUIT and a fresh one takes
its place). A failed transaction is followed by RSET so the next one starts clean;
after a message is accepted the server has already reset the transaction. A
connection the server dropped is discarded and replaced on the next message.

aiosmtplib connects, says EHLO, does STARTTLS or implicit TLS and logs in. When the
server offers PIPELINING (RFC 2920; Postfix and every large provider do) the
connection is then taken over by ``_Wire``, which sends MAIL, RCPT and DATA in one
write: two round trips a message instead of four. Other servers get aiosmtplib's
``sendmail``, one command at a time.

Replies map onto the error tree (``reply_error``): 2xx sent; 4xx ``TransientError``
(421, 451, 452 and 454 are ``ThrottledError``: the sender slows down); 5xx by their
enhanced code (RFC 3463): mailbox-level ones (5.1.x, 5.2.1) are ``HardBounce``,
policy, relay, authentication and content refusals ``Refusal`` (dispatch stops the
send after a few and suppresses nobody), the rest ``PermanentError``. A server that
cannot be reached or drops the connection is ``Unreachable``. Wrong credentials, a
TLS failure or a server that cannot be reached when the send starts raise ``SendAborted``: nothing is marked sent that was not.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Literal

import aiosmtplib
from pydantic import Field, model_validator

from ..errors import (
    HardBounce,
    PermanentError,
    Refusal,
    SendAborted,
    ThrottledError,
    TransientError,
    Unreachable,
)
from ..models import Message
from .base import Backend, SendingConfig, credential

THROTTLE_CODES = frozenset({421, 451, 452, 454})
#: Basic codes that, with no enhanced code to say otherwise, mean the mailbox is unknown.
BOUNCE_CODES = frozenset({550, 551, 553})
#: Basic codes that refuse the sender's session (authentication required or failed).
REFUSAL_CODES = frozenset({530, 534, 535, 538})
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")
#: Enhanced codes (class 5, subject.detail) that speak of the recipient's mailbox or
#: domain: RFC 3463 X.1.x but the sender's own address (X.1.7, X.1.8), and a disabled
#: mailbox (X.2.1).
_MAILBOX_GONE = re.compile(r"^(1\.(?!7$|8$)\d+|2\.1)$")
#: Enhanced subjects that say nothing about the address: mail system (X.3), network and
#: routing (X.4), protocol (X.5), content (X.6), security and policy (X.7).
_NOT_ABOUT_ADDRESS = frozenset({"3", "4", "5", "6", "7"})
#: What a reply without an enhanced code says when it refuses us, not the address.
_POLICY_WORDS = re.compile(
    r"relay|policy|spam|block|blacklist|denylist|reputation|authenticat|"
    r"not permitted|rejected for policy|dmarc|spf|dkim|rbl",
    re.IGNORECASE,
)


def reply_error(code: int, text: str, what: str) -> Exception:
    """The error for an SMTP reply ``code`` (not 2xx) with ``text``, ``what`` naming the step.

    Status codes decide, not the first digit (RFC 3463): a 5xx is a ``HardBounce`` only
    when its enhanced code speaks of the mailbox (5.1.x but the sender's own address,
    5.2.1) or, without one, when a 550/551/553 does not speak of relaying or policy; a
    refusal of the sender, its relay or authentication, or the content (5.3.x to
    5.7.x, 530/535, such a 550) is a ``Refusal`` that suppresses nobody; the rest
    (a full mailbox, 5.2.2) a plain ``PermanentError`` for this message alone.
    """
    reason = f"{what}: {code} {' '.join(text.split())}".strip()
    if 400 <= code < 500:
        return ThrottledError(reason) if code in THROTTLE_CODES else TransientError(reason)
    enhanced = _ENHANCED.match(text)
    if enhanced and enhanced.group(1) == "5":
        subject, detail = enhanced.group(2, 3)
        if _MAILBOX_GONE.match(f"{int(subject)}.{int(detail)}"):
            return HardBounce(reason)
        if subject in _NOT_ABOUT_ADDRESS or (subject == "1" and detail in ("7", "8")):
            return Refusal(reason)
        return PermanentError(reason)
    if code in REFUSAL_CODES or _POLICY_WORDS.search(text):
        return Refusal(reason)
    if code in BOUNCE_CODES:
        return HardBounce(reason)
    return PermanentError(reason)


#: What a pipelined MAIL, RCPT and DATA are each called in errors, and the first digit
#: of the reply that lets the transaction go on.
_PIPELINED_STEPS = (("sender refused", 2), ("recipient refused", 2), ("message refused", 3))
#: The longest reply kept waiting for its end: far above any real one.
_MAX_REPLY = 64 * 1024
#: What may not appear in an envelope address: it would end or break the command.
_UNSAFE_ADDRESS = re.compile(r"[\x00-\x20<>\x7f]")


def dot_stuffed(data: bytes) -> bytes:
    """``data`` as DATA sends it (RFC 5321 4.5.2): every line ending in CRLF, a dot
    doubled at the start of a line, then the terminating ``.`` line.

    Messages built by ``MessageFactory`` are already CRLF throughout, which three
    counts confirm without copying; anything else is normalised first.
    """
    newlines = data.count(b"\n")
    if data.count(b"\r") != newlines or data.count(b"\r\n") != newlines:
        data = _LINE_ENDS.sub(b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    if b"\n." in data:
        data = data.replace(b"\n.", b"\n..")
    if data.startswith(b"."):
        data = b"." + data
    return data + b".\r\n"


_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Wire(asyncio.Protocol):
    """Our side of a connection aiosmtplib opened, secured and logged in on, taken over
    once the server's EHLO offers PIPELINING (RFC 2920).

    aiosmtplib waits for each reply before the next command: four round trips a
    message. Here ``transact`` writes MAIL, RCPT and DATA at once, reads their three
    replies, then sends the body: two. Replies are parsed as they arrive and queued,
    so several in one packet are all kept. A lost connection raises
    ``ConnectionError``, a reply slower than ``timeout`` ``TimeoutError`` (and closes
    the connection, whose state is then unknown). A 421 closes it too.
    """

    def __init__(self, client: aiosmtplib.SMTP, timeout: float) -> None:
        transport = client.transport
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.timeout = timeout
        self.size = client.supports_extension("size")
        self.smtputf8 = client.supports_extension("smtputf8")
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._lines: list[str] = []
        self._replies: deque[tuple[int, str]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._paused: asyncio.Future[None] | None = None
        self._lost = False
        transport.set_protocol(self)

    @property
    def is_connected(self) -> bool:
        return not self._lost and not self.transport.is_closing()

    def close(self) -> None:
        self.transport.close()

    # -- asyncio.Protocol ------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", start)) != -1:
            line = bytes(buffer[start:end]).rstrip(b"\r")
            start = end + 1
            code = line[:3]
            if not code.isdigit() or line[3:4] not in (b"", b" ", b"-"):
                self._fail()
                return
            self._lines.append(line[4:].decode("utf-8", "replace").strip())
            if line[3:4] != b"-":
                self._replies.append((int(code), "\n".join(self._lines)))
                self._lines = []
        del buffer[:start]
        if len(buffer) > _MAX_REPLY:
            self._fail()
            return
        self._wake()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake()
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)

    def pause_writing(self) -> None:
        self._paused = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)
        self._paused = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self) -> None:
        # A reply that is not SMTP: nothing more on this connection can be trusted.
        self._replies.clear()
        self.transport.close()
        self._lost = True
        self._wake()

    # -- SMTP ------------------------------------------------------------------

    async def reply(self) -> tuple[int, str]:
        """The next reply: its code and its text (the lines of a multi-line one joined by "\\n")."""
        if not self._replies:
            if self._lost:
                raise ConnectionError("the connection was closed")
            waiter = self._waiter = self._loop.create_future()
            timer = self._loop.call_later(self.timeout, _expire, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            if not self._replies:
                raise ConnectionError("the connection was closed")
        return self._replies.popleft()

    def write(self, data: bytes) -> None:
        if not self.is_connected:
            raise ConnectionError("the connection was closed")
        self.transport.write(data)

    async def _drain(self) -> None:
        if self._paused is not None:
            await asyncio.wait_for(self._paused, self.timeout)
        if self._lost:
            raise ConnectionError("the connection was closed")

    async def transact(self, sender: str, recipient: str, data: bytes, ready: bool) -> str:
        """Send one message to one recipient; the text of the server's final 2xx reply.

        A refusal raises its ``reply_error`` after the transaction was reset (RSET),
        so the connection can carry the next message (unless it was a 421). ``ready``:
        ``data`` needs no dot-stuffing (``Message.smtp_ready``).
        """
        options = f" SIZE={len(data)}" if self.size else ""
        if not (sender.isascii() and recipient.isascii()):
            if not self.smtputf8:
                raise PermanentError(
                    f"{recipient} is an internationalised address and the server does not "
                    "offer SMTPUTF8."
                )
            options += " SMTPUTF8"
        self.write(f"MAIL FROM:<{sender}>{options}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode())
        try:
            failure: Exception | None = None
            go_ahead = False
            for what, wanted in _PIPELINED_STEPS:
                code, text = await self.reply()
                if code == 421:
                    raise self._closing(failure or reply_error(code, text, what))
                if code // 100 == wanted:
                    go_ahead = wanted == 3
                elif failure is None:
                    failure = reply_error(code, text, what)
            if failure is not None:
                if go_ahead:
                    # The server took DATA although MAIL or RCPT failed: end it empty.
                    self.write(b".\r\n")
                    await self.reply()
                self.write(b"RSET\r\n")
                await self.reply()
                raise failure
            self.write(data + b".\r\n" if ready else dot_stuffed(data))
            await self._drain()
            code, text = await self.reply()
            if code == 421:
                raise self._closing(reply_error(code, text, "message refused"))
            if code // 100 != 2:
                # The final reply ends the transaction whatever it says: no RSET needed.
                raise reply_error(code, text, "message refused")
            return text
        except TimeoutError:
            self.transport.close()
            raise

    def _closing(self, error: Exception) -> Exception:
        # 421: the server is closing this connection; a fresh one takes its place.
        self.transport.close()
        return error

    async def quit(self) -> None:
        try:
            self.write(b"QUIT\r\n")
            await self.reply()
        finally:
            self.transport.close()


def _is_tls_failure(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass(slots=True)
class _Connection:
    """A pooled connection: aiosmtplib's ``client``, or the ``wire`` taken over from it."""

    client: aiosmtplib.SMTP | None
    wire: _Wire | None = None
    sent: int = 0

    @property
    def is_connected(self) -> bool:
        if self.wire is not None:
            return self.wire.is_connected
        return self.client is not None and self.client.is_connected

    def close(self) -> None:
        if self.wire is not None:
            self.wire.close()
        elif self.client is not None:
            self.client.close()


class SmtpBackendConfig(SendingConfig):
    """An SMTP server: a pool of ``connections`` persistent connections.

    ``security``: ``tls`` (implicit TLS, usually port 465), ``starttls`` (upgrade, 587)
    or ``none`` (a relay on a trusted network). ``username_env``/``password_env`` name
    the environment variables that hold the login; both or neither.
    """

    type: Literal["smtp"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    max_messages_per_connection: int = Field(100, ge=1)
    validate_certs: bool = True
    ca_file: str | None = None

    @model_validator(mode="after")
    def _login_pair(self) -> SmtpBackendConfig:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("set both 'username_env' and 'password_env', or neither")
        return self


class SmtpBackend(Backend):
    """Sends through the SMTP server of ``config`` over a pool of connections."""

    # Each claim costs a ledger transaction; 50 keeps that well under the time the
    # messages take, and a crash can send at most connections x 50 twice.
    dispatch_batch = 50
    config_model = SmtpBackendConfig
    config: SmtpBackendConfig

    def __init__(self, name: str, config: SmtpBackendConfig) -> None:
        super().__init__(name, config)
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(config.connections)
        self._login: tuple[str, str] | None = None
        self._tls: ssl.SSLContext | None = None
        #: Messages accepted through a pipelined exchange (the rest went through aiosmtplib).
        self.pipelined = 0

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    async def open(self) -> None:
        """Check the server, TLS and login now with a first connection, kept for sending."""
        if self.config.username_env:
            self._login = (
                credential(self.name, self.config.username_env, "SMTP user name"),
                credential(self.name, self.config.password_env, "SMTP password"),
            )
        if self.config.security != "none":
            self._tls = ssl.create_default_context(cafile=self.config.ca_file)
            if not self.config.validate_certs:
                self._tls.check_hostname = False
                self._tls.verify_mode = ssl.CERT_NONE
        try:
            self._idle.append(await self._connect())
        except TransientError as exc:
            raise SendAborted(
                f"Cannot start sending through {self.where}: {exc} Check backends.{self.name} "
                "and that the server is up; nothing was sent."
            ) from None

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(conn) for conn in idle))

    async def _connect(self) -> _Connection:
        """A new logged-in connection; ``SendAborted`` for what no retry can fix."""
        security = self.config.security
        client = aiosmtplib.SMTP(
            hostname=self.config.host,
            port=self.config.port,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            tls_context=self._tls,
            timeout=self.config.timeout,
        )
        try:
            await client.connect()
            if self._login:
                await client.login(*self._login)
            if client.is_ehlo_or_helo_needed:
                await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            # No EHLO: sendmail falls back to HELO, and there is no PIPELINING to use.
            return _Connection(client)
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise SendAborted(
                f"The SMTP server {self.where} refused the login ({exc.code} {exc.message}). "
                f"Check ${self.config.username_env} and ${self.config.password_env}; nothing "
                "more was sent."
            ) from None
        except aiosmtplib.SMTPConnectResponseError as exc:
            client.close()
            raise reply_error(
                exc.code, exc.message, f"{self.where} refused the connection"
            ) from None
        except aiosmtplib.SMTPTimeoutError:
            client.close()
            raise TransientError(
                f"{self.where} did not answer within {self.config.timeout:g}s."
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            if _is_tls_failure(exc) or "STARTTLS" in str(exc):
                raise SendAborted(
                    f"TLS with the SMTP server {self.where} failed ({exc}). Check "
                    f"backends.{self.name}.security ('{security}'), the port and the "
                    "certificate; nothing more was sent."
                ) from None
            raise Unreachable(f"Cannot connect to {self.where}: {exc}") from None
        if client.supports_extension("pipelining"):
            return _Connection(None, _Wire(client, self.config.timeout))
        return _Connection(client)

    async def _quit(self, conn: _Connection) -> None:
        try:
            if conn.wire is not None:
                await conn.wire.quit()
            elif conn.client is not None:
                await conn.client.quit(timeout=min(self.config.timeout, 5.0))
        except (aiosmtplib.SMTPException, OSError):
            conn.close()

    async def _acquire(self) -> _Connection:
        await self._slots.acquire()
        while self._idle:
            conn = self._idle.pop()
            if conn.is_connected:
                return conn
            conn.close()
        try:
            return await self._connect()
        except BaseException:
            self._slots.release()
            raise

    async def _release(self, conn: _Connection, *, reusable: bool) -> None:
        try:
            if reusable and conn.is_connected:
                if conn.sent < self.config.max_messages_per_connection:
                    self._idle.append(conn)
                    return
                await self._quit(conn)
            else:
                conn.close()
        finally:
            self._slots.release()

    async def deliver(self, message: Message) -> str:
        if _UNSAFE_ADDRESS.search(message.recipient) or "@" not in message.recipient:
            raise PermanentError(f"'{message.recipient!r}' is not a usable email address.")
        conn = await self._acquire()
        reusable = False
        try:
            if conn.wire is not None:
                # The wire closes the connection itself when it cannot carry on.
                reusable = True
                reply = await conn.wire.transact(
                    message.sender, message.recipient, message.data, message.smtp_ready
                )
                conn.sent += 1
                self.pipelined += 1
                return reply.strip()
            assert conn.client is not None
            _, reply = await conn.client.sendmail(message.sender, [message.recipient], message.data)
            conn.sent += 1
            reusable = True
            return reply.strip()
        except aiosmtplib.SMTPRecipientsRefused as exc:
            reusable = True
            refused = exc.recipients[0]
            raise reply_error(refused.code, refused.message, "recipient refused") from None
        except aiosmtplib.SMTPSenderRefused as exc:
            reusable = exc.code != 421
            raise reply_error(exc.code, exc.message, "sender refused") from None
        except aiosmtplib.SMTPResponseException as exc:
            # 421 means the server is closing this connection.
            reusable = exc.code != 421
            raise reply_error(exc.code, exc.message, "message refused") from None
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            reusable = False
            raise TransientError(
                f"{self.where} did not answer within {self.config.timeout:g}s."
            ) from None
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
            reusable = False
            raise Unreachable(f"{self.where} dropped the connection ({exc}).") from None
        finally:
            await self._release(conn, reusable=reusable)
