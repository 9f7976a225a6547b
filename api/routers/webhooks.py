"""What providers post to: Twilio's incoming messages and delivery statuses, and inbound email.

Twilio's webhooks carry no API key: `X-Twilio-Signature` proves them, checked against the URL
Twilio called (CENTRALITA_PUBLIC_URL plus the path), before anything is read into the database. A
missing or wrong signature gets 403 and writes nothing. Inbound email comes from a relay service or
a Postfix pipe holding an API key (interactions:write), as the raw RFC 822 message.

Each write runs in one worker-thread hop with a transaction of its own, committed before the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.deps import WriteInteractions
from core.db import unit_of_work
from core.timeline.schemas import InteractionRead
from messaging import service
from messaging.channels import TWILIO_MESSAGES_PATH, TWILIO_STATUS_PATH, MessagingChannels
from messaging.email_smtp import parse_email
from messaging.twilio_messages import TwilioSignatures, parse_inbound, parse_status

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

T = TypeVar("T")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
_PREFIX = "/api/v1"


def messaging_of(request: Request) -> MessagingChannels:
    channels: MessagingChannels | None = getattr(request.app.state, "messaging", None)
    if channels is None:
        return MessagingChannels(region=request.app.state.settings.default_region)
    return channels


def _signatures(request: Request) -> TwilioSignatures:
    signatures = messaging_of(request).signatures
    if signatures is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Twilio is not configured: set CENTRALITA_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and "
            "CENTRALITA_PUBLIC_URL",
        )
    return signatures


async def _signed_form(request: Request, path: str) -> dict[str, str]:
    """The form Twilio posted, once its signature holds; 403 otherwise."""
    signatures = _signatures(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "Twilio posts application/x-www-form-urlencoded"
        )
    # Read with the standard library: Twilio sends nothing but URL-encoded forms.
    fields: dict[str, list[str]] = {}
    for name, value in parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(name, []).append(value)
    if not signatures.valid(
        path=path,
        query=request.url.query,
        form=fields,
        signature=request.headers.get("x-twilio-signature"),
        settings_header=request.headers.get("x-twilio-webhooks-signature-settings"),
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "X-Twilio-Signature is missing or does not match this request (the auth token, and the "
            f"URL Twilio called: {signatures.url_called(path, request.url.query)})",
        )
    return {name: values[0] for name, values in fields.items() if values}


async def _in_transaction(request: Request, work: Callable[[Session], T]) -> T:
    factory = request.app.state.session_factory

    def run() -> T:
        with unit_of_work(factory) as db:
            return work(db)

    return await run_in_threadpool(run)


def _twiml() -> Response:
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post(
    TWILIO_MESSAGES_PATH.removeprefix(_PREFIX + "/webhooks"),
    response_class=Response,
    responses={200: {"content": {"text/xml": {}}, "description": "empty TwiML: no automatic reply"}},
)
async def twilio_message(request: Request) -> Response:
    """An SMS or WhatsApp message to one of the account's numbers: recorded on the sender's timeline
    (channel `whatsapp` for `whatsapp:` senders, else `sms`), in the case it answers."""
    form = await _signed_form(request, TWILIO_MESSAGES_PATH)
    message = parse_inbound(form)
    region = messaging_of(request).region
    await _in_transaction(
        request, lambda db: service.record_inbound_text(db=db, message=message, region=region)
    )
    return _twiml()


@router.post(TWILIO_STATUS_PATH.removeprefix(_PREFIX + "/webhooks"), status_code=status.HTTP_204_NO_CONTENT)
async def twilio_status(request: Request) -> Response:
    """A sent message's delivery status: the interaction's outcome and a touchpoint. A status that
    arrives late or twice changes nothing."""
    form = await _signed_form(request, TWILIO_STATUS_PATH)
    report = parse_status(form)
    await _in_transaction(request, lambda db: service.apply_delivery_report(db=db, report=report))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/email",
    status_code=status.HTTP_201_CREATED,
    response_model=InteractionRead,
    responses={200: {"description": "this Message-ID was recorded already; nothing changed"}},
    openapi_extra={
        "requestBody": {"required": True, "content": {"message/rfc822": {"schema": {"type": "string"}}}}
    },
)
async def inbound_email(request: Request, _: WriteInteractions) -> Any:
    """An email a customer sent, as the raw RFC 822 message a relay service or a Postfix pipe hands
    over. It lands on the timeline of the customer holding the From address, in the case its
    In-Reply-To/References or a "[case #N]" subject tag names."""
    raw = await request.body()
    if not raw.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "send the raw email as the request body")
    message = parse_email(raw)
    region = messaging_of(request).region

    def work(db: Session) -> tuple[dict[str, Any], bool]:
        recorded = service.record_inbound_email(db=db, message=message, region=region)
        return InteractionRead.model_validate(recorded.interaction).model_dump(mode="json"), recorded.created

    body, created = await _in_transaction(request, work)
    return JSONResponse(body, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
