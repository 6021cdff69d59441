"""The double opt-in message: a short plain-text email carrying the confirmation link,
and its sending through the newsletter's backend.

Built by the personalisation code (``personalize.standalone``: the address is checked
and the display name encoded, so nothing a visitor typed in the form can add a header
or a recipient), not by hand.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from .backends import make_backend
from .config import Config, NewsletterConfig
from .errors import BackendError
from .models import DeliveryStatus, Message, Subscriber
from .personalize import address_domain, standalone


def confirmation_message(
    newsletter: NewsletterConfig, subscriber: Subscriber, link: str
) -> Message:
    """The message asking ``subscriber`` to confirm their subscription to ``newsletter``
    by opening ``link``. ``SubscriberError`` when the address cannot be put in a header."""
    name = " ".join(subscriber.name.split())
    return standalone(
        subscriber,
        sender=newsletter.sender,
        subject=f"Confirm your subscription to {newsletter.title}",
        text=(
            f"Hello{' ' + name if name else ''},\n\n"
            f"Someone, probably you, asked to receive {newsletter.title} at this address.\n"
            f"To confirm, open this link:\n\n{link}\n\n"
            "If it was not you, ignore this message: nothing will be sent unless the link "
            "is opened.\n"
        ),
        date=datetime.now(UTC),
        message_id=f"<confirm.{uuid.uuid4().hex}@{address_domain(newsletter.sender)}>",
        headers=(("Auto-Submitted", "auto-generated"),),
    )


async def send_confirmation(
    config: Config, newsletter_name: str, subscriber: Subscriber, link: str
) -> None:
    """Send the double opt-in message through the newsletter's backend;
    ``BackendError`` when it was not sent. The web service runs it after its response
    is sent, so the response's timing reveals nothing about the address, and watches
    it (``digest.web.background``): a failure is logged and shown on ``/healthz``."""
    newsletter = config.newsletters[newsletter_name]
    message = confirmation_message(newsletter, subscriber, link)
    backend = make_backend(newsletter.backend, config.backends[newsletter.backend])
    async with backend:
        (delivery,) = await backend.send([message])
    if delivery.status is not DeliveryStatus.SENT:
        raise BackendError(
            f"the confirmation message to subscriber {subscriber.id} was not sent: {delivery.error}"
        )
