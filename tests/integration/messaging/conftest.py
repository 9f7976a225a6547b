"""The service wired to a local Twilio (fake_twilio_api) and a real SMTP server (aiosmtpd), on the
suite's SQLite and PostgreSQL databases."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from fake_twilio_api import FakeTwilioApi
from fastapi.testclient import TestClient
from messaging_helpers import ACCOUNT, EMAIL_FROM, PUBLIC, SMS_FROM, TOKEN, WHATSAPP_FROM
from smtp_server import SmtpServer

from centralita.container import Container
from core.auth.roles import Role
from core.settings import Settings


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi(account_sid=ACCOUNT, auth_token=TOKEN) as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def wired(container: Container, twilio_api: FakeTwilioApi, smtp: SmtpServer) -> Iterator[Container]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=container.settings.database_url,
        api_key_cache_seconds=0,
        public_url=PUBLIC,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        twilio_api_base_url=twilio_api.base_url,
        twilio_sms_from=SMS_FROM,
        twilio_whatsapp_from=WHATSAPP_FROM,
        link_secret="a-link-secret-of-at-least-32-chars",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from=EMAIL_FROM,
        smtp_starttls=False,
    )
    configured = dataclasses.replace(container, settings=settings)
    yield configured
    if configured._journal is not None:
        configured._journal.close_pool()


@pytest.fixture
def api(wired: Container, make_key: Any) -> Iterator[TestClient]:
    with TestClient(wired.api()) as client:
        client.headers["Authorization"] = f"Bearer {make_key(Role.AGENT, 'Marta')}"
        yield client
