"""What the messaging integration tests share: the service's addresses and credentials, posting as
Twilio does (signed), and small database helpers."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from centralita.container import Container
from core.customers import service as customers
from core.customers.identities import IdentityKind
from core.customers.schemas import CustomerCreate, IdentityIn
from core.db import Base, unit_of_work

ACCOUNT = "AC" + "c3" * 16
TOKEN = "the-account-auth-token-for-tests"
PUBLIC = "https://cc.example.com"
SMS_FROM = "+34911000000"
WHATSAPP_FROM = "+14155238886"
EMAIL_FROM = "Soporte Meridiano <soporte@meridiano.example>"


def twilio_post(
    client: TestClient,
    path: str,
    form: dict[str, str],
    *,
    token: str = TOKEN,
    signed_url: str | None = None,
    signature: str | None = "sign",
) -> Response:
    """Posts `form` as Twilio would, signed over PUBLIC + path (or `signed_url`) with `token`;
    `signature=None` sends no signature header."""
    headers = {}
    if signature is not None:
        url = signed_url or f"{PUBLIC}{path}"
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(url, form)
    return client.post(path, data=form, headers=headers)


def customer(container: Container, *identities: tuple[IdentityKind, str], **fields: Any) -> int:
    with unit_of_work(container.session_factory) as db:
        data = CustomerCreate(identities=[IdentityIn(kind=k, value=v) for k, v in identities], **fields)
        return customers.create_customer(db=db, data=data, region="ES").id


def count(container: Container, model: type[Base]) -> int:
    with container.session_factory() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)
