"""SMS and WhatsApp over Twilio: sending through the official SDK, and reading Twilio's webhooks.

    sender = TwilioTextSender(account_sid=..., auth_token=..., sms_from="+34911000000",
                              whatsapp_from="whatsapp:+14155238886", api_base_url="https://api.twilio.com")
    sent = sender.send(OutgoingText(Channel.SMS, "+34600111222", "Hola", status_callback=url))
    sent.sid  # "SM…": the message's id on the timeline (RefKind.TWILIO_SID)

The port is `TextSender`, with `FakeTextSender` beside it for the code above. The SDK's Twilio
errors become `messaging.errors` (21211 a bad number, 21610 an opted-out recipient, 20003 refused
credentials, no answer at all: unavailable), each with a sentence an agent can act on.

Blocking, on purpose: the SDK's async client (aiohttp) binds a session to one event loop and must be
closed on it, while this sender is shared by the API's worker threads and the IVR's loop. Every
caller already does its database work in a worker thread (the API's sync routes, the IVR's link
sender), so the send runs in that same thread hop, over the SDK's pooled `requests` session.

Webhooks: `parse_inbound` and `parse_status` turn Twilio's form fields into typed reports, and
`TwilioSignatures` checks `X-Twilio-Signature` against the URL Twilio called: the public URL
(`CENTRALITA_PUBLIC_URL`) plus the path and query, since behind a proxy the app sees another one.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.rest import Client

from core.channels import Channel
from core.errors import InvalidInput
from messaging.errors import (
    ChannelNotConfigured,
    InvalidAddress,
    MessageNotSent,
    OutsideMessagingWindow,
    ProviderRejected,
    ProviderUnavailable,
    RecipientOptedOut,
)

TEXT_CHANNELS = (Channel.SMS, Channel.WHATSAPP)
WHATSAPP_PREFIX = "whatsapp:"
TWILIO_API = "https://api.twilio.com"

# Twilio's error codes (https://www.twilio.com/docs/api/errors) this service explains in its own words.
_ERRORS: dict[int, tuple[type[MessageNotSent], str]] = {
    21211: (InvalidAddress, "is not a valid phone number"),
    21614: (InvalidAddress, "is not a mobile number, so it cannot receive text messages"),
    21612: (InvalidAddress, "cannot be reached by text messages from this sender"),
    21610: (
        RecipientOptedOut,
        "replied STOP to this sender: nothing can be sent until they reply START",
    ),
    63016: (
        OutsideMessagingWindow,
        "last wrote more than 24 hours ago: WhatsApp accepts only approved templates until they write again",
    ),
    20003: (ProviderRejected, "was not sent: Twilio refused the account SID and auth token"),
    20404: (ProviderRejected, "was not sent: Twilio does not know this account or resource"),
    21212: (ProviderRejected, "was not sent: the sender (From) is not a valid number or sender id"),
    21606: (ProviderRejected, "was not sent: the sender (From) cannot send text messages"),
    21659: (ProviderRejected, "was not sent: the sender (From) is not a number of this Twilio account"),
    21408: (ProviderRejected, "was not sent: this account may not send to that country (geo permissions)"),
    63007: (ProviderRejected, "was not sent: Twilio has no WhatsApp sender with this From address"),
    20429: (ProviderUnavailable, "was not sent: Twilio is rate-limiting this account; try again shortly"),
}


@dataclass(frozen=True, slots=True)
class OutgoingText:
    channel: Channel  # sms or whatsapp
    to: str  # E.164, without "whatsapp:"
    body: str
    status_callback: str | None = None  # where Twilio posts delivery statuses


@dataclass(frozen=True, slots=True)
class SentText:
    sid: str
    status: str  # Twilio's first status: "queued", "accepted", ...
    to: str  # as Twilio addressed it ("+34…" or "whatsapp:+34…")
    sender: str | None  # the From it used


class TextSender(Protocol):
    def send(self, message: OutgoingText) -> SentText:
        """Hands the message to the provider; raises a `MessageNotSent` saying why it could not.
        Blocking: call it from a worker thread."""
        ...


def channel_address(channel: Channel, number: str) -> str:
    """How Twilio addresses a number on a channel: "+34…" for SMS, "whatsapp:+34…" for WhatsApp."""
    bare = number.removeprefix(WHATSAPP_PREFIX)
    return f"{WHATSAPP_PREFIX}{bare}" if channel is Channel.WHATSAPP else bare


def _check_text(message: OutgoingText) -> None:
    if message.channel not in TEXT_CHANNELS:
        raise ChannelNotConfigured(f"Twilio sends sms and whatsapp, not {message.channel.value}")
    if not message.body.strip():
        raise InvalidInput("a message needs a body")


class TwilioTextSender:
    """The `TextSender` on Twilio's Messages API, through the official SDK."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sms_from: str | None,
        whatsapp_from: str | None,
        api_base_url: str = TWILIO_API,
        timeout: float = 10.0,
    ) -> None:
        self._senders = {Channel.SMS: sms_from, Channel.WHATSAPP: whatsapp_from}
        sdk_log = logging.getLogger(f"{__name__}.sdk")
        # The SDK logs every request's URL and headers at INFO; numbers are personal data.
        sdk_log.setLevel(logging.WARNING)
        http = TwilioHttpClient(timeout=timeout, logger=sdk_log)
        self._client = Client(account_sid, auth_token, http_client=http)
        # The SDK's one switch for where the REST API is: the api domain's base URL.
        self._client.api.base_url = api_base_url.rstrip("/")
        self._messages = self._client.api.v2010.account.messages

    def send(self, message: OutgoingText) -> SentText:
        _check_text(message)
        sender = self._senders[message.channel]
        if not sender:
            setting = "CENTRALITA_TWILIO_SMS_FROM" if message.channel is Channel.SMS else "_WHATSAPP_FROM"
            raise ChannelNotConfigured(f"no {message.channel.value} sender is configured ({setting})")
        to = channel_address(message.channel, message.to)
        arguments: dict[str, Any] = {"to": to, "body": message.body}
        if message.status_callback:
            arguments["status_callback"] = message.status_callback
        # A Messaging Service SID picks the sender from its pool; anything else is the From itself.
        if sender.startswith("MG") and len(sender) == 34:
            arguments["messaging_service_sid"] = sender
        else:
            arguments["from_"] = sender
        try:
            created = self._messages.create(**arguments)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise twilio_error(exc, to) from None
        except OSError as exc:  # requests' connection errors and timeouts are OSErrors
            raise ProviderUnavailable(f"Twilio could not be reached: {type(exc).__name__}") from None
        except TwilioException as exc:
            raise ProviderUnavailable(f"Twilio's answer could not be read: {exc}") from None
        if not created.sid:
            raise ProviderUnavailable("Twilio answered without a message SID")
        return SentText(
            sid=str(created.sid), status=str(created.status or "queued"), to=to, sender=created.from_
        )


