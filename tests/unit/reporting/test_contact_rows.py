"""How a contact's touchpoints become queue visits and an agent's handling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reporting.rows import Contact, Step, VisitResult, handling_of, queue_visits_of

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def call(
    *steps: Step, ended: float | None = 300, outcome: str | None = "transferred", **kw: object
) -> Contact:
    return Contact(
        1,
        "voice",
        "inbound",
        at(0),
        None if ended is None else at(ended),
        outcome,
        steps=steps,
        **kw,  # type: ignore[arg-type]
    )


def enter(seconds: float, queue: str) -> Step:
    return Step("queue_enter", at(seconds), node="to_queue", attributes={"queue": queue})


def test_a_visit_runs_from_entering_the_queue_to_the_agents_answer() -> None:
    contact = call(enter(10, "billing"), Step("agent_connect", at(42), attributes={"agent": "ana"}))
    (visit,) = queue_visits_of(contact)
    assert (visit.queue, visit.result, visit.agent, visit.wait_seconds()) == (
        "billing",
        VisitResult.ANSWERED,
        "ana",
        32.0,
    )


def test_leaving_reasons_say_abandoned_answered_or_left() -> None:
    def leave(reason: str | None) -> list[VisitResult]:
        attributes = {"reason": reason} if reason else {}
        steps = (enter(0, "q"), Step("queue_leave", at(20), attributes=attributes))
        return [v.result for v in queue_visits_of(call(*steps))]

    assert leave("hangup") == [VisitResult.ABANDONED]
    assert leave("left") == [VisitResult.ABANDONED]
    assert leave("answered") == [VisitResult.ANSWERED]
    assert leave("max_wait") == [VisitResult.LEFT]
    assert leave(None) == [VisitResult.ABANDONED]


def test_a_leave_without_reason_followed_by_an_answer_is_an_answer_at_the_connect() -> None:
    steps = (enter(0, "q"), Step("queue_leave", at(20)), Step("agent_connect", at(21)))
    (visit,) = queue_visits_of(call(*steps, agent="luis"))
    assert (visit.result, visit.wait_seconds(), visit.agent) == (VisitResult.ANSWERED, 21.0, "luis")


def test_overflow_to_another_queue_leaves_the_first_and_enters_the_second() -> None:
    steps = (enter(0, "billing"), enter(60, "overflow"), Step("agent_connect", at(75)))
    first, second = queue_visits_of(call(*steps))
    assert (first.queue, first.result, first.wait_seconds()) == ("billing", VisitResult.LEFT, 60.0)
    assert (second.queue, second.result, second.wait_seconds()) == ("overflow", VisitResult.ANSWERED, 15.0)


def test_an_open_visit_is_waiting_until_the_call_ends_then_abandoned_or_left() -> None:
    assert queue_visits_of(call(enter(0, "q"), ended=None, outcome=None))[0].result is VisitResult.WAITING
    assert queue_visits_of(call(enter(0, "q"), outcome="abandoned"))[0].result is VisitResult.ABANDONED
    assert queue_visits_of(call(enter(0, "q"), outcome="transferred"))[0].result is VisitResult.LEFT


def test_handling_splits_talk_and_hold_and_reads_the_wrap_up() -> None:
    # connected at 30, ended at 300: 270 s with the agent. Holds: 60-90 (paired with resume) = 30 s,
    # one of duration_ms 15000 = 15 s: hold 45, talk 270 - 45 = 225; wrap-up 20 s from the attributes
    steps = (
        enter(0, "billing"),
        Step("agent_connect", at(30), attributes={"agent": "ana"}),
        Step("hold", at(60)),
        Step("resume", at(90)),
        Step("hold", at(120), duration_ms=15000),
    )
    handling = handling_of(call(*steps, attributes={"wrap_up_seconds": 20}))
    assert handling is not None
    assert (handling.talk_seconds, handling.hold_seconds, handling.wrap_seconds) == (225.0, 45.0, 20.0)
    assert (handling.handle_seconds, handling.agent, handling.queue) == (290.0, "ana", "billing")


def test_no_handling_without_an_agent_or_before_the_end() -> None:
    assert handling_of(call(enter(0, "q"))) is None
    assert handling_of(call(Step("agent_connect", at(5)), ended=None)) is None
