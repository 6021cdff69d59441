"""An aiosmtpd server that misbehaves on purpose, on a loopback port.

``Faults`` says what goes wrong: recipients refused with 550 5.1.1, recipients
whose first DATA gets 451 or a dropped connection, a number of MAIL commands
answered 421 (throttling), a delay before answering DATA. ``received`` holds every
message accepted, so a test can count who got what how many times.
"""

from __future__ import annotations

import asyncio
import email
import socket
from collections import Counter
from dataclasses import dataclass, field
from email import policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .servers import free_port


@dataclass
class Faults:
    unknown: set[str] = field(default_factory=set)
    tempfail_first: set[str] = field(default_factory=set)
    drop_first: set[str] = field(default_factory=set)
    throttle_mail: int = 0
    data_delay: float = 0.0
    tempfail_reply: str = "450 4.2.1 Mailbox busy, try again later"


class FaultHandler:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.received: list[tuple[str, bytes]] = []
        self.data_attempts: Counter[str] = Counter()
        self.peers: set[tuple[str, int]] = set()  # connections that delivered something
        self.connections: set[tuple[str, int]] = set()  # connections that started a transaction
        self.throttled = 0
        self.rsets = 0
        self.port = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]
        if self.faults.throttle_mail > 0:
            self.faults.throttle_mail -= 1
            self.throttled += 1
            return "421 4.7.0 Too many messages, slow down"
        self.connections.add(session.peer)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if address in self.faults.unknown:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.rsets += 1
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        rcpt = envelope.rcpt_tos[0]
        self.data_attempts[rcpt] += 1
        first = self.data_attempts[rcpt] == 1
        if self.faults.data_delay:
            await asyncio.sleep(self.faults.data_delay)
        if first and rcpt in self.faults.drop_first:
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        if first and rcpt in self.faults.tempfail_first:
            return self.faults.tempfail_reply
        self.peers.add(session.peer)
        self.received.append((rcpt, envelope.original_content or envelope.content))
        return f"250 2.0.0 Ok: queued as Q{len(self.received)}"

    def counts(self) -> Counter[str]:
        return Counter(rcpt for rcpt, _ in self.received)

    def parsed(self, rcpt: str) -> email.message.EmailMessage:
        data = next(data for to, data in self.received if to == rcpt)
        return email.message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


class FaultServer:
    """Context manager: a ``FaultHandler`` behind aiosmtpd on ``127.0.0.1:port``.

    With ``login`` the server offers AUTH (without TLS) and accepts only that pair.
    """

    def __init__(self, faults: Faults | None = None, login: tuple[str, str] | None = None) -> None:
        self.handler = FaultHandler(faults or Faults())
        self.port = free_port()
        kwargs: dict[str, object] = {}
        if login:

            def authenticate(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
                ok = (
                    isinstance(auth_data, LoginPassword)
                    and (
                        auth_data.login.decode(),
                        auth_data.password.decode(),
                    )
                    == login
                )
                return AuthResult(success=ok, handled=False)

            kwargs = {
                "authenticator": authenticate,
                "auth_required": True,
                "auth_require_tls": False,
                "auth_exclude_mechanism": ["LOGIN"],
            }
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=5, **kwargs
        )

    def __enter__(self) -> FaultHandler:
        self.controller.start()
        self.handler.port = self.port
        return self.handler

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class SilentServer:
    """Accepts TCP connections and never says a word (no SMTP banner)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
