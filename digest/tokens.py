"""Signed tokens for the links in a message (unsubscribe, preferences).

A token is ``<subscriber id>.<list, base64url>.<HMAC-SHA256, base64url>`` keyed by the
secret key and bound to a purpose: a forged, truncated or cross-purpose token is
rejected without a database lookup, in constant time.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError
from .urls import is_loopback

if TYPE_CHECKING:
    from .config import Config

SECRET_ENV = "DIGEST_SECRET_KEY"
_MAC_BYTES = 16
_B64 = re.compile(r"[A-Za-z0-9_-]+")
# A subscriber id as make_token writes it: ASCII digits, no sign, no leading zero. int()
# alone would also take "+1", " 1", "1_0" and full-width digits.
_ID = re.compile(r"[1-9][0-9]{0,18}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """The bytes of unpadded URL-safe base64 ``text`` in its one canonical spelling.

    ``ValueError`` for padding, characters outside the URL-safe alphabet, and spellings
    that decode to the same bytes as another (a changed last character whose low bits
    the decoder ignores): one token, one accepted form.
    """
    if not _B64.fullmatch(text):
        raise ValueError("not unpadded URL-safe base64")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical spelling")
    return data


def secret_key(root: Path) -> bytes:
    """The key from ``$DIGEST_SECRET_KEY``, else one kept in ``root/.digest-secret``.

    The file is created (mode 0600) on first use so that the embedded demo works
    with no setup and its links stay valid from run to run; production sets the
    environment variable.
    """
    value = os.environ.get(SECRET_ENV)
    if value:
        return value.encode("utf-8")
    path = root / ".digest-secret"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    # Two processes starting at once on a fresh folder both get here. Each writes a whole
    # key to a file of its own and links it into place: link() never replaces, so exactly
    # one key wins, nobody reads a half-written file, and the losers read the winner's.
    fd, temporary = tempfile.mkstemp(dir=root, prefix=".digest-secret.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_urlsafe(32).encode("ascii"))
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return path.read_bytes().strip()


def _mac(key: bytes, purpose: str, subscriber_id: int, list_name: str) -> bytes:
    message = f"{purpose}\x00{subscriber_id}\x00{list_name}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(key: bytes, purpose: str, subscriber_id: int, list_name: str) -> str:
    """A URL-safe token that proves ``purpose`` for this subscriber on this list."""
    mac = _mac(key, purpose, subscriber_id, list_name)
    return f"{subscriber_id}.{_b64(list_name.encode())}.{_b64(mac)}"


@dataclass(frozen=True, slots=True)
class TokenClaim:
    """What a valid token proves."""

    subscriber_id: int
    list_name: str


def read_token(key: bytes, purpose: str, token: str) -> TokenClaim | None:
    """The claim of a valid token for ``purpose``; ``None`` for anything else."""
    try:
        sid_text, list_text, mac_text = token.split(".")
        if not _ID.fullmatch(sid_text):
            return None
        subscriber_id = int(sid_text)
        list_name = _unb64(list_text).decode("utf-8")
        mac = _unb64(mac_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if len(mac) != _MAC_BYTES:
        return None
    if not hmac.compare_digest(mac, _mac(key, purpose, subscriber_id, list_name)):
        return None
    return TokenClaim(subscriber_id=subscriber_id, list_name=list_name)


def is_demo(config: Config) -> bool:
    """Whether ``config`` is the local demo: its ``base_url`` is a loopback address."""
    return is_loopback(config.base_url)


def require_secret(config: Config) -> bytes:
    """The signing key for ``config``: ``$DIGEST_SECRET_KEY``, or for the demo only
    (``base_url`` on loopback) the generated key file; ``ConfigError`` otherwise."""
    if os.environ.get(SECRET_ENV) or is_demo(config):
        return secret_key(config.root)
    raise ConfigError(
        f"{SECRET_ENV} is not set. The links in messages are signed with it: set it to a long "
        f"random value (for example the output of: python -c 'import secrets; "
        f"print(secrets.token_urlsafe(32))') and keep it the same for every run and serve. "
        f"Only a demo whose base_url is on 127.0.0.1 or localhost runs without it."
    )
