"""Keeping secrets out of what digest prints.

Error messages are read in terminals, logs and bug reports: a password inside a URL
(``postgresql://digest:s3cret@db/digest``, ``amqp://user:pass@broker//``) is replaced by
``***`` before any message shows the URL.
"""

from __future__ import annotations

import re

# scheme://user:password@host -> the password is everything between the first ':' after
# the user and the last '@' before the host (a password may itself contain '@').
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)[^\s/?#]*(?=@)")


def mask_url(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\g<head>***", text)
