"""The pure rules behind the continuation page: how long a link lasts, the forms' nonces, what of a case
and a name the customer may see, what a message may be, and how often a link may post."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.routers.continuation import PostingGuard
from core.errors import InvalidInput
from messaging.continuation import (
    LINK_LIFETIME,
    MESSAGE_MAX_CHARS,
    LinkExpired,
    LinkTokens,
    MessageRefused,
    clean_message,
    clock_zone,
    first_name,
    neutral_subject,
)

SECRET = b"s" * 32
WHEN = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def test_a_link_lasts_its_lifetime_and_then_expires() -> None:
    tokens = LinkTokens(SECRET)
    token = tokens.issue(case_id=7, link="chat", issued_at=WHEN)
    assert tokens.read_current(token, now=WHEN + LINK_LIFETIME).case_id == 7
    with pytest.raises(LinkExpired):
        tokens.read_current(token, now=WHEN + LINK_LIFETIME + timedelta(minutes=1))
    with pytest.raises(InvalidInput):  # "issued" in the future: not one of ours
        tokens.read_current(token, now=WHEN - timedelta(hours=1))
    with pytest.raises(InvalidInput):
        LinkTokens(b"o" * 32).read_current(token, now=WHEN)


def test_a_form_nonce_holds_for_its_link_only_and_for_a_while() -> None:
    tokens = LinkTokens(SECRET)
    token = tokens.issue(case_id=7, link="chat", issued_at=WHEN)
    other = tokens.issue(case_id=8, link="chat", issued_at=WHEN)
    nonce = tokens.form_nonce(token, now=WHEN)
    assert nonce != tokens.form_nonce(token, now=WHEN)  # random per page
    assert tokens.form_nonce_valid(token, nonce, now=WHEN + timedelta(hours=11))
    assert not tokens.form_nonce_valid(token, nonce, now=WHEN + timedelta(hours=13))
    assert not tokens.form_nonce_valid(other, nonce, now=WHEN)
    assert not LinkTokens(b"o" * 32).form_nonce_valid(token, nonce, now=WHEN)
    for garbage in ("", "x", "!!!!", nonce[:-2], nonce + "AA"):
        assert not tokens.form_nonce_valid(token, garbage, now=WHEN)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Ana Pérez Gómez", "Ana"),
        ("Jean-Luc Picard", "Jean-Luc"),
        ("O'Neil", "O'Neil"),
        ("+34 600 111 222", None),
        ("ana@example.com", None),
        ("R2D2", None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_first_name_that_is_a_name_is_shown(name: str | None, shown: str | None) -> None:
    assert first_name(name) == shown


@pytest.mark.parametrize(
    ("subject", "shown"),
    [
        ("Cargo no reconocido", "Cargo no reconocido"),
        ("Llamar al +34 600 111 222 o a ana@example.com", "Llamar al … o a …"),
        ("Tarjeta 4539 5787 6362 1486 bloqueada", "Tarjeta … bloqueada"),
        ("Factura 2024-01", "Factura 2024-01"),
        ("Callback request", None),
        (None, None),
    ],
)
def test_a_subject_is_shown_without_numbers_or_addresses(subject: str | None, shown: str | None) -> None:
    assert neutral_subject(subject) == shown


def test_a_message_is_trimmed_and_bounded() -> None:
    assert clean_message("  Hola\r\n\x07¿qué tal?\r ") == "Hola\n¿qué tal?"
    assert clean_message("é" * MESSAGE_MAX_CHARS) == "é" * MESSAGE_MAX_CHARS
    with pytest.raises(MessageRefused) as empty:
        clean_message(" \n\t ")
    with pytest.raises(MessageRefused) as long:
        clean_message("x" * (MESSAGE_MAX_CHARS + 1))
    assert (empty.value.rule, long.value.rule) == ("empty", "too_long")


def test_a_number_in_several_zones_is_read_on_the_likeliest_clock() -> None:
    assert clock_zone("+34699000111", WHEN) == "Europe/Madrid"  # a mobile: the mainland, not the Canaries
    assert clock_zone("+34922000000", WHEN) == "Atlantic/Canary"  # a Tenerife landline
    assert clock_zone("+447700900123", WHEN) is None  # no zone known


def test_a_link_posts_only_its_allowance_in_each_window() -> None:
    now = [0.0]
    guard = PostingGuard(limits={"message": (2, 60.0)}, clock=lambda: now[0], max_entries=3)
    assert [guard.allow("message", "a") for _ in range(3)] == [True, True, False]
    assert guard.allow("message", "b")  # another link has its own
    now[0] = 61.0
    assert guard.allow("message", "a")  # the window moved on


def test_a_nonce_is_taken_once_until_given_back_and_memory_stays_bounded() -> None:
    guard = PostingGuard(clock=lambda: 0.0, max_entries=3)
    assert guard.take_nonce("n1") and not guard.take_nonce("n1")
    guard.give_back("n1")
    assert guard.take_nonce("n1")
    for n in range(10):
        guard.take_nonce(f"m{n}")
        guard.allow("message", f"link{n}")
    assert len(guard._nonces) <= 3 and len(guard._posts) <= 3
