"""Contact-center KPIs as pure functions over `reporting.rows`, and the table of them per group and bucket.

Definitions (each function's docstring repeats its own):

- **ASA**: mean wait of the queue visits that were answered (abandoned ones do not count).
- **AHT**: mean of talk + hold + wrap-up over handled contacts.
- **Service level**: answered within the queue's target / (answered + abandoned at or after the target +
  left at or after it). Calls abandoned (or sent elsewhere) *before* the target are neither hits nor
  misses: they leave both sides, the most common convention (ICMI's; Genesys and Cisco offer it). Calls
  still waiting are not counted until they end.
- **Inbound abandonment**: visits the caller hung up on / visits that ended, both without the short
  abandons (hung up within `short_abandon_seconds`, default 5: misdials and changed minds).
- **Outbound abandonment**: the dialer's definition (`dialer.abandonment`): abandoned live calls / live
  calls, with its AMD estimate.
- **Occupancy**: (handling + wrap-up time) / (handling + wrap-up + ready time) of agents' state spans;
  paused and logged-out time is outside it.
- **First-contact resolution, across channels**: of the cases resolved, the share resolved with exactly
  one customer contact (any channel; unanswered outbound attempts and internal notes are not contacts)
  within `fcr_window` of that contact, never reopened, and with no other contact in that window.
- **Channel switches per case**: over cases with a customer contact, the number of times consecutive
  contacts of a case change channel, divided by the cases.
- **CSAT**: responses (the `csat` score, 1-5), their mean, and the share of 4s and 5s (top-two-box).
- **IVR containment**: IVR calls that ended `contained` / IVR calls that ended. Callers hanging up in
  the IVR count against it; `ivr_abandoned` says how many did, and `ivr_drop_off` at which node.

Every ratio is None, never 0, when its denominator is zero: "no calls" is not "0% service level".
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from core.timeline.schemas import Outcome, TouchpointKind
from dialer.abandonment import LEGAL_DROP_WAIT, CallOutcome, abandonment_rate
from reporting.buckets import Interval, bucket_end, bucket_start
from reporting.rows import (
    AgentActivity,
    AgentStateSpan,
    CaseRecord,
    Contact,
    Handling,
    QueueVisit,
    VisitResult,
    handling_of,
    queue_visits_of,
    seconds_between,
)

DEFAULT_SERVICE_LEVEL_SECONDS = 20.0  # the classic 80/20 target's 20 seconds
DEFAULT_SHORT_ABANDON_SECONDS = 5.0
DEFAULT_FCR_WINDOW = timedelta(days=7)


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# --- queues ---------------------------------------------------------------------------------------------


def average_speed_of_answer(visits: Iterable[QueueVisit]) -> float | None:
    """Mean seconds from entering the queue to an agent's answer, over answered visits."""
    waits = [v.wait_seconds() or 0.0 for v in visits if v.result is VisitResult.ANSWERED]
    return _mean(waits)


def average_handle_time(handlings: Iterable[Handling]) -> float | None:
    """Mean of talk + hold + wrap-up seconds over handled contacts."""
    return _mean([h.handle_seconds for h in handlings])


def _threshold(queue: str, targets: Mapping[str, float], default: float) -> float:
    return targets.get(queue, default)


def service_level(
    visits: Iterable[QueueVisit],
    *,
    targets: Mapping[str, float] | None = None,
    default_seconds: float = DEFAULT_SERVICE_LEVEL_SECONDS,
) -> float | None:
    """Answered within the queue's target / (answered + abandoned or left at or after the target).

    `targets` maps a queue to its target in seconds; other queues use `default_seconds`. Visits that
    ended before the target without an answer are left out of both sides; waiting visits too."""
    targets = targets or {}
    hits = counted = 0
    for visit in visits:
        wait = visit.wait_seconds()
        if visit.result is VisitResult.WAITING or wait is None:
            continue
        target = _threshold(visit.queue, targets, default_seconds)
        if visit.result is VisitResult.ANSWERED:
            counted += 1
            hits += wait <= target
        elif wait >= target:
            counted += 1
    return ratio(hits, counted)


@dataclass(frozen=True, slots=True)
class QueueFigures:
    offered: int  # visits that ended (answered, abandoned, left); waiting ones are not yet offered
    answered: int
    abandoned: int  # without the short abandons
    short_abandons: int
    left: int
    waiting: int
    abandonment_rate: float | None


