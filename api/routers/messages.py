"""Agents write to customers: SMS and WhatsApp through Twilio, email through SMTP.

The customer's consent for the channel and the do-not-call list are checked first; the message is
recorded on the timeline (in the named case, else the customer's open case) only once the provider
has taken it. A provider's refusal is an answer that says what to fix, and nothing is recorded.
"""

from __future__ import annotations

from typing import Any, Self

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import SettingsDep, WriteDB, WriteInteractions
from api.routers.webhooks import messaging_of
from core.channels import Channel
from core.timeline.schemas import InteractionRead
from messaging import service
from messaging.errors import (
    ChannelNotConfigured,
    InvalidAddress,
    MessageNotSent,
    OutsideMessagingWindow,
    ProviderRejected,
    ProviderUnavailable,
    RecipientOptedOut,
)
from messaging.twilio_messages import TEXT_CHANNELS

router = APIRouter(prefix="/messages", tags=["messages"])

_TEXT_LIMIT = 1600  # Twilio's limit for one message's body

# What each refusal means for the client: its mistake (422), the customer's state (409), the
# operator's settings (502 from the provider, 503 when missing) or a passing failure (503).
_STATUSES: list[tuple[type[MessageNotSent], int]] = [
    (InvalidAddress, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (RecipientOptedOut, status.HTTP_409_CONFLICT),
    (OutsideMessagingWindow, status.HTTP_409_CONFLICT),
    (ChannelNotConfigured, status.HTTP_503_SERVICE_UNAVAILABLE),
    (ProviderRejected, status.HTTP_502_BAD_GATEWAY),
    (ProviderUnavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
]


class MessageSend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int
    channel: Channel = Field(description="sms, whatsapp or email")
    body: str = Field(min_length=1, max_length=100_000)
    subject: str | None = Field(default=None, max_length=200, description="email; a reply's is 'Re: …'")
    case_id: int | None = Field(
        default=None, description="else the customer's most recently active open case"
    )

    @model_validator(mode="after")
    def _fits_channel(self) -> Self:
        if self.channel not in (*TEXT_CHANNELS, Channel.EMAIL):
            raise ValueError("channel must be sms, whatsapp or email")
        if self.channel in TEXT_CHANNELS and len(self.body) > _TEXT_LIMIT:
            raise ValueError(f"a text message has at most {_TEXT_LIMIT} characters")
        if self.channel in TEXT_CHANNELS and self.subject is not None:
            raise ValueError("only an email has a subject")
        return self


def _refused(exc: MessageNotSent) -> HTTPException:
    code = next((code for kind, code in _STATUSES if isinstance(exc, kind)), status.HTTP_502_BAD_GATEWAY)
    headers = {"Retry-After": "30"} if exc.retryable else None
    return HTTPException(code, str(exc), headers=headers)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=InteractionRead,
    responses={
        409: {"description": "the customer withdrew consent, is on the do-not-call list, or opted out"},
        422: {"description": "no address for the channel, or the provider says it is not a valid one"},
        502: {"description": "the provider refused the account or the sender: check the settings"},
        503: {"description": "the channel is not configured, or the provider cannot be reached now"},
    },
)
def send(
    data: MessageSend, request: Request, db: WriteDB, settings: SettingsDep, agent: WriteInteractions
) -> Any:
    """Sends a message to a customer and records it on their timeline (with Twilio's SID or the
    email's Message-ID, so delivery statuses and replies find it)."""
    channels = messaging_of(request)
    try:
        if data.channel in TEXT_CHANNELS:
            if channels.texts is None:
                raise ChannelNotConfigured(
                    "no text sender: set CENTRALITA_TWILIO_ACCOUNT_SID, _AUTH_TOKEN, _SMS_FROM or "
                    "_WHATSAPP_FROM, and CENTRALITA_PUBLIC_URL"
                )
            return service.send_text(
                db=db,
                sender=channels.texts,
                channel=data.channel,
                customer_id=data.customer_id,
                body=data.body,
                case_id=data.case_id,
                agent=agent.name,
                status_callback=channels.status_callback(),
                region=settings.default_region,
            )
        if channels.emails is None:
            raise ChannelNotConfigured("no email sender: set CENTRALITA_SMTP_HOST and CENTRALITA_SMTP_FROM")
        return service.send_email(
            db=db,
            sender=channels.emails,
            customer_id=data.customer_id,
            body=data.body,
            subject=data.subject,
            case_id=data.case_id,
            agent=agent.name,
            region=settings.default_region,
        )
    except MessageNotSent as exc:
        raise _refused(exc) from None
