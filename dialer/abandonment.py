"""Abandoned calls: what counts as one, the rate per campaign over rolling windows, and the report.

An answered call is abandoned when a live person answered and no agent was connected within 2 seconds
of the end of their greeting (TCPA 47 CFR 64.1200(a)(7); Ofcom's persistent-misuse policy uses the same
2 seconds). Read to the letter, on the safe side:

- the 2 seconds start at the end of the greeting (`greeting_ended_at`), or at the answer when no greeting
  end was detected;
- an agent connected later than that does not undo the abandonment;
- a person who hangs up before an agent arrives was abandoned too (the dialer cannot tell why they left);
- a call that answering-machine detection (AMD) hung up on counts as abandoned when it was a live person
  (`live_person=True`, e.g. found on review); when nobody knows, a reasoned estimate of AMD's false
  positives (Ofcom's method) is added: `amd_false_positive_rate` x those calls, reported apart;
- a call known to be a machine (`live_person=False`, e.g. the agent's disposition) is not a live call.

The rate is abandoned live calls / live calls, over a rolling window ending at `now`, by answer time:
30 days (US) and 24 hours (UK) are both checked. Unanswered calls must ring 15 seconds before the dialer
gives up (TCPA; Ofcom): the report lists the ones that did not.

Pure: records and `now` are arguments. The runner keeps one `CallOutcome` per dial attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from dialer.call_network import AmdVerdict, CallEnd

DEFAULT_TARGET = 0.03  # the legal cap in the US (per 30 days) and the UK (per 24 hours)
LEGAL_DROP_WAIT = timedelta(seconds=2)
MIN_RING_BEFORE_NO_ANSWER = timedelta(seconds=15)
WINDOW_30_DAYS = timedelta(days=30)
WINDOW_24_HOURS = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """One dial attempt, as recorded (the fields of a `dial_attempts` row the rules read)."""

    attempt_id: int
    dialed_at: datetime
    ended_at: datetime | None = None  # None while the call goes on
    end: CallEnd | None = None
    ringing_at: datetime | None = None  # when the far end started ringing; dialed_at if unknown
    answered_at: datetime | None = None
    greeting_ended_at: datetime | None = None
    connected_at: datetime | None = None  # bridged to an agent
    amd: AmdVerdict | None = None  # None: AMD off
    live_person: bool | None = None  # who answered, when known for sure (review, agent disposition)
    message_played_at: datetime | None = None  # the campaign's abandoned-call message


class CallClass(StrEnum):
    NOT_ANSWERED = "not_answered"
    IN_PROGRESS = "in_progress"  # answered, still within the 2 seconds (or the greeting)
    CONNECTED = "connected"  # a live call that reached an agent in time
    ABANDONED = "abandoned"
    MACHINE = "machine"  # known to be an answering machine: not a live call
    AMD_MACHINE_UNVERIFIED = "amd_machine_unverified"  # AMD said machine and hung up; nobody knows


def greeting_end(record: CallOutcome) -> datetime | None:
    """Where the 2 seconds start: the end of the greeting, or the answer if none was detected."""
    return record.greeting_ended_at or record.answered_at


def classify(record: CallOutcome, *, now: datetime, drop_wait: timedelta = LEGAL_DROP_WAIT) -> CallClass:
    if record.answered_at is None:
        return CallClass.NOT_ANSWERED
    if record.live_person is False:
        return CallClass.MACHINE
    if record.amd is AmdVerdict.MACHINE and record.connected_at is None:
        return CallClass.ABANDONED if record.live_person else CallClass.AMD_MACHINE_UNVERIFIED
    start = greeting_end(record)
    assert start is not None  # answered_at is set
    deadline = start + drop_wait
    if record.connected_at is not None:
        return CallClass.CONNECTED if record.connected_at <= deadline else CallClass.ABANDONED
    if record.ended_at is not None:
        return CallClass.ABANDONED
    if record.greeting_ended_at is None or now < deadline:
        return CallClass.IN_PROGRESS
    return CallClass.ABANDONED


@dataclass(frozen=True, slots=True)
class AbandonmentRate:
    window: timedelta
    start: datetime  # exclusive
    end: datetime  # inclusive: `now`
    abandoned_ids: tuple[int, ...]  # abandoned live calls (AMD false positives known as such included)
    connected_ids: tuple[int, ...]  # live calls that reached an agent in time
    amd_unverified_ids: tuple[int, ...]  # AMD hang-ups of unknown truth, behind the estimate
    estimated_amd_abandoned: float  # amd_false_positive_rate x len(amd_unverified_ids)

    @property
    def abandoned(self) -> float:
        return len(self.abandoned_ids) + self.estimated_amd_abandoned

    @property
    def live_calls(self) -> float:
        return len(self.abandoned_ids) + len(self.connected_ids) + self.estimated_amd_abandoned

    @property
    def rate(self) -> float:
        """Abandoned / live calls; 0 before any live call."""
        return self.abandoned / self.live_calls if self.live_calls else 0.0

    def headroom(self, target: float) -> float:
        """How many more abandoned calls the window takes before the rate exceeds `target` (each one
        adds a live call too); negative when it is already over."""
        if not 0 <= target < 1:
            raise ValueError(f"an abandonment target is a fraction below 1, not {target}")
        return (target * self.live_calls - self.abandoned) / (1 - target)


def abandonment_rate(
    records: Sequence[CallOutcome],
    *,
    now: datetime,
    window: timedelta,
    drop_wait: timedelta = LEGAL_DROP_WAIT,
    amd_false_positive_rate: float = 0.0,
) -> AbandonmentRate:
    """The rate over the `window` ending at `now`, counting calls by the time they were answered."""
    if not 0 <= amd_false_positive_rate <= 1:
        raise ValueError(f"amd_false_positive_rate is a fraction, not {amd_false_positive_rate}")
    start = now - window
    abandoned: list[int] = []
    connected: list[int] = []
    unverified: list[int] = []
    for record in records:
        if record.answered_at is None or not start < record.answered_at <= now:
            continue
        kind = classify(record, now=now, drop_wait=drop_wait)
        if kind is CallClass.ABANDONED:
            abandoned.append(record.attempt_id)
        elif kind is CallClass.CONNECTED:
            connected.append(record.attempt_id)
        elif kind is CallClass.AMD_MACHINE_UNVERIFIED:
            unverified.append(record.attempt_id)
    return AbandonmentRate(
        window=window,
        start=start,
        end=now,
        abandoned_ids=tuple(abandoned),
        connected_ids=tuple(connected),
        amd_unverified_ids=tuple(unverified),
        estimated_amd_abandoned=amd_false_positive_rate * len(unverified),
    )


class RuleCheck(BaseModel):
    """One rule of the compliance report: what was measured, against what, over when, from which rows."""

    model_config = ConfigDict(frozen=True)

    rule: str
    description: str
    measured: float
    limit: float
    unit: str  # "fraction" of live calls, or "calls"
    passed: bool
    window_start: datetime
    window_end: datetime
    counted: float  # the numerator (abandoned calls, estimate included; or calls breaking the rule)
    out_of: float  # the denominator (live calls; or the calls the rule applies to)
    estimated: float = 0.0  # the part of `counted` that is an estimate (AMD false positives)
    records: list[int]  # the attempt ids behind `counted`
    estimate_records: list[int] = []  # the attempt ids behind `estimated`


class ComplianceReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    rules: list[RuleCheck]
    notes: list[str] = []  # what the figures mean for this campaign, e.g. a preview campaign's calls

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)


def compliance_report(
    records: Sequence[CallOutcome],
    *,
    now: datetime,
    target: float = DEFAULT_TARGET,
    drop_wait: timedelta = LEGAL_DROP_WAIT,
    min_ring: timedelta = MIN_RING_BEFORE_NO_ANSWER,
    amd_false_positive_rate: float = 0.0,
) -> ComplianceReport:
    """Each rule with its measured value: abandonment over 30 days and over 24 hours, the 15-second
    ring before a no-answer, and the message every abandoned call must hear. `records` should hold the
    campaign's attempts dialed in the last 30 days (more is harmless)."""
    rules = [
        _rate_rule(
            abandonment_rate(
                records,
                now=now,
                window=window,
                drop_wait=drop_wait,
                amd_false_positive_rate=amd_false_positive_rate,
            ),
            name=name,
            period=period,
            target=target,
            drop_wait=drop_wait,
        )
        for name, period, window in (
            ("abandonment_rate_30_days", "30 days", WINDOW_30_DAYS),
            ("abandonment_rate_24_hours", "24 hours", WINDOW_24_HOURS),
        )
    ]
    start = now - WINDOW_30_DAYS
    recent = [r for r in records if start < (r.ended_at or r.dialed_at) <= now]
    rules.append(_ring_rule(recent, start=start, now=now, min_ring=min_ring))
    rules.append(_message_rule(recent, start=start, now=now, drop_wait=drop_wait))
    return ComplianceReport(at=now, rules=rules)