def inbound_abandonment(
    visits: Iterable[QueueVisit], *, short_abandon_seconds: float = DEFAULT_SHORT_ABANDON_SECONDS
) -> QueueFigures:
    """Abandoned / ended visits, short abandons (under `short_abandon_seconds`) taken out of both."""
    counts: Counter[str] = Counter()
    for visit in visits:
        if visit.result is VisitResult.ABANDONED and (visit.wait_seconds() or 0.0) < short_abandon_seconds:
            counts["short"] += 1
        else:
            counts[visit.result.value] += 1
    answered, abandoned, left = counts["answered"], counts["abandoned"], counts["left"]
    offered = answered + abandoned + left
    return QueueFigures(
        offered=offered + counts["short"],
        answered=answered,
        abandoned=abandoned,
        short_abandons=counts["short"],
        left=left,
        waiting=counts["waiting"],
        abandonment_rate=ratio(abandoned, offered),
    )


@dataclass(frozen=True, slots=True)
class Waiting:
    calls: int
    longest_wait_seconds: float | None
    oldest_entered_at: datetime | None


def waiting_now(visits: Iterable[QueueVisit], *, now: datetime) -> Waiting:
    """Calls in a queue right now and how long the longest has waited."""
    entered = [v.entered_at for v in visits if v.result is VisitResult.WAITING]
    if not entered:
        return Waiting(0, None, None)
    oldest = min(entered)
    return Waiting(len(entered), max(0.0, seconds_between(oldest, now)), oldest)


# --- outbound -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboundFigures:
    dialed: int
    live_calls: float  # abandoned + connected (+ the AMD estimate)
    connected: int
    abandoned: float
    abandonment_rate: float | None


def outbound_abandonment(
    calls: Sequence[CallOutcome],
    *,
    now: datetime,
    drop_wait: timedelta = LEGAL_DROP_WAIT,
    amd_false_positive_rate: float = 0.0,
) -> OutboundFigures:
    """The dialer's abandonment (`dialer.abandonment.abandonment_rate`) over every answered call given."""
    answered = [c.answered_at for c in calls if c.answered_at is not None and c.answered_at <= now]
    if not answered:
        return OutboundFigures(len(calls), 0.0, 0, 0.0, None)
    # A window reaching back just past the first answer: the dialer's rate over exactly these calls.
    window = now - min(answered) + timedelta(microseconds=1)
    rate = abandonment_rate(
        calls, now=now, window=window, drop_wait=drop_wait, amd_false_positive_rate=amd_false_positive_rate
    )
    return OutboundFigures(
        dialed=len(calls),
        live_calls=rate.live_calls,
        connected=len(rate.connected_ids),
        abandoned=rate.abandoned,
        abandonment_rate=rate.rate if rate.live_calls else None,
    )


# --- agents ---------------------------------------------------------------------------------------------


def occupancy(spans: Iterable[AgentStateSpan], *, start: datetime, end: datetime) -> float | None:
    """(handling + wrap-up) / (handling + wrap-up + ready) over [start, end); a span still open runs to
    `end`."""
    busy = staffed = 0.0
    for span in spans:
        if span.activity is AgentActivity.AWAY:
            continue
        begin, finish = max(span.start, start), min(span.end or end, end)
        seconds = seconds_between(begin, finish)
        if seconds <= 0:
            continue
        staffed += seconds
        if span.activity is not AgentActivity.READY:
            busy += seconds
    return ratio(busy, staffed)


# --- cases ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolutionFigures:
    resolved: int
    first_contact_resolved: int
    rate: float | None


def resolved_on_first_contact(case: CaseRecord, *, window: timedelta = DEFAULT_FCR_WINDOW) -> bool:
    if case.resolved_at is None or case.reopened_count:
        return False
    contacts = case.customer_contacts()
    if not contacts:
        return False
    first = contacts[0].started_at
    within = [c for c in contacts if c.started_at < first + window]
    return len(within) == 1 and case.resolved_at <= first + window


