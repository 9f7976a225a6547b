"""The agent state machine: every allowed move, and a clear refusal for each impossible one."""

from datetime import UTC, datetime, timedelta

import pytest

from routing.agent_state import (
    AgentEvent,
    AgentState,
    AgentStatus,
    Answer,
    Hangup,
    IllegalTransition,
    Login,
    Logout,
    Missed,
    Offer,
    Pause,
    Ready,
    Tick,
    Withdraw,
    transition,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
EP = "PJSIP/1001"

LOGGED_OUT = AgentStatus()
READY = AgentStatus(AgentState.READY, T0, endpoint=EP, idle_since=T0)
OFFERED = AgentStatus(AgentState.OFFERED, T0, endpoint=EP, call_id="c1", queue="billing", idle_since=T0)
ON_CALL = AgentStatus(AgentState.ON_CALL, T0, endpoint=EP, call_id="c1", queue="billing", idle_since=T0)
WRAP_UP = AgentStatus(
    AgentState.WRAP_UP, T0, endpoint=EP, call_id="c1", queue="billing", until=T0 + timedelta(seconds=30)
)
PAUSED = AgentStatus(AgentState.PAUSED, T0, endpoint=EP, reason="lunch")


def after(state: AgentState, **fields: object) -> AgentStatus:
    """A status entered at T1 on the agent's phone."""
    return AgentStatus(state, T1, endpoint=EP, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("before", "event", "expected"),
    [
        (LOGGED_OUT, Login(EP), AgentStatus(AgentState.READY, T1, endpoint=EP, idle_since=T1)),
        (READY, Offer("c2", "sales"), after(AgentState.OFFERED, call_id="c2", queue="sales", idle_since=T0)),
        (OFFERED, Answer(), after(AgentState.ON_CALL, call_id="c1", queue="billing", idle_since=T0)),
        (OFFERED, Withdraw(), AgentStatus(AgentState.READY, T1, endpoint=EP, idle_since=T0)),
        (OFFERED, Missed("no_answer"), AgentStatus(AgentState.PAUSED, T1, endpoint=EP, reason="missed call")),
        (OFFERED, Missed("busy"), AgentStatus(AgentState.PAUSED, T1, endpoint=EP, reason="phone busy")),
        (OFFERED, Missed("failed"), after(AgentState.PAUSED, reason="phone unreachable")),
        (
            ON_CALL,
            Hangup(45),
            after(
                AgentState.WRAP_UP,
                until=T1 + timedelta(seconds=45),
                call_id="c1",
                queue="billing",
                idle_since=T0,
            ),
        ),
        (ON_CALL, Hangup(0), AgentStatus(AgentState.READY, T1, endpoint=EP, idle_since=T1)),
        (WRAP_UP, Ready(), AgentStatus(AgentState.READY, T1, endpoint=EP, idle_since=T1)),
        (WRAP_UP, Pause("coaching"), AgentStatus(AgentState.PAUSED, T1, endpoint=EP, reason="coaching")),
        (WRAP_UP, Logout(), AgentStatus(AgentState.LOGGED_OUT, T1)),
        (READY, Pause("lunch"), AgentStatus(AgentState.PAUSED, T1, endpoint=EP, reason="lunch")),
        (PAUSED, Pause("meeting"), AgentStatus(AgentState.PAUSED, T1, endpoint=EP, reason="meeting")),
        (PAUSED, Ready(), AgentStatus(AgentState.READY, T1, endpoint=EP, idle_since=T1)),
        (PAUSED, Logout(), AgentStatus(AgentState.LOGGED_OUT, T1)),
        (READY, Logout(), AgentStatus(AgentState.LOGGED_OUT, T1)),
    ],
)
def test_allowed_moves(before: AgentStatus, event: AgentEvent, expected: AgentStatus) -> None:
    assert transition(before, event, T1) == expected


@pytest.mark.parametrize(
    ("before", "event"),
    [(READY, Ready()), (LOGGED_OUT, Logout()), (PAUSED, Pause("lunch")), (ON_CALL, Tick()), (READY, Tick())],
)
def test_a_move_to_the_same_state_changes_nothing(before: AgentStatus, event: AgentEvent) -> None:
    assert transition(before, event, T1) is before


@pytest.mark.parametrize(
    ("before", "event", "message"),
    [
        (LOGGED_OUT, Pause("lunch"), "cannot pause while logged out"),
        (LOGGED_OUT, Ready(), "cannot become ready while logged out"),
        (LOGGED_OUT, Offer("c1", "billing"), "only a ready agent"),
        (READY, Login("PJSIP/1002"), "already logged in on PJSIP/1001"),
        (LOGGED_OUT, Login(" "), "needs the endpoint"),
        (ON_CALL, Logout(), "cannot log out while on a call"),
        (OFFERED, Logout(), "cannot log out while a call is ringing"),
        (ON_CALL, Pause("lunch"), "pause after the call"),
        (READY, Pause("  "), "a pause needs a reason"),
        (PAUSED, Offer("c1", "billing"), "only a ready agent"),
        (WRAP_UP, Offer("c1", "billing"), "only a ready agent"),
        (READY, Answer(), "cannot answer"),
        (READY, Missed("no_answer"), "cannot miss a call"),
        (ON_CALL, Withdraw(), "cannot have an offer withdrawn"),
        (READY, Hangup(10), "cannot hang up"),
        (ON_CALL, Hangup(-1), "must not be negative"),
        (ON_CALL, Ready(), "cannot become ready while on a call"),
    ],
)
def test_impossible_moves_are_refused_saying_why(
    before: AgentStatus, event: AgentEvent, message: str
) -> None:
    with pytest.raises(IllegalTransition, match=message):
        transition(before, event, T1)


def test_wrap_up_ends_on_its_own_when_its_time_is_up() -> None:
    assert transition(WRAP_UP, Tick(), T0 + timedelta(seconds=29)) is WRAP_UP
    ended = transition(WRAP_UP, Tick(), T1)
    assert ended.state is AgentState.READY
    assert ended.idle_since == T0 + timedelta(seconds=30)  # idle from when wrap-up ended, not from the tick
