"""What an agent's disposition does to the contact's next attempt, and which dispositions fit a call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from test_campaign_rules import body

from core.errors import InvalidInput
from dialer.agent_pool import AgentPool, AgentState
from dialer.campaign_rules import CampaignSettings, RetryDelays
from dialer.dispositions import (
    AgentDisposition,
    NextAttempt,
    check_call_back_time,
    next_attempt,
    reschedules,
)
from dialer.schemas import DispositionSet, PreviewSkip

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ENDED = NOW - timedelta(minutes=5)
DELAYS = RetryDelays(no_contact=1800)
LATER = NOW + timedelta(days=1)


def decide(disposition: AgentDisposition, *, attempts: int = 1, at: datetime | None = None) -> NextAttempt:
    return next_attempt(
        disposition, call_back_at=at, attempts=attempts, max_attempts=3, ended_at=ENDED, retry_delays=DELAYS
    )


@pytest.mark.parametrize(
    ("disposition", "attempts", "at", "status", "due"),
    [
        (AgentDisposition.SALE, 1, None, "done", None),
        (AgentDisposition.NOT_INTERESTED, 1, None, "done", None),
        (AgentDisposition.WRONG_NUMBER, 1, None, "failed", None),
        (AgentDisposition.DO_NOT_CALL, 1, None, "blocked", None),
        (AgentDisposition.CALL_BACK, 1, LATER, "pending", LATER),
        # The callee asked for the call: it is made even when the attempts are used up.
        (AgentDisposition.CALL_BACK, 3, LATER, "pending", LATER),
        (AgentDisposition.NO_CONTACT, 1, None, "pending", ENDED + timedelta(seconds=1800)),
        (AgentDisposition.NO_CONTACT, 3, None, "exhausted", None),
    ],
)
def test_each_disposition_decides_the_next_attempt(
    disposition: AgentDisposition, attempts: int, at: datetime | None, status: str, due: datetime | None
) -> None:
    decision = decide(disposition, attempts=attempts, at=at)
    assert (decision.status, decision.at) == (status, due)
    assert decision.reason


def test_a_call_back_without_a_time_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="time"):
        decide(AgentDisposition.CALL_BACK)


@pytest.mark.parametrize(
    ("disposition", "status", "latest", "expected"),
    [
        (AgentDisposition.SALE, "done", True, True),
        (AgentDisposition.CALL_BACK, "exhausted", True, True),
        (AgentDisposition.NO_CONTACT, "pending", True, True),
        # A later attempt exists: an old call's disposition must not undo it ...
        (AgentDisposition.NO_CONTACT, "pending", False, False),
        # ... except a request not to be called, whichever call it came on.
        (AgentDisposition.DO_NOT_CALL, "pending", False, True),
        # Being dialed or shown to an agent again, or out for good: left alone.
        (AgentDisposition.CALL_BACK, "dialing", True, False),
        (AgentDisposition.CALL_BACK, "previewing", True, False),
        (AgentDisposition.CALL_BACK, "blocked", True, False),
        (AgentDisposition.NO_CONTACT, "failed", True, False),
        (AgentDisposition.CALL_BACK, "skipped", True, False),
    ],
)
def test_a_disposition_reschedules_only_a_contact_it_still_speaks_for(
    disposition: AgentDisposition, status: str, latest: bool, expected: bool
) -> None:
    assert reschedules(disposition, contact_status=status, latest=latest) is expected


@pytest.mark.parametrize(
    ("disposition", "at", "message"),
    [
        (AgentDisposition.CALL_BACK, None, "needs `at`"),
        (AgentDisposition.CALL_BACK, NOW - timedelta(seconds=1), "in the past"),
        (AgentDisposition.CALL_BACK, NOW, "in the past"),
        (AgentDisposition.CALL_BACK, NOW + timedelta(days=400), "days ahead"),
        (AgentDisposition.CALL_BACK, datetime(2026, 11, 24, 18, 0), "UTC offset"),
        (AgentDisposition.SALE, LATER, "takes none"),
    ],
)
def test_call_back_times_that_do_not_fit_are_refused_clearly(
    disposition: AgentDisposition, at: datetime | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        check_call_back_time(disposition, at, now=NOW)


def test_fitting_call_back_times_pass() -> None:
    check_call_back_time(AgentDisposition.CALL_BACK, LATER, now=NOW)
    check_call_back_time(AgentDisposition.SALE, None, now=NOW)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"disposition": "call_back"}, "needs `at`"),
        ({"disposition": "sale", "at": "2026-11-24T18:00:00+01:00"}, "call_back only"),
        ({"disposition": "sale", "do_not_call_scope": "global"}, "do_not_call disposition only"),
        ({"disposition": "call_back", "at": "2026-11-24T18:00:00"}, "timezone"),
        ({"disposition": "maybe"}, "disposition"),
    ],
)
def test_the_disposition_request_refuses_bad_combinations(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DispositionSet.model_validate({"agent": "PJSIP/1001"} | body)


def test_a_skip_needs_a_reason_and_a_known_agent() -> None:
    with pytest.raises(ValidationError, match="reason"):
        PreviewSkip.model_validate({"agent": "PJSIP/1001"})
    with pytest.raises(ValidationError, match="agent"):
        PreviewSkip.model_validate({"agent": "not an endpoint", "reason": "x"})


def test_the_agent_who_placed_a_call_is_the_one_reserved_even_from_wrap_up() -> None:
    pool = AgentPool(["PJSIP/1001", "PJSIP/1002"], wrap_up_s=60, now=NOW)
    pool.reserve_agent("PJSIP/1002", 7, NOW)
    assert pool.agent("PJSIP/1002").state is AgentState.RESERVED
    assert pool.agent("PJSIP/1001").state is AgentState.IDLE
    pool.connected("PJSIP/1002", NOW)
    with pytest.raises(ValueError, match="talking"):
        pool.reserve_agent("PJSIP/1002", 8, NOW)
    pool.release("PJSIP/1002", NOW)  # wrap-up for 60 s; asking to dial again ends it
    pool.reserve_agent("PJSIP/1002", 8, NOW + timedelta(seconds=5))
    assert pool.agent("PJSIP/1002").attempt_id == 8
    with pytest.raises(LookupError):
        pool.reserve_agent("PJSIP/9999", 9, NOW)


def test_the_new_settings_have_defaults_and_bounds() -> None:
    settings = CampaignSettings.model_validate(body(mode="preview"))
    assert settings.preview_timeout_seconds == 120 and settings.do_not_call_disposition == "global"
    assert settings.retry_delays.no_contact == 7200 and settings.retry_delays.skipped == 3600
    for changes, where in (
        ({"preview_timeout_seconds": 5}, ("preview_timeout_seconds",)),
        ({"preview_timeout_seconds": 7200}, ("preview_timeout_seconds",)),
        ({"do_not_call_disposition": "nowhere"}, ("do_not_call_disposition",)),
        ({"retry_delays": {"no_contact": -1}}, ("retry_delays", "no_contact")),
        ({"retry_delays": {"skipped": -1}}, ("retry_delays", "skipped")),
    ):
        with pytest.raises(ValidationError) as caught:
            CampaignSettings.model_validate(body(**changes))
        assert [error["loc"] for error in caught.value.errors()] == [where]