def twilio_error(exc: TwilioRestException | TwilioServiceException, to: str) -> MessageNotSent:
    """The `MessageNotSent` for an error the Twilio API answered."""
    status = int(exc.status)
    code = int(exc.code) if isinstance(exc.code, int) or str(exc.code).isdigit() else None
    detail = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
    known = _ERRORS.get(code) if code is not None else None
    if known is not None:
        kind, explanation = known
        return kind(f"the message to {to} {explanation} (Twilio {code})", code=code)
    if status == 401:
        return ProviderRejected("Twilio refused the account SID and auth token", code=code)
    if status == 429 or status >= 500:
        return ProviderUnavailable(f"Twilio is failing (HTTP {status}); try again shortly", code=code)
    return ProviderRejected(
        f"Twilio refused the message to {to} (HTTP {status}, code {code}): {detail}", code=code
    )


@dataclass
class FakeTextSender:
    """A `TextSender` that keeps what it was given. `failures` maps a recipient number to the error
    sending to it raises; `sids` numbers the messages SMfake00000001, SMfake00000002, …"""

    failures: dict[str, MessageNotSent] = field(default_factory=dict)
    sent: list[OutgoingText] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, message: OutgoingText) -> SentText:
        _check_text(message)
        failure = self.failures.get(message.to)
        if failure is not None:
            raise failure
        with self._lock:
            self.sent.append(message)
            sid = f"SMfake{next(self._counter):026d}"
        return SentText(
            sid=sid, status="queued", to=channel_address(message.channel, message.to), sender=None
        )


# --- webhooks -------------------------------------------------------------------------------------------


class Media(BaseModel):
    model_config = ConfigDict(frozen=True)

    url: str
    content_type: str | None