def first_contact_resolution(
    cases: Iterable[CaseRecord], *, window: timedelta = DEFAULT_FCR_WINDOW
) -> ResolutionFigures:
    """Resolved cases, those resolved with one customer contact on any channel (see the module docstring),
    and their share."""
    resolved = [c for c in cases if c.resolved_at is not None and c.customer_contacts()]
    first = sum(resolved_on_first_contact(c, window=window) for c in resolved)
    return ResolutionFigures(len(resolved), first, ratio(first, len(resolved)))


@dataclass(frozen=True, slots=True)
class SwitchFigures:
    cases: int
    switches: int
    per_case: float | None


def channel_switches(cases: Iterable[CaseRecord]) -> SwitchFigures:
    """How often a case's consecutive customer contacts change channel, per case with a contact."""
    counted = switches = 0
    for case in cases:
        channels = [c.channel for c in case.customer_contacts()]
        if not channels:
            continue
        counted += 1
        switches += sum(a != b for a, b in itertools.pairwise(channels))
    return SwitchFigures(counted, switches, ratio(switches, counted))


# --- contacts -------------------------------------------------------------------------------------------


def contacts_per_channel(contacts: Iterable[Contact]) -> dict[str, int]:
    """Contacts with customers per channel (internal notes and unanswered attempts left out)."""
    return dict(sorted(Counter(c.channel for c in contacts if c.is_customer_contact).items()))


@dataclass(frozen=True, slots=True)
class CallbackFigures:
    offered: int
    accepted: int
    completed: int


def callbacks(contacts: Iterable[Contact]) -> CallbackFigures:
    """Contacts where a callback was offered, accepted; callbacks made that reached the customer."""
    offered = accepted = completed = 0
    for contact in contacts:
        offered += contact.has_step(TouchpointKind.CALLBACK_OFFERED)
        accepted += contact.has_step(TouchpointKind.CALLBACK_ACCEPTED)
        completed += bool(
            contact.direction == "outbound"
            and contact.attributes.get("callback_for")
            and contact.outcome == Outcome.COMPLETED
        )
    return CallbackFigures(offered, accepted, completed)


@dataclass(frozen=True, slots=True)
class CsatFigures:
    responses: int
    average: float | None
    satisfied_share: float | None  # 4 or 5 out of 5


def csat(contacts: Iterable[Contact]) -> CsatFigures:
    scores = [c.csat for c in contacts if c.csat is not None and 1 <= c.csat <= 5]
    return CsatFigures(len(scores), _mean(scores), ratio(sum(s >= 4 for s in scores), len(scores)))


@dataclass(frozen=True, slots=True)
class IvrFigures:
    calls: int  # IVR calls that ended
    contained: int
    abandoned: int
    in_ivr: int  # still in the IVR
    containment: float | None


def ivr_containment(contacts: Iterable[Contact]) -> IvrFigures:
    """IVR calls that ended `contained` / IVR calls that ended."""
    ivr = [c for c in contacts if c.is_ivr_call]
    ended = [c for c in ivr if c.ended_at is not None]
    contained = sum(c.outcome == Outcome.CONTAINED for c in ended)
    abandoned = sum(c.outcome == Outcome.ABANDONED for c in ended)
    in_ivr = sum(c.ended_at is None and not c.has_step(TouchpointKind.QUEUE_ENTER) for c in ivr)
    return IvrFigures(len(ended), contained, abandoned, in_ivr, ratio(contained, len(ended)))


def ivr_drop_off(contacts: Iterable[Contact]) -> dict[str, int]:
    """Where callers hung up in the IVR: the node of the last step of each IVR call that ended
    `abandoned`, most frequent first."""
    nodes: Counter[str] = Counter()
    for contact in contacts:
        if not contact.is_ivr_call or contact.outcome != Outcome.ABANDONED:
            continue
        last = next((s.node for s in reversed(contact.steps) if s.node), None)
        nodes[last or "(before the first node)"] += 1
    return dict(nodes.most_common())


# --- the table: every KPI per group and bucket ---------------------------------------------------------


class GroupBy(StrEnum):
    NONE = "none"
    QUEUE = "queue"
    AGENT = "agent"
    CAMPAIGN = "campaign"
    CHANNEL = "channel"


@dataclass(frozen=True, slots=True)
class CampaignAttempt:
    """One dial attempt of a campaign, as the dialer's rules read it."""

    campaign: str
    call: CallOutcome
    agent: str | None = None
    interaction_id: int | None = None