def _rate_rule(
    rate: AbandonmentRate, *, name: str, period: str, target: float, drop_wait: timedelta
) -> RuleCheck:
    return RuleCheck(
        rule=name,
        description=(
            f"abandoned calls (no agent within {drop_wait.total_seconds():g} s of the greeting's end) "
            f"as a share of live calls over the last {period}, at most the campaign's target"
        ),
        measured=rate.rate,
        limit=target,
        unit="fraction",
        passed=rate.rate <= target,
        window_start=rate.start,
        window_end=rate.end,
        counted=rate.abandoned,
        out_of=rate.live_calls,
        estimated=rate.estimated_amd_abandoned,
        records=list(rate.abandoned_ids),
        estimate_records=list(rate.amd_unverified_ids) if rate.estimated_amd_abandoned else [],
    )


def _ring_rule(
    records: Sequence[CallOutcome], *, start: datetime, now: datetime, min_ring: timedelta
) -> RuleCheck:
    no_answer = [r for r in records if r.end is CallEnd.NO_ANSWER and r.ended_at is not None]
    short = [
        r.attempt_id
        for r in no_answer
        if r.ended_at is not None and r.ended_at - (r.ringing_at or r.dialed_at) < min_ring
    ]
    return RuleCheck(
        rule="minimum_ring_before_no_answer",
        description=f"unanswered calls rang at least {min_ring.total_seconds():g} s before a no-answer",
        measured=len(short),
        limit=0,
        unit="calls",
        passed=not short,
        window_start=start,
        window_end=now,
        counted=len(short),
        out_of=len(no_answer),
        records=short,
    )


def _message_rule(
    records: Sequence[CallOutcome], *, start: datetime, now: datetime, drop_wait: timedelta
) -> RuleCheck:
    # The abandoned calls the dialer left: AMD hang-ups (no person known) and callees who hung up
    # within the 2 seconds never waited for a message.
    owed = []
    for record in records:
        if classify(record, now=now, drop_wait=drop_wait) is not CallClass.ABANDONED:
            continue
        if record.amd is AmdVerdict.MACHINE and record.connected_at is None:
            continue
        begin = greeting_end(record)
        if record.ended_at is not None and begin is not None and record.ended_at < begin + drop_wait:
            continue
        owed.append(record)
    silent = [r.attempt_id for r in owed if r.message_played_at is None]
    return RuleCheck(
        rule="abandoned_calls_hear_message",
        description="every call the dialer abandoned heard the campaign's message (company, number)",
        measured=len(silent),
        limit=0,
        unit="calls",
        passed=not silent,
        window_start=start,
        window_end=now,
        counted=len(silent),
        out_of=len(owed),
        records=silent,
    )