class InboundText(BaseModel):
    """A message a customer sent to one of the account's numbers (Twilio's incoming-message webhook)."""

    model_config = ConfigDict(frozen=True)

    sid: str
    account_sid: str | None
    channel: Channel  # sms, or whatsapp when the sender is "whatsapp:+…"
    sender: str  # the customer's number, without "whatsapp:"
    recipient: str  # ours, without "whatsapp:"
    body: str
    media: tuple[Media, ...] = ()
    profile_name: str | None = None  # WhatsApp's display name
    opt_out: str | None = None  # "stop", "start" or "help" with Twilio's Advanced Opt-Out


class DeliveryReport(BaseModel):
    """A status Twilio reports for a message (its status-callback webhook)."""

    model_config = ConfigDict(frozen=True)

    sid: str
    status: str  # queued, sending, sent, delivered, read, undelivered, failed, …
    error_code: int | None = None
    recipient: str | None = None


def _required(form: Mapping[str, str], name: str) -> str:
    value = (form.get(name) or "").strip()
    if not value:
        raise InvalidInput(f"Twilio's request has no {name}")
    return value


def parse_inbound(form: Mapping[str, str]) -> InboundText:
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or "").strip()
    if not sid:
        raise InvalidInput("Twilio's request has no MessageSid")
    sender = _required(form, "From")
    count = form.get("NumMedia") or "0"
    media = tuple(
        Media(url=form[f"MediaUrl{i}"], content_type=form.get(f"MediaContentType{i}"))
        for i in range(int(count) if count.isdigit() else 0)
        if form.get(f"MediaUrl{i}")
    )
    opt_out = (form.get("OptOutType") or "").strip().lower() or None
    return InboundText(
        sid=sid,
        account_sid=form.get("AccountSid"),
        channel=Channel.WHATSAPP if sender.lower().startswith(WHATSAPP_PREFIX) else Channel.SMS,
        sender=sender[len(WHATSAPP_PREFIX) :] if sender.lower().startswith(WHATSAPP_PREFIX) else sender,
        recipient=(form.get("To") or "").removeprefix(WHATSAPP_PREFIX),
        body=form.get("Body") or "",
        media=media,
        profile_name=form.get("ProfileName") or None,
        opt_out=opt_out,
    )


def parse_status(form: Mapping[str, str]) -> DeliveryReport:
    sid = (form.get("MessageSid") or form.get("SmsSid") or "").strip()
    if not sid:
        raise InvalidInput("Twilio's request has no MessageSid")
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    if not status:
        raise InvalidInput("Twilio's request has no MessageStatus")
    code = (form.get("ErrorCode") or "").strip()
    return DeliveryReport(
        sid=sid,
        status=status,
        error_code=int(code) if code.isdigit() else None,
        recipient=(form.get("To") or "").removeprefix(WHATSAPP_PREFIX) or None,
    )


def explain_error_code(code: int | None) -> str | None:
    """Twilio's error code in words, for a failed or undelivered status."""
    if code is None:
        return None
    known = _ERRORS.get(code)
    return f"the recipient {known[1]}" if known else f"Twilio error {code}"


class _MultiValues:
    """The shape RequestValidator reads repeated form fields through (`getall`)."""

    def __init__(self, values: Mapping[str, Sequence[str]]) -> None:
        self._values = values

    def __iter__(self) -> Any:
        return iter(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def getall(self, name: str) -> list[str]:
        return list(self._values[name])


class TwilioSignatures:
    """Checks that a webhook came from Twilio: X-Twilio-Signature is an HMAC, keyed by the account's
    auth token, of the URL Twilio called and the form fields (RequestValidator's algorithm)."""

    def __init__(self, *, auth_token: str, public_url: str) -> None:
        self._validator = RequestValidator(auth_token)
        self._public_url = public_url.rstrip("/")

    def url_called(self, path: str, query: str = "") -> str:
        """The URL Twilio called: the public URL, not the one this process sees behind a proxy."""
        return f"{self._public_url}{path}" + (f"?{query}" if query else "")

    def valid(
        self,
        *,
        path: str,
        query: str,
        form: Mapping[str, Sequence[str]],
        signature: str | None,
        settings_header: str | None = None,
    ) -> bool:
        if not signature:
            return False
        algorithm = get_signature_algorithm(settings_header)
        return bool(
            self._validator.validate(self.url_called(path, query), _MultiValues(form), signature, algorithm)
        )