@dataclass(frozen=True, slots=True)
class KpiOptions:
    service_level_seconds: Mapping[str, float] = field(default_factory=dict)  # per queue
    default_service_level_seconds: float = DEFAULT_SERVICE_LEVEL_SECONDS
    short_abandon_seconds: float = DEFAULT_SHORT_ABANDON_SECONDS
    fcr_window: timedelta = DEFAULT_FCR_WINDOW
    drop_wait: timedelta = LEGAL_DROP_WAIT
    amd_false_positive_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class KpiInputs:
    """Everything one report reads. Contacts carry their steps; cases their contacts."""

    contacts: Sequence[Contact] = ()
    cases: Sequence[CaseRecord] = ()
    attempts: Sequence[CampaignAttempt] = ()
    agent_spans: Sequence[AgentStateSpan] = ()


@dataclass(frozen=True, slots=True)
class KpiRow:
    """Every KPI of one group in one bucket. Columns of the CSV export, in this order."""

    bucket_start: datetime
    bucket_end: datetime
    group: str | None
    contacts: int
    inbound_contacts: int
    outbound_contacts: int
    queue_offered: int
    queue_answered: int
    queue_abandoned: int
    short_abandons: int
    queue_left: int
    asa_seconds: float | None
    service_level: float | None
    abandonment_rate: float | None
    handled: int
    aht_seconds: float | None
    occupancy: float | None
    cases_resolved: int
    first_contact_resolved: int
    fcr_rate: float | None
    channel_switches_per_case: float | None
    callbacks_offered: int
    callbacks_accepted: int
    callbacks_completed: int
    csat_responses: int
    csat_average: float | None
    csat_satisfied_share: float | None
    ivr_calls: int
    ivr_contained: int
    ivr_abandoned: int
    ivr_containment: float | None
    outbound_dialed: int
    outbound_live_calls: float
    outbound_abandoned: float
    outbound_abandonment_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


KPI_COLUMNS: tuple[str, ...] = tuple(KpiRow.__dataclass_fields__)


def attempt_handling(attempt: CampaignAttempt) -> Handling | None:
    """An outbound call an agent took: talk from the bridge to the hang-up."""
    call = attempt.call
    if call.connected_at is None or call.ended_at is None:
        return None
    return Handling(
        answered_at=call.connected_at,
        talk_seconds=max(0.0, seconds_between(call.connected_at, call.ended_at)),
        agent=attempt.agent,
        campaign=attempt.campaign,
        interaction_id=attempt.interaction_id,
        started_at=call.dialed_at,
    )


@dataclass(slots=True)
class _Bin:
    contacts: list[Contact] = field(default_factory=list)
    visits: list[QueueVisit] = field(default_factory=list)
    handlings: list[Handling] = field(default_factory=list)
    cases: list[CaseRecord] = field(default_factory=list)
    calls: list[CallOutcome] = field(default_factory=list)
    spans: list[AgentStateSpan] = field(default_factory=list)


def _case_key(case: CaseRecord, group_by: GroupBy) -> str | None:
    first = case.customer_contacts()[0]
    return _contact_key(first, group_by)


def _contact_key(
    contact: Contact, group_by: GroupBy, visits: Sequence[QueueVisit] | None = None
) -> str | None:
    if group_by is GroupBy.QUEUE:
        if contact.queue:
            return contact.queue
        visits = queue_visits_of(contact) if visits is None else visits
        return visits[0].queue if visits else None
    return _attribute_key(contact, group_by)


def _attribute_key(row: Any, group_by: GroupBy) -> str | None:
    if group_by is GroupBy.NONE:
        return None
    value = getattr(row, group_by.value, None)
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Derived:
    """What a contact's steps say about queues and the agent's work: derived once per contact."""

    visits: tuple[QueueVisit, ...]
    handling: Handling | None


def derive(contact: Contact) -> Derived:
    visits = tuple(queue_visits_of(contact))
    return Derived(visits, handling_of(contact, visits=visits))


