"""Reports from the database: reads the timeline, the cases and the dialer's attempts of a period into
`reporting.rows` and hands them to the pure KPI functions.

The queries stay on indexes that exist: interactions by `ix_interactions_started_at`, their touchpoints
through the unique (interaction_id, seq) index, a case's interactions by `ix_interactions_case_id`, dial
attempts by `ix_dial_attempts_campaign_dialed` (one range per campaign). Long ranges are read and
summarised a chunk at a time (a day of 15-minute or hourly buckets, a week of daily ones), so a report
over months streams out in constant memory. Reads only: nothing here writes or commits.

Two inputs come from inbound routing when it is wired (`ReportOptions`): agents' state spans
(occupancy) and each queue's service-level target; without them occupancy is None and every queue
uses the default target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cases.models import Case
from core.errors import InvalidInput
from core.timeline.models import Interaction, Touchpoint
from dialer import attempts as dialer_attempts
from dialer.models import Campaign, DialAttempt
from reporting.buckets import Interval, bucket_end, bucket_start
from reporting.journeys import JourneyBy, JourneyMap, journey_map
from reporting.kpis import (
    CampaignAttempt,
    GroupBy,
    KpiInputs,
    KpiOptions,
    KpiRow,
    contact_key,
    drop_off_table,
    summarise,
)
from reporting.rows import AgentStateSpan, CaseRecord, Contact, Step, seconds_between

AgentSpanSource = Callable[[Session, datetime, datetime], Sequence[AgentStateSpan]]
TargetSource = Callable[[Session], Mapping[str, float]]

# The longest range one report may cover, per interval: enough for a month of quarter hours, a quarter
# of hours, two years of days; more is a job for an export of the data itself.
DEFAULT_MAX_RANGE: dict[Interval, timedelta] = {
    Interval.QUARTER_HOUR: timedelta(days=31),
    Interval.HOUR: timedelta(days=92),
    Interval.DAY: timedelta(days=731),
}
_CHUNK_BUCKETS = {Interval.QUARTER_HOUR: 96, Interval.HOUR: 24, Interval.DAY: 7}


@dataclass(frozen=True)
class ReportOptions:
    zone: tzinfo = UTC  # the default time zone of buckets (a request may name another)
    kpis: KpiOptions = field(default_factory=KpiOptions)
    max_range: Mapping[Interval, timedelta] = field(default_factory=lambda: dict(DEFAULT_MAX_RANGE))
    agent_spans: AgentSpanSource | None = None
    service_level_targets: TargetSource | None = None


def check_range(start: datetime, end: datetime, interval: Interval, options: ReportOptions) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("from and to need a time zone (e.g. 2026-11-24T00:00:00+01:00 or ...Z)")
    if end <= start:
        raise InvalidInput(f"to ({end.isoformat()}) must be after from ({start.isoformat()})")
    longest = options.max_range[interval]
    asked = seconds_between(start, end)
    if asked > longest.total_seconds():
        raise InvalidInput(
            f"a report by {interval.value} covers at most {longest.days} days; "
            f"this one asks for {asked / 86400:.1f}"
        )


# --- reading rows ---------------------------------------------------------------------------------------

_CONTACT_COLUMNS = (
    Interaction.id,
    Interaction.channel,
    Interaction.direction,
    Interaction.started_at,
    Interaction.ended_at,
    Interaction.outcome,
    Interaction.customer_id,
    Interaction.case_id,
    Interaction.queue,
    Interaction.agent,
    Interaction.campaign,
    Interaction.csat,
    Interaction.attributes,
)
_STEP_COLUMNS = (
    Touchpoint.interaction_id,
    Touchpoint.kind,
    Touchpoint.occurred_at,
    Touchpoint.node,
    Touchpoint.duration_ms,
    Touchpoint.attributes,
)


def _contact(row: Any, steps: Sequence[Step] = ()) -> Contact:
    return Contact(
        interaction_id=row.id,
        channel=row.channel,
        direction=row.direction,
        started_at=row.started_at,
        ended_at=row.ended_at,
        outcome=row.outcome,
        customer_id=row.customer_id,
        case_id=row.case_id,
        queue=row.queue,
        agent=row.agent,
        campaign=row.campaign,
        csat=row.csat,
        attributes=row.attributes or {},
        steps=tuple(steps),
    )


def contacts_between(*, db: Session, start: datetime, end: datetime) -> list[Contact]:
    """Interactions that started in [start, end), each with its touchpoints: two queries."""
    in_range = (Interaction.started_at >= start, Interaction.started_at < end)
    connection = db.connection()
    steps: dict[int, list[Step]] = {}
    touchpoints = (
        select(*_STEP_COLUMNS)
        .join(Interaction, Interaction.id == Touchpoint.interaction_id)
        .where(*in_range)
        .order_by(Touchpoint.interaction_id, Touchpoint.seq)
    )
    for row in connection.execute(touchpoints):
        steps.setdefault(row.interaction_id, []).append(
            Step(row.kind, row.occurred_at, row.node, row.duration_ms, row.attributes or {})
        )
    interactions = select(*_CONTACT_COLUMNS).where(*in_range).order_by(Interaction.started_at, Interaction.id)
    return [_contact(row, steps.get(row.id, ())) for row in connection.execute(interactions)]


def contacts_of_interactions(*, db: Session, interaction_ids: Sequence[int]) -> list[Contact]:
    """The given interactions with their touchpoints (what the live figures re-read after an event)."""
    if not interaction_ids:
        return []
    connection = db.connection()
    steps: dict[int, list[Step]] = {}
    touchpoints = (
        select(*_STEP_COLUMNS)
        .where(Touchpoint.interaction_id.in_(interaction_ids))
        .order_by(Touchpoint.interaction_id, Touchpoint.seq)
    )
    for row in connection.execute(touchpoints):
        steps.setdefault(row.interaction_id, []).append(
            Step(row.kind, row.occurred_at, row.node, row.duration_ms, row.attributes or {})
        )
    interactions = select(*_CONTACT_COLUMNS).where(Interaction.id.in_(interaction_ids))
    return [_contact(row, steps.get(row.id, ())) for row in connection.execute(interactions)]


def cases_with_contacts_between(*, db: Session, start: datetime, end: datetime) -> list[CaseRecord]:
    """Cases with an interaction that started in [start, end), each with all of its interactions (any
    date: a case's first contact and its repeats decide its resolution)."""
    touched = (
        select(Interaction.case_id)
        .where(
            Interaction.started_at >= start, Interaction.started_at < end, Interaction.case_id.is_not(None)
        )
        .distinct()
    )
    return cases_by_id(db=db, case_ids=touched)


def cases_by_id(*, db: Session, case_ids: Any) -> list[CaseRecord]:
    """`case_ids`: a list of ids or a subquery selecting them."""
    connection = db.connection()
    contacts: dict[int, list[Contact]] = {}
    query = select(*_CONTACT_COLUMNS).where(Interaction.case_id.in_(case_ids))
    for row in connection.execute(query):
        contacts.setdefault(row.case_id, []).append(_contact(row))
    cases = select(
        Case.id, Case.customer_id, Case.status, Case.opened_at, Case.resolved_at, Case.reopened_count
    ).where(Case.id.in_(case_ids))
    return [
        CaseRecord(
            case_id=row.id,
            customer_id=row.customer_id,
            status=row.status,
            opened_at=row.opened_at,
            resolved_at=row.resolved_at,
            reopened_count=row.reopened_count,
            contacts=tuple(sorted(contacts.get(row.id, ()), key=lambda c: (c.started_at, c.interaction_id))),
        )
        for row in connection.execute(cases)
    ]


def campaign_names(*, db: Session) -> dict[int, str]:
    # Cut as the dialer cuts them for the timeline's interactions.campaign, so both group together.
    return {row.id: row.name[:64] for row in db.execute(select(Campaign.id, Campaign.name))}


def attempts_between(
    *, db: Session, start: datetime, end: datetime, campaigns: Mapping[int, str] | None = None
) -> list[CampaignAttempt]:
    """Dial attempts placed in [start, end), campaign by campaign (each a range on the campaign's
    dialed_at index), as the dialer's abandonment rules read them. Attempts the network never placed
    are left out, as the dialer's own figures leave them out."""
    names = campaign_names(db=db) if campaigns is None else campaigns
    found: list[CampaignAttempt] = []
    for campaign_id, name in names.items():
        query = (
            select(DialAttempt)
            .where(
                DialAttempt.campaign_id == campaign_id,
                DialAttempt.dialed_at >= start,
                DialAttempt.dialed_at < end,
                DialAttempt.disposition.is_distinct_from("not_placed"),
            )
            .order_by(DialAttempt.id)
        )
        for row in db.scalars(query):
            found.append(
                CampaignAttempt(
                    campaign=name,
                    call=dialer_attempts.outcome_of(row),  # the dialer's own reading of its rows
                    agent=row.agent,
                    interaction_id=row.interaction_id,
                )
            )
    return found


def kpi_inputs(*, db: Session, start: datetime, end: datetime, options: ReportOptions) -> KpiInputs:
    spans = options.agent_spans(db, start, end) if options.agent_spans is not None else ()
    return KpiInputs(
        contacts=contacts_between(db=db, start=start, end=end),
        cases=cases_with_contacts_between(db=db, start=start, end=end),
        attempts=attempts_between(db=db, start=start, end=end),
        agent_spans=spans,
    )


def kpi_options(*, db: Session, options: ReportOptions) -> KpiOptions:
    """The KPI options with each queue's service-level target, when routing supplies them."""
    if options.service_level_targets is None:
        return options.kpis
    targets = dict(options.service_level_targets(db))
    targets.update(options.kpis.service_level_seconds)  # an explicit setting wins
    return KpiOptions(
        service_level_seconds=targets,
        default_service_level_seconds=options.kpis.default_service_level_seconds,
        short_abandon_seconds=options.kpis.short_abandon_seconds,
        fcr_window=options.kpis.fcr_window,
        drop_wait=options.kpis.drop_wait,
        amd_false_positive_rate=options.kpis.amd_false_positive_rate,
    )


# --- reports --------------------------------------------------------------------------------------------


def chunks(
    start: datetime, end: datetime, interval: Interval, zone: tzinfo
) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) cut at bucket boundaries into pieces of a day (15 min, hour) or a week (day)."""
    current = start
    while current < end:
        boundary = bucket_start(current, interval, zone)
        for _ in range(_CHUNK_BUCKETS[interval]):
            boundary = bucket_end(boundary, interval, zone)
        following = min(boundary, end)
        yield current, following
        current = following


def kpi_report(
    *,
    db: Session,
    start: datetime,
    end: datetime,
    interval: Interval,
    zone: tzinfo,
    group_by: GroupBy,
    options: ReportOptions,
    now: datetime,
) -> Iterator[KpiRow]:
    """Every KPI per bucket and group, a chunk at a time (a generator: read it inside the session)."""
    check_range(start, end, interval, options)
    settings = kpi_options(db=db, options=options)
    for piece_start, piece_end in chunks(start, end, interval, zone):
        inputs = kpi_inputs(db=db, start=piece_start, end=piece_end, options=options)
        yield from summarise(
            inputs,
            start=piece_start,
            end=piece_end,
            interval=interval,
            zone=zone,
            group_by=group_by,
            options=settings,
            now=now,
        )


def drop_off_report(
    *,
    db: Session,
    start: datetime,
    end: datetime,
    interval: Interval,
    zone: tzinfo,
    group_by: GroupBy,
    options: ReportOptions,
) -> Iterator[tuple[datetime, str | None, str, int]]:
    """(bucket, group, IVR node, calls that hung up there), a chunk at a time."""
    check_range(start, end, interval, options)
    for piece_start, piece_end in chunks(start, end, interval, zone):
        contacts = contacts_between(db=db, start=piece_start, end=piece_end)
        yield from drop_off_table(
            contacts,
            start=piece_start,
            end=piece_end,
            interval=interval,
            zone=zone,
            key=contact_key(group_by),
        )


def journey_report(
    *,
    db: Session,
    start: datetime,
    end: datetime,
    by: JourneyBy = "customer",
    queue: str | None = None,
    campaign: str | None = None,
    channel: str | None = None,
    max_steps: int = 8,
    max_range: timedelta = timedelta(days=92),
) -> JourneyMap:
    """The Sankey data of the journeys in [start, end), optionally only those that touched a queue, a
    campaign or a channel. One pass: journeys cross any chunk boundary."""
    if end <= start:
        raise InvalidInput(f"to ({end.isoformat()}) must be after from ({start.isoformat()})")
    if seconds_between(start, end) > max_range.total_seconds():
        raise InvalidInput(f"a journey map covers at most {max_range.days} days")

    def touching(contact: Contact) -> bool:
        if queue is not None and contact.queue != queue and not _entered_queue(contact, queue):
            return False
        if campaign is not None and contact.campaign != campaign:
            return False
        return channel is None or contact.channel == channel

    wanted = None if queue is None and campaign is None and channel is None else touching
    contacts = contacts_between(db=db, start=start, end=end)
    return journey_map(contacts, by=by, max_steps=max_steps, touching=wanted)


def _entered_queue(contact: Contact, queue: str) -> bool:
    return any(
        step.kind == "queue_enter" and (step.attributes.get("queue") or step.node) == queue
        for step in contact.steps
    )
