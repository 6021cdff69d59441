"""The ``smtp`` backend: a pool of persistent aiosmtplib connections.

Up to ``connections`` connections are open at once, each carrying many messages
(up to ``max_messages_per_connection``, then it says QUIT and a fresh one takes
its place). A failed transaction is followed by RSET so the next one starts clean;
after a message is accepted the server has already reset the transaction. A
connection the server dropped is discarded and replaced on the next message.

Replies map onto the error tree: 2xx sent; 4xx ``TransientError`` (421, 451, 452
and 454 are ``ThrottledError``: the sender slows down); 5xx ``PermanentError``
(550/551/553 and enhanced codes 5.1.x are ``HardBounce``: the address does not
exist). Wrong credentials, a TLS failure or a server that cannot be reached when
the send starts raise ``SendAborted``: nothing is marked sent that was not.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass

import aiosmtplib

from ..config import SmtpBackendConfig
from ..errors import (
    HardBounce,
    PermanentError,
    SendAborted,
    ThrottledError,
    TransientError,
)
from ..models import Message
from .base import Backend, credential

THROTTLE_CODES = frozenset({421, 451, 452, 454})
BOUNCE_CODES = frozenset({550, 551, 553})
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})")


def reply_error(code: int, text: str, what: str) -> Exception:
    """The error for an SMTP reply ``code`` (not 2xx) with ``text``, ``what`` naming the step."""
    reason = f"{what}: {code} {' '.join(text.split())}".strip()
    if 400 <= code < 500:
        return ThrottledError(reason) if code in THROTTLE_CODES else TransientError(reason)
    enhanced = _ENHANCED.match(text)
    if code in BOUNCE_CODES or (enhanced and enhanced.group(1, 2) == ("5", "1")):
        return HardBounce(reason)
    return PermanentError(reason)


def _is_tls_failure(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


@dataclass(slots=True)
class _Connection:
    client: aiosmtplib.SMTP
    sent: int = 0


class SmtpBackend(Backend):
    """Sends through the SMTP server of ``config`` over a pool of connections."""

    type = "smtp"
    dispatch_batch = 20
    config: SmtpBackendConfig

    def __init__(self, name: str, config: SmtpBackendConfig) -> None:
        super().__init__(name, config)
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(config.connections)
        self._login: tuple[str, str] | None = None
        self._tls: ssl.SSLContext | None = None

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
            raise TransientError(f"Cannot connect to {self.where}: {exc}") from None
        return _Connection(client)

    async def _quit(self, conn: _Connection) -> None:
        try:
            await conn.client.quit(timeout=min(self.config.timeout, 5.0))
        except (aiosmtplib.SMTPException, OSError):
            conn.client.close()

    async def _acquire(self) -> _Connection:
        await self._slots.acquire()
        while self._idle:
            conn = self._idle.pop()
            if conn.client.is_connected:
                return conn
            conn.client.close()
        try:
            return await self._connect()
        except BaseException:
            self._slots.release()
            raise

    async def _release(self, conn: _Connection, *, reusable: bool) -> None:
        try:
            if reusable and conn.client.is_connected:
                if conn.sent < self.config.max_messages_per_connection:
                    self._idle.append(conn)
                    return
                await self._quit(conn)
            else:
                conn.client.close()
        finally:
            self._slots.release()

    async def deliver(self, message: Message) -> str:
        if any(c in message.recipient for c in "\r\n") or "@" not in message.recipient:
            raise PermanentError(f"'{message.recipient!r}' is not a usable email address.")
        conn = await self._acquire()
        reusable = False
        try:
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
        except aiosmtplib.SMTPTimeoutError:
            raise TransientError(
                f"{self.where} did not answer within {self.config.timeout:g}s."
            ) from None
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
            raise TransientError(f"{self.where} dropped the connection ({exc}).") from None
        finally:
            await self._release(conn, reusable=reusable)
