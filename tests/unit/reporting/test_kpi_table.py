"""The KPI table: rows per bucket and group, by arrival time, in the asked time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dialer.abandonment import CallOutcome
from dialer.call_network import CallEnd
from reporting.buckets import Interval
from reporting.kpis import CampaignAttempt, GroupBy, KpiInputs, KpiOptions, overall_row, summarise
from reporting.rows import AgentActivity, AgentStateSpan, Contact, Step

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def queued(
    interaction_id: int, minute: float, queue: str, wait_s: float, *, answered: bool, agent: str = ""
) -> Contact:
    entered = at(minute)
    steps = [Step("queue_enter", entered, attributes={"queue": queue})]
    if answered:
        steps.append(Step("agent_connect", entered + timedelta(seconds=wait_s), attributes={"agent": agent}))
    ended = entered + timedelta(seconds=wait_s + (120 if answered else 0))
    return Contact(
        interaction_id, "voice", "inbound", at(minute), ended, "transferred" if answered else "abandoned",
        steps=tuple(steps),
    )  # fmt: skip


def test_rows_per_hour_and_queue_with_each_queues_figures() -> None:
    contacts = [
        queued(1, 5, "billing", 10, answered=True, agent="ana"),  # 10:05, answered in 10 s
        queued(2, 10, "billing", 30, answered=True, agent="ana"),  # 10:10, answered in 30 s
        queued(3, 20, "sales", 40, answered=False),  # 10:20, hung up after 40 s
        queued(4, 70, "billing", 5, answered=True, agent="luis"),  # 11:10
    ]
    rows = summarise(
        KpiInputs(contacts=contacts), start=T0, end=at(120), interval=Interval.HOUR, zone=UTC,
        group_by=GroupBy.QUEUE, options=KpiOptions(default_service_level_seconds=20), now=NOW,
    )  # fmt: skip
    table = {(r.bucket_start.hour, r.group): r for r in rows}
    assert list(table) == [(10, "billing"), (10, "sales"), (11, "billing")]
    billing = table[(10, "billing")]
    # ASA (10 + 30) / 2 = 20; service level 1 hit (10 <= 20) of 2 = 0.5; AHT 120 s talk each
    assert (billing.queue_answered, billing.asa_seconds, billing.service_level) == (2, 20.0, 0.5)
    assert (billing.handled, billing.aht_seconds) == (2, 120.0)
    sales = table[(10, "sales")]
    # one abandon after 40 s (over 5 s: not short): 1 / 1; past the 20 s target: a miss -> 0 / 1
    assert (sales.abandonment_rate, sales.service_level, sales.asa_seconds) == (1.0, 0.0, None)


def test_day_buckets_follow_the_requested_time_zone() -> None:
    madrid = ZoneInfo("Europe/Madrid")
    late = Contact(1, "sms", "inbound", datetime(2026, 11, 24, 22, 30, tzinfo=UTC))  # 23:30 in Madrid
    later = Contact(2, "sms", "inbound", datetime(2026, 11, 24, 23, 30, tzinfo=UTC))  # 00:30 on the 25th
    start, end = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)
    rows = summarise(
        KpiInputs(contacts=[late, later]), start=start, end=end, interval=Interval.DAY, zone=madrid, now=NOW
    )
    assert [(r.bucket_start.day, r.contacts) for r in rows] == [(24, 1), (25, 1)]
    assert rows[0].bucket_start.utcoffset() == timedelta(hours=1)


def test_campaign_rows_carry_the_dialers_abandonment_and_the_agents_talk() -> None:
    def attempt(attempt_id: int, connected_after: float | None) -> CampaignAttempt:
        answered = at(1)
        connected = None if connected_after is None else answered + timedelta(seconds=connected_after)
        call = CallOutcome(
            attempt_id=attempt_id, dialed_at=at(0), answered_at=answered, connected_at=connected,
            ended_at=at(4), end=CallEnd.COMPLETED,
        )  # fmt: skip
        return CampaignAttempt("renewals", call, agent="ana")

    # connected in 1 s (talk 4 - 1 min - 1 s = 179 s), and one with no agent: abandoned -> 1 / 2
    rows = summarise(
        KpiInputs(attempts=[attempt(1, 1), attempt(2, None)]), start=T0, end=at(60), interval=Interval.HOUR,
        zone=UTC, group_by=GroupBy.CAMPAIGN, now=NOW,
    )  # fmt: skip
    (row,) = rows
    assert (row.group, row.outbound_dialed, row.outbound_abandonment_rate) == ("renewals", 2, 0.5)
    assert (row.handled, row.aht_seconds) == (1, 179.0)


def test_agent_time_is_spread_over_the_buckets_it_spans() -> None:
    # ana handles 10:30-11:30 and is ready 11:30-12:00: 10:00 bucket 30 min busy of 30 staffed -> 1.0;
    # 11:00 bucket 30 busy of 60 -> 0.5
    spans = [
        AgentStateSpan("ana", AgentActivity.HANDLING, at(30), at(90)),
        AgentStateSpan("ana", AgentActivity.READY, at(90), at(120)),
    ]
    rows = summarise(
        KpiInputs(agent_spans=spans), start=T0, end=at(120), interval=Interval.HOUR, zone=UTC,
        group_by=GroupBy.AGENT, now=NOW,
    )  # fmt: skip
    assert [(r.bucket_start.hour, r.group, r.occupancy) for r in rows] == [(10, "ana", 1.0), (11, "ana", 0.5)]


def test_an_empty_period_gives_an_empty_table_and_an_overall_row_of_nothing() -> None:
    assert summarise(KpiInputs(), start=T0, end=at(60), interval=Interval.HOUR, zone=UTC, now=NOW) == []
    row = overall_row(KpiInputs(), start=T0, end=at(60), zone=UTC, now=NOW)
    assert (row.contacts, row.asa_seconds, row.service_level, row.fcr_rate, row.occupancy) == (
        0,
        None,
        None,
        None,
        None,
    )
