"""The digital channels' settings refuse combinations that would only fail on the first message."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.settings import Settings
from messaging.channels import MessagingChannels

TWILIO = {"twilio_account_sid": "AC" + "1" * 32, "twilio_auth_token": "t" * 32}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_nothing_configured_is_fine_and_builds_no_senders() -> None:
    channels = MessagingChannels.from_settings(settings())
    assert (channels.texts, channels.emails, channels.signatures, channels.link_tokens) == (
        None,
        None,
        None,
        None,
    )
    assert channels.status_callback() is None


def test_twilio_with_a_public_url_builds_the_sender_the_signature_check_and_the_callback() -> None:
    channels = MessagingChannels.from_settings(
        settings(**TWILIO, public_url="https://cc.example.com/", twilio_sms_from="+34911000000")
    )
    assert channels.texts is not None and channels.signatures is not None
    assert channels.status_callback() == "https://cc.example.com/api/v1/webhooks/twilio/status"


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (TWILIO, "CENTRALITA_PUBLIC_URL"),
        ({"twilio_account_sid": "AC1", "public_url": "https://x.example"}, "or neither"),
        ({"twilio_sms_from": "+34911000000"}, "needs the account"),
        ({"public_url": "cc.example.com"}, "http(s) URL"),
        ({"public_url": "https://cc.example.com/?a=1"}, "no query"),
        ({"twilio_api_base_url": ""}, "http(s) URL"),
        ({"twilio_whatsapp_from": "14155238886", **TWILIO, "public_url": "https://x.example"}, "E.164"),
        ({"smtp_host": "smtp.example.com"}, "CENTRALITA_SMTP_FROM"),
        ({"smtp_user": "cc"}, "SMTP_PASSWORD"),
        ({"link_secret": "short"}, "at least 32"),
    ],
)
def test_broken_combinations_are_refused_with_the_setting_to_fix(values: dict[str, Any], words: str) -> None:
    with pytest.raises(
        ValidationError, match=words.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
    ):
        settings(**values)


def test_a_whatsapp_sender_is_written_as_twilio_addresses_it() -> None:
    configured = settings(**TWILIO, public_url="https://x.example", twilio_whatsapp_from="+14155238886")
    assert configured.twilio_whatsapp_from == "whatsapp:+14155238886"


def test_the_link_sender_needs_twilio_the_public_url_and_the_link_secret() -> None:
    base = {**TWILIO, "public_url": "https://x.example", "twilio_sms_from": "+34911000000"}
    assert MessagingChannels.from_settings(settings(**base)).link_sender(None) is None  # type: ignore[arg-type]
    with_secret = MessagingChannels.from_settings(settings(**base, link_secret="k" * 32))
    assert with_secret.link_sender(None) is not None  # type: ignore[arg-type]