def summarise(
    inputs: KpiInputs,
    *,
    start: datetime,
    end: datetime,
    interval: Interval,
    zone: tzinfo,
    group_by: GroupBy = GroupBy.NONE,
    options: KpiOptions | None = None,
    now: datetime,
) -> list[KpiRow]:
    """Every KPI per (bucket, group), for buckets of [start, end) that have anything in them, in order of
    bucket then group (no group last). Contacts, and what happened in them, count in the bucket where the
    contact started (the usual "by arrival" interval report); cases in the bucket of their first
    customer contact; dial attempts where they were dialed; agent time where it was spent."""
    tables = summarise_by(
        inputs, start=start, end=end, interval=interval, zone=zone, group_bys=(group_by,), options=options,
        now=now,
    )  # fmt: skip
    return tables[group_by]


def summarise_by(
    inputs: KpiInputs,
    *,
    start: datetime,
    end: datetime,
    interval: Interval,
    zone: tzinfo,
    group_bys: Sequence[GroupBy],
    options: KpiOptions | None = None,
    now: datetime,
    derived: Callable[[Contact], Derived] = derive,
) -> dict[GroupBy, list[KpiRow]]:
    """`summarise` for several groupings in one pass over the rows. `derived` may be a cache (the live
    figures keep each contact's derivation until the contact changes)."""
    options = options or KpiOptions()
    bins: dict[tuple[GroupBy, datetime, str | None], _Bin] = defaultdict(_Bin)
    buckets_of: dict[datetime, datetime] = {}

    def bucket(at: datetime) -> datetime | None:
        if not start <= at < end:
            return None
        found = buckets_of.get(at)
        if found is None:
            found = buckets_of[at] = bucket_start(at, interval, zone)
        return found

    handled_ids: set[int] = set()
    for contact in inputs.contacts:
        facts = derived(contact)
        if facts.handling is not None:
            handled_ids.add(contact.interaction_id)
        where = bucket(contact.started_at)
        if where is None:
            continue
        for group_by in group_bys:
            key = _contact_key(contact, group_by, facts.visits)
            bins[(group_by, where, key)].contacts.append(contact)
            for visit in facts.visits:
                bins[(group_by, where, _attribute_key(visit, group_by))].visits.append(visit)
            if facts.handling is not None:
                bins[(group_by, where, _attribute_key(facts.handling, group_by))].handlings.append(
                    facts.handling
                )
    for attempt in inputs.attempts:
        where = bucket(attempt.call.dialed_at)
        if where is None:
            continue
        handling = attempt_handling(attempt)
        if attempt.interaction_id in handled_ids:
            handling = None  # its interaction's steps counted the agent's work already
        for group_by in group_bys:
            key = _attribute_key(attempt, group_by)
            if group_by is GroupBy.QUEUE:
                key = None
            elif group_by is GroupBy.CHANNEL:
                key = "voice"
            held = bins[(group_by, where, key)]
            held.calls.append(attempt.call)
            if handling is not None:
                held.handlings.append(handling)
    for case in inputs.cases:
        first = case.first_contact_at
        where = None if first is None else bucket(first)
        if where is None:
            continue
        for group_by in group_bys:
            bins[(group_by, where, _case_key(case, group_by))].cases.append(case)
    for span in inputs.agent_spans:
        for group_by in group_bys:
            key = _attribute_key(span, group_by) if group_by in (GroupBy.AGENT, GroupBy.QUEUE) else None
            _spread(span, group_by, key, bins, start=start, end=end, interval=interval, zone=zone, now=now)

    tables: dict[GroupBy, list[KpiRow]] = {group_by: [] for group_by in group_bys}
    for (group_by, at, key), contents in bins.items():
        tables[group_by].append(
            _row(at, key, contents, interval=interval, zone=zone, options=options, now=now)
        )
    for rows in tables.values():
        rows.sort(key=lambda r: (r.bucket_start, r.group is None, r.group or ""))
    return tables


def overall_row(
    inputs: KpiInputs,
    *,
    start: datetime,
    end: datetime,
    zone: tzinfo,
    options: KpiOptions | None = None,
    now: datetime,
) -> KpiRow:
    """Every KPI over [start, end) (within one day bucket) as one row, empty figures when nothing happened."""
    rows = summarise(inputs, start=start, end=end, interval=Interval.DAY, zone=zone, options=options, now=now)
    if rows:
        return rows[0]
    bucket = bucket_start(start, Interval.DAY, zone)
    return _row(
        bucket, None, _Bin(), interval=Interval.DAY, zone=zone, options=options or KpiOptions(), now=now
    )


