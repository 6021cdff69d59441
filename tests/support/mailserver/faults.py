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
import ssl
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .. import free_port


@dataclass
class Faults:
    unknown: set[str] = field(default_factory=set)
    tempfail_first: set[str] = field(default_factory=set)
    drop_first: set[str] = field(default_factory=set)
    throttle_mail: int = 0
    data_delay: float = 0.0
    tempfail_reply: str = "450 4.2.1 Mailbox busy, try again later"
    refuse_every_rcpt: str = ""  # e.g. "550 5.7.1 Relay access denied": the reply to each RCPT


class FaultHandler:
    def __init__(self, faults: Faults, pipelining: bool = False) -> None:
        self.faults = faults
        self.pipelining = pipelining
        self.received: list[tuple[str, bytes]] = []
        self.data_attempts: Counter[str] = Counter()
        self.peers: set[tuple[str, int]] = set()  # connections that delivered something
        self.connections: set[tuple[str, int]] = set()  # connections that started a transaction
        self.throttled = 0
        self.rsets = 0
        self.port = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.faults.throttle_mail > 0:
            self.faults.throttle_mail -= 1
            self.throttled += 1
            return "421 4.7.0 Too many messages, slow down"
        self.connections.add(session.peer)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.faults.refuse_every_rcpt:
            return self.faults.refuse_every_rcpt
        if address in self.faults.unknown:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):
        self.rsets += 1
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
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
        return email.message_from_bytes(data, policy=policy.default)


class FaultServer:
    """Context manager: a ``FaultHandler`` behind aiosmtpd on ``127.0.0.1:port``.

    With ``login`` the server offers AUTH (without TLS) and accepts only that pair;
    with ``pipelining`` its EHLO offers PIPELINING (aiosmtpd reads pipelined commands
    in order but does not say so by default); ``starttls`` (required) or
    ``implicit_tls`` secure the connection with a server context (``tls.py``).
    """

    def __init__(
        self,
        faults: Faults | None = None,
        login: tuple[str, str] | None = None,
        *,
        pipelining: bool = False,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.handler = FaultHandler(faults or Faults(), pipelining)
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if implicit_tls is not None:
            kwargs.update(ssl_context=implicit_tls)
        if login:

            def authenticate(server, session, envelope, mechanism, auth_data):
                ok = (
                    isinstance(auth_data, LoginPassword)
                    and (
                        auth_data.login.decode(),
                        auth_data.password.decode(),
                    )
                    == login
                )
                return AuthResult(success=ok, handled=False)

            kwargs |= {
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


class ScriptedServer:
    """A bare SMTP server on asyncio streams whose replies to each transaction a test
    writes, to check what aiosmtpd cannot show: how commands arrive on the wire.

    ``script(n, commands)`` gets the number of the transaction (from 0) and the command
    lines received for it (``MAIL ...``, ``RCPT ...``, ``DATA``) and returns the
    replies to send, one per command; ``"close"`` as a reply closes the connection
    instead, ``"close-mid-data"`` answers 354 and closes after the first body line.
    With ``pipelining`` the EHLO offers PIPELINING and each transaction is answered only
    once MAIL, RCPT and DATA have all arrived, as a client that waits for each reply
    never sends them: it times out. Without it, a command that arrives before the
    previous one was answered is recorded in ``unasked``.
    """

    def __init__(self, script, *, pipelining: bool = True) -> None:
        self.script = script
        self.pipelining = pipelining
        self.transactions: list[list[str]] = []
        self.bodies: list[bytes] = []
        self.commands: list[str] = []
        self.connections = 0
        self.unasked: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _line(self, reader: asyncio.StreamReader) -> str:
        line = (await reader.readline()).decode().rstrip("\r\n")
        if not line:
            raise ConnectionError
        self.commands.append(line)
        if not self.pipelining:
            try:
                extra = await asyncio.wait_for(reader.readline(), 0.05)
            except TimeoutError:
                return line
            self.unasked.append(extra.decode().rstrip("\r\n"))
            raise ConnectionError
        return line

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        offers = "250-PIPELINING\r\n" if self.pipelining else ""
        try:
            writer.write(b"220 scripted ESMTP\r\n")
            await self._line(reader)  # EHLO
            writer.write(f"250-scripted\r\n{offers}250 SIZE 1000000\r\n".encode())
            while True:
                first = await self._line(reader)
                if first in ("QUIT", "RSET"):
                    writer.write(b"221 Bye\r\n" if first == "QUIT" else b"250 Reset\r\n")
                    if first == "QUIT":
                        break
                    continue
                commands = [first]
                number = len(self.transactions)
                self.transactions.append(commands)
                if self.pipelining:
                    while commands[-1] != "DATA":
                        commands.append(await self._line(reader))
                    replies = self.script(number, commands)
                else:
                    replies = []
                    for position in range(3):
                        replies = self.script(number, commands)
                        if len(replies) <= position or not replies[position].startswith("2"):
                            break
                        writer.write(f"{replies[position]}\r\n".encode())
                        commands.append(await self._line(reader))
                    replies = replies[len(commands) - 1 :]
                for reply in replies:
                    if reply == "close":
                        return
                    if reply == "close-mid-data":
                        writer.write(b"354 go ahead\r\n")
                        await reader.readline()
                        return
                    writer.write(f"{reply}\r\n".encode())
                if replies and replies[-1].startswith("354"):
                    body = await reader.readuntil(b"\r\n.\r\n")
                    self.bodies.append(body)
                    writer.write(f"250 2.0.0 Ok: queued as S{number}\r\n".encode())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
