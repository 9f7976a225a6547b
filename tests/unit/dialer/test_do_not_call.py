"""Do-not-call at dial time: the global list, the campaign's list, consent and erasure."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.do_not_call import (
    CallConsent,
    DialBlock,
    DoNotCallLists,
    InMemoryNumberList,
    call_consent,
    dial_permission,
)

ANA = "+34600111222"
LUIS = "+34600333444"


def lists(global_: Sequence[str] = (), campaign: Sequence[str] = ()) -> DoNotCallLists:
    return DoNotCallLists(InMemoryNumberList.of(global_), InMemoryNumberList.of(campaign))


def consent(granted: bool) -> dict[str, Any]:
    return {"calls": {"granted": granted, "recorded_at": "2025-01-01T00:00:00+00:00", "source": "web"}}


def test_a_number_on_no_list_with_no_objection_may_be_dialed() -> None:
    permission = dial_permission(ANA, lists=lists(global_=[LUIS]))
    assert permission.allowed and permission.reason is None and permission.reasons == ()
    assert permission.detail == f"{ANA} may be dialed"


@pytest.mark.parametrize(
    ("global_", "campaign", "expected"),
    [
        ([ANA], [], (DialBlock.GLOBAL_DO_NOT_CALL,)),
        ([], [ANA], (DialBlock.CAMPAIGN_DO_NOT_CALL,)),
        ([ANA], [ANA], (DialBlock.GLOBAL_DO_NOT_CALL, DialBlock.CAMPAIGN_DO_NOT_CALL)),
    ],
)
def test_a_listed_number_is_refused_naming_every_list(
    global_: list[str], campaign: list[str], expected: tuple[DialBlock, ...]
) -> None:
    permission = dial_permission(ANA, lists=lists(global_, campaign), consents=consent(True))
    assert not permission.allowed and permission.reasons == expected
    assert "do-not-call list" in permission.detail


def test_a_listing_wins_over_a_consent_and_a_withdrawn_consent_always_blocks() -> None:
    assert (
        dial_permission(ANA, lists=lists([ANA]), consents=consent(True)).reason
        is DialBlock.GLOBAL_DO_NOT_CALL
    )
    withdrawn = dial_permission(ANA, lists=lists(), consents=consent(False))
    assert withdrawn.reasons == (DialBlock.CONSENT_WITHDRAWN,)
    assert "withdrew consent" in withdrawn.detail


def test_consent_is_needed_only_where_the_campaign_requires_it() -> None:
    assert dial_permission(ANA, lists=lists(), consents={}).allowed
    assert dial_permission(ANA, lists=lists(), consents={"sms": {"granted": True}}).allowed
    required = dial_permission(ANA, lists=lists(), consents={"sms": {"granted": True}}, require_consent=True)
    assert required.reasons == (DialBlock.NO_CONSENT,)
    assert (
        dial_permission(ANA, lists=lists(), consents=None, require_consent=True).reason
        is DialBlock.NO_CONSENT
    )
    assert dial_permission(ANA, lists=lists(), consents=consent(True), require_consent=True).allowed


@pytest.mark.parametrize(
    ("document", "state"),
    [
        (None, CallConsent.NOT_RECORDED),
        ({}, CallConsent.NOT_RECORDED),
        ({"calls": {"granted": True}}, CallConsent.GRANTED),
        ({"calls": {"granted": False}}, CallConsent.WITHDRAWN),
        ({"calls": {"granted": "yes"}}, CallConsent.UNREADABLE),
        ({"calls": True}, CallConsent.UNREADABLE),
        ({"calls": {}}, CallConsent.UNREADABLE),
    ],
)
def test_consent_documents_as_customers_store_them(
    document: dict[str, Any] | None, state: CallConsent
) -> None:
    assert call_consent(document) is state


def test_an_unreadable_consent_or_an_erased_customer_is_not_dialed() -> None:
    unreadable = dial_permission(ANA, lists=lists(), consents={"calls": {"granted": "yes"}})
    assert unreadable.reasons == (DialBlock.CONSENT_UNREADABLE,)
    erased = dial_permission(ANA, lists=lists(), customer_erased=True)
    assert erased.reasons == (DialBlock.CUSTOMER_ERASED,)


def test_numbers_not_in_e164_are_refused_rather_than_missed() -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        dial_permission("600 111 222", lists=lists([ANA]))
    with pytest.raises(ValueError, match=r"E\.164"):
        lists().screen(["0034600111222"])


class CountingList:
    """A list that answers like a database: one call per batch."""

    def __init__(self, numbers: set[str]) -> None:
        self.numbers = numbers
        self.calls = 0

    def listed(self, numbers: Collection[str]) -> AbstractSet[str]:
        self.calls += 1
        return {number for number in numbers if number in self.numbers}


def test_screening_a_batch_asks_each_list_once() -> None:
    global_, campaign = CountingList({ANA}), CountingList({LUIS, ANA})
    found = DoNotCallLists(global_, campaign).screen([ANA, LUIS, "+34600555666"])
    assert found == {
        ANA: (DialBlock.GLOBAL_DO_NOT_CALL, DialBlock.CAMPAIGN_DO_NOT_CALL),
        LUIS: (DialBlock.CAMPAIGN_DO_NOT_CALL,),
    }
    assert global_.calls == campaign.calls == 1
    assert DoNotCallLists(global_, campaign).screen([]) == {}


e164 = st.from_regex(r"\+[1-9][0-9]{6,13}", fullmatch=True)
consents = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["calls", "sms", "email"]),
        st.one_of(st.fixed_dictionaries({"granted": st.booleans()}), st.booleans(), st.text(max_size=3)),
    ),
)


@given(
    number=e164,
    global_=st.lists(e164, max_size=5),
    campaign=st.lists(e164, max_size=5),
    listed_in=st.sampled_from(["global", "campaign", "both"]),
    document=consents,
    require=st.booleans(),
)
def test_a_dnc_number_is_never_allowed(
    number: str,
    global_: list[str],
    campaign: list[str],
    listed_in: str,
    document: dict[str, Any] | None,
    require: bool,
) -> None:
    if listed_in in ("global", "both"):
        global_ = [*global_, number]
    if listed_in in ("campaign", "both"):
        campaign = [*campaign, number]
    permission = dial_permission(
        number, lists=lists(global_, campaign), consents=document, require_consent=require
    )
    assert not permission.allowed
    assert {DialBlock.GLOBAL_DO_NOT_CALL, DialBlock.CAMPAIGN_DO_NOT_CALL} & set(permission.reasons)


@given(number=e164, others=st.lists(e164, max_size=5), document=consents, require=st.booleans())
def test_allowed_exactly_when_no_list_and_no_consent_rule_objects(
    number: str, others: list[str], document: dict[str, Any] | None, require: bool
) -> None:
    others = [other for other in others if other != number]
    permission = dial_permission(
        number, lists=lists(others, others), consents=document, require_consent=require
    )
    state = call_consent(document)
    expected = state is CallConsent.GRANTED or (state is CallConsent.NOT_RECORDED and not require)
    assert permission.allowed is expected
