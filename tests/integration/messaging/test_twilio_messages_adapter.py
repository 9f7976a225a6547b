"""The Twilio adapter, with the real SDK talking over a real socket to a server that answers like
Twilio's Messages API."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fake_twilio_api import FakeTwilioApi

from core.channels import Channel
from messaging.errors import (
    ChannelNotConfigured,
    InvalidAddress,
    ProviderRejected,
    ProviderUnavailable,
    RecipientOptedOut,
)
from messaging.twilio_messages import OutgoingText, TwilioTextSender

SID = "AC" + "a1" * 16
TOKEN = "twilio-auth-token-for-tests"
CALLBACK = "https://cc.example.com/api/v1/webhooks/twilio/status"


@pytest.fixture
def api() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi(account_sid=SID, auth_token=TOKEN) as server:
        yield server


def sender_for(
    base_url: str, *, token: str = TOKEN, timeout: float = 5.0, **senders: str | None
) -> TwilioTextSender:
    return TwilioTextSender(
        account_sid=SID,
        auth_token=token,
        sms_from=senders.get("sms_from", "+34911000000"),
        whatsapp_from=senders.get("whatsapp_from", "whatsapp:+14155238886"),
        api_base_url=base_url,
        timeout=timeout,
    )


def test_an_sms_is_posted_to_the_messages_api_with_its_status_callback(api: FakeTwilioApi) -> None:
    sent = sender_for(api.base_url).send(OutgoingText(Channel.SMS, "+34600111222", "Hola Ana", CALLBACK))

    [request] = api.received
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.form == {
        "To": "+34600111222",
        "From": "+34911000000",
        "Body": "Hola Ana",
        "StatusCallback": CALLBACK,
    }
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.sid.startswith("SM") and len(sent.sid) == 34
    assert (sent.status, sent.to, sent.sender) == ("queued", "+34600111222", "+34911000000")


def test_a_whatsapp_message_addresses_both_ends_as_whatsapp(api: FakeTwilioApi) -> None:
    sent = sender_for(api.base_url).send(OutgoingText(Channel.WHATSAPP, "+34600111222", "Hola"))

    assert api.sent() == [{"To": "whatsapp:+34600111222", "From": "whatsapp:+14155238886", "Body": "Hola"}]
    assert sent.to == "whatsapp:+34600111222"


def test_a_messaging_service_sid_is_sent_as_the_service_not_as_a_from_number(api: FakeTwilioApi) -> None:
    service = "MG" + "b2" * 16
    sent = sender_for(api.base_url, sms_from=service).send(OutgoingText(Channel.SMS, "+34600111222", "Hola"))

    assert api.sent() == [{"To": "+34600111222", "MessagingServiceSid": service, "Body": "Hola"}]
    assert (sent.status, sent.sender) == ("accepted", None)


@pytest.mark.parametrize(
    ("status", "code", "error", "words"),
    [
        (400, 21211, InvalidAddress, "is not a valid phone number"),
        (400, 21614, InvalidAddress, "is not a mobile number"),
        (400, 21610, RecipientOptedOut, "replied STOP"),
        (400, 21606, ProviderRejected, "cannot send text messages"),
        (429, 20429, ProviderUnavailable, "rate-limiting"),
        (500, 20500, ProviderUnavailable, "Twilio is failing (HTTP 500)"),
        (400, 21999, ProviderRejected, "Twilio refused the message to +34600111222 (HTTP 400, code 21999)"),
    ],
)
def test_twilio_errors_become_domain_errors_that_say_what_to_do(
    api: FakeTwilioApi, status: int, code: int, error: type[Exception], words: str
) -> None:
    api.errors["+34600111222"] = (status, code, "Twilio's own words")

    with pytest.raises(error) as raised:
        sender_for(api.base_url).send(OutgoingText(Channel.SMS, "+34600111222", "Hola"))

    assert words in str(raised.value)
    assert raised.value.code == code  # type: ignore[attr-defined]


def test_a_wrong_auth_token_is_the_operators_problem_not_the_customers(api: FakeTwilioApi) -> None:
    with pytest.raises(ProviderRejected, match="refused the account SID and auth token") as raised:
        sender_for(api.base_url, token="wrong").send(OutgoingText(Channel.SMS, "+34600111222", "Hola"))
    assert raised.value.code == 20003 and not raised.value.retryable


def test_twilio_unreachable_is_a_retryable_failure() -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(ProviderUnavailable, match="could not be reached") as raised:
        sender_for(f"http://127.0.0.1:{port}").send(OutgoingText(Channel.SMS, "+34600111222", "Hola"))
    assert raised.value.retryable


def test_a_twilio_that_does_not_answer_in_time_is_unavailable(api: FakeTwilioApi) -> None:
    api.delay = 1.0
    with pytest.raises(ProviderUnavailable, match="could not be reached"):
        sender_for(api.base_url, timeout=0.2).send(OutgoingText(Channel.SMS, "+34600111222", "Hola"))


def test_a_channel_without_a_sender_is_refused_before_anything_is_posted(api: FakeTwilioApi) -> None:
    with pytest.raises(ChannelNotConfigured, match="no whatsapp sender"):
        sender_for(api.base_url, whatsapp_from=None).send(
            OutgoingText(Channel.WHATSAPP, "+34600111222", "Hola")
        )
    assert api.received == []
