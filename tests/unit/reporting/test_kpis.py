"""Every KPI on small hand-worked cases: the arithmetic is in the comments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.abandonment import CallOutcome
from dialer.call_network import AmdVerdict, CallEnd
from reporting.kpis import (
    average_handle_time,
    average_speed_of_answer,
    callbacks,
    channel_switches,
    contacts_per_channel,
    csat,
    first_contact_resolution,
    inbound_abandonment,
    ivr_containment,
    ivr_drop_off,
    occupancy,
    outbound_abandonment,
    service_level,
    waiting_now,
)
from reporting.rows import (
    AgentActivity,
    AgentStateSpan,
    CaseRecord,
    Contact,
    Handling,
    QueueVisit,
    Step,
    VisitResult,
)

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def visit(result: VisitResult, wait: float | None, queue: str = "billing") -> QueueVisit:
    ended = None if wait is None else at(wait)
    return QueueVisit(queue=queue, entered_at=T0, result=result, ended_at=ended)


A, X, L, W = VisitResult.ANSWERED, VisitResult.ABANDONED, VisitResult.LEFT, VisitResult.WAITING


# --- ASA and AHT ---------------------------------------------------------------------------------------


def test_asa_averages_the_waits_of_answered_calls_only() -> None:
    # answered after 10 s, 20 s and 45 s: (10 + 20 + 45) / 3 = 25 s; the abandoned 100 s wait is no answer
    visits = [visit(A, 10), visit(A, 20), visit(A, 45), visit(X, 100)]
    assert average_speed_of_answer(visits) == 25.0


def test_asa_of_no_answered_call_is_none_not_zero() -> None:
    assert average_speed_of_answer([]) is None
    assert average_speed_of_answer([visit(X, 30)]) is None


def test_aht_adds_talk_hold_and_wrap_up() -> None:
    # (240 + 30 + 30) = 300 and (100 + 0 + 20) = 120: (300 + 120) / 2 = 210 s
    handled = [
        Handling(answered_at=T0, talk_seconds=240, hold_seconds=30, wrap_seconds=30),
        Handling(answered_at=T0, talk_seconds=100, wrap_seconds=20),
    ]
    assert average_handle_time(handled) == 210.0
    assert average_handle_time([]) is None


# --- service level -------------------------------------------------------------------------------------


def test_service_level_leaves_out_calls_abandoned_before_the_target() -> None:
    # target 20 s. answered at 5 and 20 s: hits (20 <= 20); answered at 30 s: a miss;
    # abandoned at 10 s: before the target, neither; abandoned at 25 s: a miss; still waiting: not yet.
    # hits 2 / (3 answered + 1 abandoned after the target) = 2 / 4 = 0.5
    visits = [visit(A, 5), visit(A, 20), visit(A, 30), visit(X, 10), visit(X, 25), visit(W, None)]
    assert service_level(visits, default_seconds=20) == 0.5


def test_service_level_uses_each_queue_target() -> None:
    # sales' target is 60 s: its 50 s answer is a hit; billing keeps the default 20 s: its 30 s is a miss
    # 1 / 2 = 0.5
    visits = [visit(A, 50, queue="sales"), visit(A, 30, queue="billing")]
    assert service_level(visits, targets={"sales": 60}, default_seconds=20) == 0.5


def test_service_level_counts_a_call_sent_elsewhere_after_the_target_as_a_miss() -> None:
    # answered at 10 s (hit); left for voicemail after 90 s (a miss); left after 3 s (neither): 1 / 2
    assert service_level([visit(A, 10), visit(L, 90), visit(L, 3)], default_seconds=20) == 0.5


def test_service_level_with_nothing_to_count_is_none() -> None:
    assert service_level([]) is None
    assert service_level([visit(X, 3), visit(W, None)], default_seconds=20) is None


# --- inbound abandonment -------------------------------------------------------------------------------


def test_inbound_abandonment_excludes_short_abandons_from_both_sides() -> None:
    # 6 answered, 2 abandoned after 30 s and 8 s, 2 short abandons (2 s and 4.9 s, under 5 s), 1 left:
    # rate = 2 / (6 + 2 + 1) = 2 / 9; offered counts every visit that ended: 6 + 2 + 2 + 1 = 11
    visits = [visit(A, 10)] * 6 + [visit(X, 30), visit(X, 8), visit(X, 2), visit(X, 4.9), visit(L, 60)]
    figures = inbound_abandonment([*visits, visit(W, None)], short_abandon_seconds=5)
    assert figures.abandonment_rate == pytest.approx(2 / 9)
    assert (figures.offered, figures.answered, figures.abandoned) == (11, 6, 2)
    assert (figures.short_abandons, figures.left, figures.waiting) == (2, 1, 1)


def test_short_abandon_threshold_is_configurable() -> None:
    # with a 10 s threshold the 8 s abandon is short too: 1 / (1 answered + 1 abandoned) = 0.5
    figures = inbound_abandonment([visit(A, 3), visit(X, 30), visit(X, 8)], short_abandon_seconds=10)
    assert figures.abandonment_rate == 0.5
    assert figures.short_abandons == 1


def test_inbound_abandonment_of_only_short_abandons_is_none() -> None:
    assert inbound_abandonment([visit(X, 1)]).abandonment_rate is None
    assert inbound_abandonment([]).abandonment_rate is None


def test_waiting_now_reports_the_longest_wait() -> None:
    visits = [
        QueueVisit("billing", at(0), W),
        QueueVisit("billing", at(40), W),
        QueueVisit("billing", at(10), A, ended_at=at(12)),
    ]
    now = at(100)  # the oldest waiting call entered at 0: 100 s
    waiting = waiting_now(visits, now=now)
    assert (waiting.calls, waiting.longest_wait_seconds, waiting.oldest_entered_at) == (2, 100.0, at(0))
    assert waiting_now([], now=now).longest_wait_seconds is None


# --- outbound abandonment (the dialer's definition) ----------------------------------------------------


def test_outbound_abandonment_follows_the_dialers_rule() -> None:
    def call(attempt: int, **kwargs: object) -> CallOutcome:
        return CallOutcome(
            attempt_id=attempt, dialed_at=at(0), ended_at=at(60), end=CallEnd.COMPLETED, **kwargs
        )  # type: ignore[arg-type]

    calls = [
        call(1, answered_at=at(10), connected_at=at(11)),  # agent within 2 s: connected
        call(2, answered_at=at(10), connected_at=at(11)),  # connected
        call(3, answered_at=at(10), connected_at=at(13)),  # agent after 3 s: abandoned
        call(4, answered_at=at(10), live_person=False),  # a machine: not a live call
        call(5, answered_at=at(10), amd=AmdVerdict.MACHINE),  # AMD hung up, unverified: estimated
        CallOutcome(attempt_id=6, dialed_at=at(0), ended_at=at(25), end=CallEnd.NO_ANSWER),
    ]
    # live calls: 2 connected + 1 abandoned = 3; rate 1 / 3
    figures = outbound_abandonment(calls, now=at(120))
    assert figures.dialed == 6
    assert (figures.connected, figures.abandoned, figures.live_calls) == (2, 1.0, 3.0)
    assert figures.abandonment_rate == pytest.approx(1 / 3)
    # with Ofcom's estimate of AMD false positives at 50%: 0.5 more abandoned and live: 1.5 / 3.5
    estimated = outbound_abandonment(calls, now=at(120), amd_false_positive_rate=0.5)
    assert estimated.abandonment_rate == pytest.approx(1.5 / 3.5)


def test_outbound_abandonment_without_live_calls_is_none() -> None:
    unanswered = CallOutcome(attempt_id=1, dialed_at=at(0), ended_at=at(25), end=CallEnd.NO_ANSWER)
    assert outbound_abandonment([unanswered], now=at(60)).abandonment_rate is None
    assert outbound_abandonment([], now=at(60)).dialed == 0


# --- occupancy -----------------------------------------------------------------------------------------


def test_occupancy_is_busy_time_over_staffed_time() -> None:
    # ana: ready 0-600, on calls 600-2400, wrap-up 2400-2700, paused 2700-3600 (not staffed)
    # busy 1800 + 300 = 2100; staffed 600 + 2100 = 2700: 2100 / 2700 = 0.777...
    spans = [
        AgentStateSpan("ana", AgentActivity.READY, at(0), at(600)),
        AgentStateSpan("ana", AgentActivity.HANDLING, at(600), at(2400)),
        AgentStateSpan("ana", AgentActivity.WRAP_UP, at(2400), at(2700)),
        AgentStateSpan("ana", AgentActivity.AWAY, at(2700), at(3600)),
    ]
    assert occupancy(spans, start=at(0), end=at(3600)) == pytest.approx(2100 / 2700)


def test_occupancy_clips_spans_to_the_period_and_runs_open_ones_to_its_end() -> None:
    # period 1800-3600. ready 0-2700 counts 1800-2700 = 900; on a call since 2700 (open) to 3600 = 900
    # 900 / 1800 = 0.5
    spans = [
        AgentStateSpan("ana", AgentActivity.READY, at(0), at(2700)),
        AgentStateSpan("ana", AgentActivity.HANDLING, at(2700)),
    ]
    assert occupancy(spans, start=at(1800), end=at(3600)) == 0.5
    assert occupancy([], start=at(0), end=at(60)) is None


# --- cases: first-contact resolution and channel switches ---------------------------------------------


def contact(
    interaction_id: int, channel: str, start: float, *, direction: str = "inbound", outcome: str | None = None
) -> Contact:
    return Contact(interaction_id, channel, direction, at(start), at(start + 60), outcome)


DAY = 86400.0


def case(case_id: int, *contacts: Contact, resolved: float | None = None, reopened: int = 0) -> CaseRecord:
    return CaseRecord(
        case_id=case_id,
        customer_id=1,
        status="resolved" if resolved is not None else "open",
        opened_at=at(0),
        resolved_at=None if resolved is None else at(resolved),
        reopened_count=reopened,
        contacts=contacts,
    )


def test_fcr_counts_cases_resolved_with_one_contact_on_any_channel() -> None:
    cases = [
        case(1, contact(1, "whatsapp", 0), resolved=600),  # one WhatsApp contact: FCR
        case(2, contact(2, "voice", 0), contact(3, "sms", DAY), resolved=DAY + 60),  # call then SMS: not
        case(3, contact(4, "email", 0), resolved=600, reopened=1),  # reopened: not
        # an unanswered callback attempt is no contact with the customer: still FCR
        case(
            4,
            contact(5, "voice", 0),
            contact(6, "voice", 600, direction="outbound", outcome="no_answer"),
            resolved=900,
        ),
        case(5, contact(7, "voice", 0)),  # open: not in the denominator
        case(
            6, contact(8, "voice", 0), contact(9, "voice", 8 * DAY), resolved=600
        ),  # repeat after 7 days: FCR
    ]
    # resolved: cases 1, 2, 3, 4, 6 = 5; FCR: 1, 4, 6 = 3 -> 3 / 5 = 0.6
    figures = first_contact_resolution(cases, window=timedelta(days=7))
    assert (figures.resolved, figures.first_contact_resolved) == (5, 3)
    assert figures.rate == pytest.approx(0.6)


def test_fcr_window_is_configurable() -> None:
    # the repeat contact 8 days later falls inside a 10-day window: not FCR -> 0 / 1
    cases = [case(6, contact(8, "voice", 0), contact(9, "voice", 8 * DAY), resolved=600)]
    assert first_contact_resolution(cases, window=timedelta(days=10)).rate == 0.0
    # resolved 8 days after the only contact, outside a 7-day window: not first-contact either
    late = [case(7, contact(10, "email", 0), resolved=8 * DAY)]
    assert first_contact_resolution(late, window=timedelta(days=7)).rate == 0.0
    assert first_contact_resolution([]).rate is None


def test_channel_switches_per_case() -> None:
    # voice -> sms -> sms -> voice: 2 switches; email alone: 0; a case with no contact is not counted
    # (2 + 0) / 2 cases = 1.0
    cases = [
        case(
            1, contact(1, "voice", 0), contact(2, "sms", 10), contact(3, "sms", 20), contact(4, "voice", 30)
        ),
        case(2, contact(5, "email", 0)),
        case(3),
    ]
    figures = channel_switches(cases)
    assert (figures.cases, figures.switches, figures.per_case) == (2, 2, 1.0)
    assert channel_switches([]).per_case is None


# --- contacts ------------------------------------------------------------------------------------------


def test_contacts_per_channel_leaves_out_unanswered_attempts_and_notes() -> None:
    contacts = [
        contact(1, "voice", 0),
        contact(2, "voice", 0, direction="outbound", outcome="completed"),
        contact(3, "voice", 0, direction="outbound", outcome="busy"),
        contact(4, "sms", 0),
        contact(5, "email", 0, direction="internal"),
    ]
    assert contacts_per_channel(contacts) == {"sms": 1, "voice": 2}


def test_callbacks_offered_accepted_completed() -> None:
    offer = Step("callback_offered", at(5), node="offer")
    accept = Step("callback_accepted", at(8), node="offer")
    contacts = [
        Contact(1, "voice", "inbound", at(0), steps=(offer, accept)),
        Contact(2, "voice", "inbound", at(0), steps=(offer,)),  # offered, declined
        Contact(3, "voice", "outbound", at(600), outcome="completed", attributes={"callback_for": 1}),
        Contact(4, "voice", "outbound", at(600), outcome="no_answer", attributes={"callback_for": 2}),
        Contact(5, "voice", "outbound", at(600), outcome="completed"),  # a campaign call, no callback
    ]
    figures = callbacks(contacts)
    assert (figures.offered, figures.accepted, figures.completed) == (2, 1, 1)


def test_csat_average_and_top_two_box() -> None:
    # scores 5, 4, 2, 1 (and one without a survey): mean 12 / 4 = 3.0; 4 or 5: 2 / 4 = 0.5
    contacts = [
        Contact(i, "voice", "inbound", at(0), csat=score) for i, score in enumerate([5, 4, 2, 1, None])
    ]
    figures = csat(contacts)
    assert (figures.responses, figures.average, figures.satisfied_share) == (4, 3.0, 0.5)
    assert csat([]).average is None


# --- the IVR -------------------------------------------------------------------------------------------


def ivr_call(interaction_id: int, outcome: str | None, *nodes: str) -> Contact:
    steps = tuple(Step("ivr_node", at(i), node=node) for i, node in enumerate(nodes))
    ended = None if outcome is None else at(60)
    return Contact(
        interaction_id,
        "voice",
        "inbound",
        at(0),
        ended,
        outcome,
        attributes={"flow": "banco_es"},
        steps=steps,
    )


def test_ivr_containment_counts_calls_finished_in_the_ivr() -> None:
    # 4 IVR calls ended: 2 contained, 1 transferred, 1 abandoned -> 2 / 4 = 0.5; one still in the IVR
    contacts = [
        ivr_call(1, "contained", "welcome", "balance"),
        ivr_call(2, "contained", "welcome", "hours"),
        ivr_call(3, "transferred", "welcome", "menu"),
        ivr_call(4, "abandoned", "welcome", "menu"),
        ivr_call(5, None, "welcome"),
        Contact(6, "sms", "inbound", at(0), at(1), "delivered"),  # not an IVR call
    ]
    figures = ivr_containment(contacts)
    assert (figures.calls, figures.contained, figures.abandoned, figures.in_ivr) == (4, 2, 1, 1)
    assert figures.containment == 0.5
    assert ivr_containment([]).containment is None


def test_ivr_drop_off_names_the_last_node_of_abandoned_calls() -> None:
    contacts = [
        ivr_call(1, "abandoned", "welcome", "menu"),
        ivr_call(2, "abandoned", "welcome", "menu"),
        ivr_call(3, "abandoned", "welcome", "menu", "id_check"),
        ivr_call(4, "contained", "welcome", "menu"),
        ivr_call(5, "abandoned"),  # hung up before the first node
    ]
    assert ivr_drop_off(contacts) == {"menu": 2, "id_check": 1, "(before the first node)": 1}
