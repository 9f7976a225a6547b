"""The dialer's view of its agents: who is free, for how long they have been, and wrap-up."""

from datetime import UTC, datetime, timedelta

import pytest

from dialer.agent_pool import AgentPool, AgentState

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_longest_idle_agent_is_reserved_first() -> None:
    pool = AgentPool(["PJSIP/1001", "PJSIP/1002"], wrap_up_s=15, now=T0)
    first = pool.reserve(1, at(1))
    assert first is not None and first.endpoint == "PJSIP/1001"
    pool.release("PJSIP/1001", at(2))  # a machine: back to idle, now the most recently idle
    second = pool.reserve(2, at(3))
    assert second is not None and second.endpoint == "PJSIP/1002"


def test_a_call_goes_reserved_talking_wrap_up_idle() -> None:
    pool = AgentPool(["PJSIP/1001"], wrap_up_s=15, now=T0)
    agent = pool.reserve(7, at(0))
    assert agent is not None and agent.attempt_id == 7
    assert pool.reserve(8, at(0)) is None
    pool.connected("PJSIP/1001", at(1))
    snapshot = pool.snapshot(at(61))
    assert snapshot.talking_elapsed_s == (60.0,) and snapshot.idle == 0
    pool.release("PJSIP/1001", at(61))
    assert pool.snapshot(at(70)).wrap_up_remaining_s == (6.0,)
    assert pool.reserve(9, at(75)) is None
    assert pool.reserve(9, at(76)) is not None  # wrap-up ended at 76


def test_paused_agents_are_not_staffed_and_cannot_be_paused_on_a_call() -> None:
    pool = AgentPool(["PJSIP/1001", "PJSIP/1002"], wrap_up_s=0, now=T0)
    pool.pause("PJSIP/1002", at(0))
    assert pool.snapshot(at(0)).staffed == 1
    pool.reserve(1, at(0))
    with pytest.raises(ValueError, match="on a call"):
        pool.pause("PJSIP/1001", at(0))
    pool.resume("PJSIP/1002", at(5))
    assert pool.agent("PJSIP/1002").state is AgentState.IDLE


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one agent"):
        AgentPool([], wrap_up_s=15, now=T0)
    with pytest.raises(ValueError, match="negative"):
        AgentPool(["PJSIP/1001"], wrap_up_s=-1, now=T0)
    pool = AgentPool(["PJSIP/1001"], wrap_up_s=15, now=T0)
    with pytest.raises(LookupError, match="not an agent"):
        pool.agent("PJSIP/9")
    with pytest.raises(ValueError, match="not reserved"):
        pool.connected("PJSIP/1001", T0)
