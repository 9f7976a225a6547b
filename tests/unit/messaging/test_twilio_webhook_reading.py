"""Twilio's webhook forms become typed reports, and only Twilio's signature lets them in."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from twilio.request_validator import RequestValidator

from core.channels import Channel
from core.errors import InvalidInput
from messaging.errors import RecipientOptedOut
from messaging.twilio_messages import (
    DeliveryReport,
    FakeTextSender,
    OutgoingText,
    TwilioSignatures,
    channel_address,
    explain_error_code,
    parse_inbound,
    parse_status,
)

TOKEN = "12345678901234567890123456789012"
PUBLIC = "https://cc.example.com/centralita"
PATH = "/api/v1/webhooks/twilio/messages"


def test_an_sms_form_becomes_an_inbound_text() -> None:
    form = {
        "MessageSid": "SM" + "1" * 32,
        "AccountSid": "AC" + "2" * 32,
        "From": "+34600111222",
        "To": "+34911000000",
        "Body": "Sigo sin línea",
        "NumMedia": "0",
    }
    message = parse_inbound(form)
    assert (message.channel, message.sender, message.recipient, message.body) == (
        Channel.SMS,
        "+34600111222",
        "+34911000000",
        "Sigo sin línea",
    )
    assert message.media == () and message.opt_out is None


def test_a_whatsapp_form_keeps_its_media_profile_name_and_channel() -> None:
    form = {
        "MessageSid": "MM" + "3" * 32,
        "From": "whatsapp:+34600111222",
        "To": "whatsapp:+14155238886",
        "Body": "",
        "NumMedia": "2",
        "MediaUrl0": "https://api.twilio.com/media/0",
        "MediaContentType0": "image/jpeg",
        "MediaUrl1": "https://api.twilio.com/media/1",
        "ProfileName": "Ana",
    }
    message = parse_inbound(form)
    assert (message.channel, message.sender, message.recipient) == (
        Channel.WHATSAPP,
        "+34600111222",
        "+14155238886",
    )
    assert [(m.url, m.content_type) for m in message.media] == [
        ("https://api.twilio.com/media/0", "image/jpeg"),
        ("https://api.twilio.com/media/1", None),
    ]
    assert message.profile_name == "Ana"


def test_an_opt_out_keyword_is_read_from_advanced_opt_out() -> None:
    form = {"MessageSid": "SM1", "From": "+34600111222", "Body": "STOP", "OptOutType": "STOP"}
    assert parse_inbound(form).opt_out == "stop"


@pytest.mark.parametrize("missing", ["MessageSid", "From"])
def test_a_form_without_sid_or_sender_is_refused(missing: str) -> None:
    form = {"MessageSid": "SM1", "From": "+34600111222", "Body": "x"}
    del form[missing]
    with pytest.raises(InvalidInput, match=missing):
        parse_inbound(form)


def test_a_status_form_becomes_a_delivery_report() -> None:
    report = parse_status(
        {"MessageSid": "SM1", "MessageStatus": "Undelivered", "ErrorCode": "30003", "To": "+346"}
    )
    assert report == DeliveryReport(sid="SM1", status="undelivered", error_code=30003, recipient="+346")
    assert parse_status({"SmsSid": "SM2", "SmsStatus": "sent"}).status == "sent"
    with pytest.raises(InvalidInput, match="MessageStatus"):
        parse_status({"MessageSid": "SM1"})


def test_error_codes_are_explained_in_words() -> None:
    assert explain_error_code(21610) is not None and "STOP" in explain_error_code(21610)  # type: ignore[operator]
    assert explain_error_code(30003) == "Twilio error 30003"
    assert explain_error_code(None) is None


def signed(url: str, form: dict[str, str], token: str = TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, form))


FORM = {"MessageSid": "SM1", "From": "+34600111222", "Body": "hola"}


def test_a_signature_over_the_public_url_is_valid() -> None:
    signatures = TwilioSignatures(auth_token=TOKEN, public_url=PUBLIC + "/")
    fields = {k: [v] for k, v in FORM.items()}
    signature = signed(PUBLIC + PATH, FORM)
    assert signatures.valid(path=PATH, query="", form=fields, signature=signature)


def test_the_query_string_twilio_called_is_part_of_what_is_signed() -> None:
    signatures = TwilioSignatures(auth_token=TOKEN, public_url=PUBLIC)
    fields = {k: [v] for k, v in FORM.items()}
    signature = signed(PUBLIC + PATH + "?tenant=meridiano", FORM)
    assert signatures.valid(path=PATH, query="tenant=meridiano", form=fields, signature=signature)
    assert not signatures.valid(path=PATH, query="", form=fields, signature=signature)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        signed("http://testserver" + PATH, FORM),  # the URL the app sees behind a proxy
        signed(PUBLIC + PATH, FORM, token="another account's token!!!!!!!!"),
        signed(PUBLIC + PATH, FORM | {"Body": "something else"}),  # the body was changed
    ],
)
def test_a_missing_or_wrong_signature_is_refused(signature: str | None) -> None:
    signatures = TwilioSignatures(auth_token=TOKEN, public_url=PUBLIC)
    fields = {k: [v] for k, v in FORM.items()}
    assert not signatures.valid(path=PATH, query="", form=fields, signature=signature)


def test_repeated_form_fields_are_signed_as_twilio_signs_them() -> None:
    signatures = TwilioSignatures(auth_token=TOKEN, public_url=PUBLIC)
    # Twilio appends name and value, sorted by name, then each name's values sorted: a1, bb1, bb2.
    payload = PUBLIC + PATH + "a1" + "bb1" + "bb2"
    signature = base64.b64encode(hmac.new(TOKEN.encode(), payload.encode(), hashlib.sha1).digest()).decode()
    assert signatures.valid(path=PATH, query="", form={"b": ["b2", "b1"], "a": ["1"]}, signature=signature)


def test_whatsapp_addresses_carry_their_prefix_and_sms_ones_do_not() -> None:
    assert channel_address(Channel.WHATSAPP, "+34600111222") == "whatsapp:+34600111222"
    assert channel_address(Channel.WHATSAPP, "whatsapp:+34600111222") == "whatsapp:+34600111222"
    assert channel_address(Channel.SMS, "+34600111222") == "+34600111222"


def test_the_fake_sender_keeps_messages_and_raises_the_failures_it_is_given() -> None:
    fake = FakeTextSender(failures={"+34600999999": RecipientOptedOut("opted out", code=21610)})
    first = fake.send(OutgoingText(Channel.SMS, "+34600111222", "uno"))
    second = fake.send(OutgoingText(Channel.WHATSAPP, "+34600111222", "dos"))
    assert first.sid != second.sid and second.to == "whatsapp:+34600111222"
    with pytest.raises(RecipientOptedOut):
        fake.send(OutgoingText(Channel.SMS, "+34600999999", "tres"))
    with pytest.raises(InvalidInput):
        fake.send(OutgoingText(Channel.SMS, "+34600111222", "  "))
    assert [m.body for m in fake.sent] == ["uno", "dos"]
