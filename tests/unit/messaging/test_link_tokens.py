"""The tokens in the IVR's continuation links name a case and cannot be forged or altered."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from core.errors import InvalidInput
from messaging.continuation import LinkGrant, LinkTokens, continuation_url

SECRET = b"s" * 32
WHEN = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def test_a_token_carries_its_case_link_and_minute_and_stays_short() -> None:
    tokens = LinkTokens(SECRET)
    token = tokens.issue(case_id=123456, link="balance", issued_at=WHEN)
    assert tokens.read(token) == LinkGrant(123456, "balance", WHEN)
    assert len(token) <= 40 and token.isascii() and "=" not in token
    url = continuation_url("https://cc.example.com/", token)
    assert url == f"https://cc.example.com/l/{token}"


def test_a_token_from_another_secret_is_refused() -> None:
    token = LinkTokens(b"o" * 32).issue(case_id=1, link="chat", issued_at=WHEN)
    with pytest.raises(InvalidInput, match="not a link this service issued"):
        LinkTokens(SECRET).read(token)


def test_changing_the_case_in_a_token_breaks_it() -> None:
    tokens = LinkTokens(SECRET)
    token = tokens.issue(case_id=1, link="chat", issued_at=WHEN)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[7] ^= 0x02  # case 1 -> case 3
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(InvalidInput):
        tokens.read(forged)


@pytest.mark.parametrize("token", ["", "x", "!!!!", "A" * 12, "A" * 60])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidInput):
        LinkTokens(SECRET).read(token)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LinkTokens(b"short")