def _spread(
    span: AgentStateSpan,
    group_by: GroupBy,
    key: str | None,
    bins: dict[tuple[GroupBy, datetime, str | None], _Bin],
    *,
    start: datetime,
    end: datetime,
    interval: Interval,
    zone: tzinfo,
    now: datetime,
) -> None:
    """A span counts in every bucket it overlaps (occupancy clips it to each)."""
    if span.activity is AgentActivity.AWAY:
        return
    begin, finish = max(span.start, start), min(span.end or now, end)
    current = bucket_start(begin, interval, zone)
    while current < finish:
        bins[(group_by, current, key)].spans.append(span)
        current = bucket_end(current, interval, zone)


def _row(
    start: datetime,
    key: str | None,
    data: _Bin,
    *,
    interval: Interval,
    zone: tzinfo,
    options: KpiOptions,
    now: datetime,
) -> KpiRow:
    end = bucket_end(start, interval, zone)
    queues = inbound_abandonment(data.visits, short_abandon_seconds=options.short_abandon_seconds)
    fcr = first_contact_resolution(data.cases, window=options.fcr_window)
    callback = callbacks(data.contacts)
    satisfaction = csat(data.contacts)
    ivr = ivr_containment(data.contacts)
    outbound = outbound_abandonment(
        data.calls,
        now=now,
        drop_wait=options.drop_wait,
        amd_false_positive_rate=options.amd_false_positive_rate,
    )
    customer = [c for c in data.contacts if c.is_customer_contact]
    return KpiRow(
        bucket_start=start,
        bucket_end=end,
        group=key,
        contacts=len(customer),
        inbound_contacts=sum(c.direction == "inbound" for c in customer),
        outbound_contacts=sum(c.direction == "outbound" for c in customer),
        queue_offered=queues.offered,
        queue_answered=queues.answered,
        queue_abandoned=queues.abandoned,
        short_abandons=queues.short_abandons,
        queue_left=queues.left,
        asa_seconds=average_speed_of_answer(data.visits),
        service_level=service_level(
            data.visits,
            targets=options.service_level_seconds,
            default_seconds=options.default_service_level_seconds,
        ),
        abandonment_rate=queues.abandonment_rate,
        handled=len(data.handlings),
        aht_seconds=average_handle_time(data.handlings),
        occupancy=occupancy(data.spans, start=start, end=min(end, now)) if data.spans else None,
        cases_resolved=fcr.resolved,
        first_contact_resolved=fcr.first_contact_resolved,
        fcr_rate=fcr.rate,
        channel_switches_per_case=channel_switches(data.cases).per_case,
        callbacks_offered=callback.offered,
        callbacks_accepted=callback.accepted,
        callbacks_completed=callback.completed,
        csat_responses=satisfaction.responses,
        csat_average=satisfaction.average,
        csat_satisfied_share=satisfaction.satisfied_share,
        ivr_calls=ivr.calls,
        ivr_contained=ivr.contained,
        ivr_abandoned=ivr.abandoned,
        ivr_containment=ivr.containment,
        outbound_dialed=outbound.dialed,
        outbound_live_calls=outbound.live_calls,
        outbound_abandoned=outbound.abandoned,
        outbound_abandonment_rate=outbound.abandonment_rate,
    )


def drop_off_table(
    contacts: Iterable[Contact],
    *,
    start: datetime,
    end: datetime,
    interval: Interval,
    zone: tzinfo,
    key: Callable[[Contact], str | None] = lambda contact: None,
) -> list[tuple[datetime, str | None, str, int]]:
    """(bucket, group, node, calls) for IVR drop-offs, most frequent first within a bucket and group."""
    grouped: dict[tuple[datetime, str | None], list[Contact]] = defaultdict(list)
    for contact in contacts:
        if start <= contact.started_at < end:
            grouped[(bucket_start(contact.started_at, interval, zone), key(contact))].append(contact)
    table = []
    for (bucket, group), members in sorted(grouped.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        for node, calls in ivr_drop_off(members).items():
            table.append((bucket, group, node, calls))
    return table


def contact_key(group_by: GroupBy) -> Callable[[Contact], str | None]:
    """How `summarise` files a contact under `group_by`, for other tables to group the same way."""
    return lambda contact: _contact_key(contact, group_by)
