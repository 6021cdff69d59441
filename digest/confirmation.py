"""The double opt-in message: a short plain-text email carrying the confirmation link.

Built with the personalisation code's header rules (``personalize.to_header``: the
address is checked and the display name encoded, so nothing a visitor typed in the
form can add a header), not by hand.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from .config import NewsletterConfig
from .models import Message, Subscriber
from .personalize import address_domain, to_header


def confirmation_message(
    newsletter: NewsletterConfig, subscriber: Subscriber, link: str
) -> Message:
    """The message asking ``subscriber`` to confirm their subscription to ``newsletter``
    by opening ``link``. ``SubscriberError`` when the address cannot be put in a header."""
    to = to_header(subscriber)
    message = EmailMessage()
    message["From"] = newsletter.sender
    message["Subject"] = f"Confirm your subscription to {newsletter.title}"
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = f"<confirm.{uuid.uuid4().hex}@{address_domain(newsletter.sender)}>"
    message["Auto-Submitted"] = "auto-generated"
    name = " ".join(subscriber.name.split())
    message.set_content(
        f"Hello{' ' + name if name else ''},\n\n"
        f"Someone, probably you, asked to receive {newsletter.title} at this address.\n"
        f"To confirm, open this link:\n\n{link}\n\n"
        "If it was not you, ignore this message: nothing will be sent unless the link is opened.\n"
    )
    return Message(
        subscriber_id=subscriber.id,
        recipient=subscriber.email,
        sender=parseaddr(newsletter.sender)[1],
        message_id=str(message["Message-ID"]),
        data=to + message.as_bytes(policy=message.policy.clone(linesep="\r\n")),
    )
