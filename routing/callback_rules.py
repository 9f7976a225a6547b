"""The rules of a callback, pure: when it may be made, when to try again, and why one is refused.

- **When**: "now", or a time asked for. A time in the past (beyond a minute of clock skew), further
  ahead than `max_days_ahead`, or outside the callee's local calling hours is refused, saying why and
  when the next allowed moment is. A "now" asked for outside those hours is not refused: it is due at
  the next allowed moment (the answer says when), since the customer asked for the earliest call.
- **Hours**: `dialer.calling_window` on the callee's local clock, in every zone the number may be in,
  with the callback hours (default 09:00-21:00 every day). The statutory tables for unsolicited calls
  (`CALLING_LAWS`: no weekends in Spain, for example) do not apply: the customer asked for this call.
- **Retries**: after an attempt that did not reach the customer (busy, no answer, failed), the next
  one waits `retry_base_s` doubled per attempt made, at most `retry_cap_s`, and is moved to the next
  allowed moment when that falls outside hours; after `max_attempts` the callback has failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from core.errors import InvalidInput
from core.settings import Settings
from dialer.calling_window import (
    CalleeLocation,
    CallingDecision,
    CallingPolicy,
    LocalWindow,
    WeeklyHours,
    calling_decision,
)

PAST_TOLERANCE = timedelta(minutes=1)  # clock skew between a web page's clock and ours


@dataclass(frozen=True, slots=True)
class Violation:
    """One reason a callback is refused; the API answers 422 with it (`api.errors`)."""

    field: str
    rule: str
    message: str


class CallbackRefused(InvalidInput):
    """The callback cannot be booked; `violations` says which field broke which rule, and why."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        self.violations = (Violation(field, rule, message),)
        self.rule = rule
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class CallbackRules:
    region: str = "ES"  # national numbers are read in it
    default_queue: str = "general"  # the queue of a request that names none
    hours: WeeklyHours = field(default_factory=lambda: WeeklyHours.every_day(time(9), time(21)))
    max_attempts: int = 3
    retry_base_s: float = 300.0
    retry_cap_s: float = 3600.0
    max_days_ahead: int = 30
    ring_seconds: int = 25  # how long the customer's phone rings
    caller_id: str = ""  # the number the customer sees (empty: the trunk's default)

    @property
    def policy(self) -> CallingPolicy:
        return CallingPolicy(callee_hours=self.hours, laws={})

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackRules:
        return cls(
            region=settings.default_region,
            default_queue=settings.callback_default_queue,
            hours=hours_from_text(settings.callback_hours),
            max_attempts=settings.callback_max_attempts,
            retry_base_s=float(settings.callback_retry_seconds),
            ring_seconds=settings.callback_ring_seconds,
            caller_id=settings.callback_caller_id,
        )


def hours_from_text(text: str) -> WeeklyHours:
    """ "09:00-21:00" or "09:00-14:00,16:00-20:00": the same windows every day."""
    windows = tuple(LocalWindow.parse(part.strip()) for part in text.split(",") if part.strip())
    if not windows:
        raise ValueError("callback hours need at least one window such as 09:00-21:00")
    return WeeklyHours(tuple(windows for _ in range(7)))


def due_time(
    now: datetime, at: datetime | None, *, callee: CalleeLocation, rules: CallbackRules
) -> tuple[datetime, str | None]:
    """When the callback is due, and a note when that is not what was asked (a "now" moved into
    hours); raises CallbackRefused for a time in the past, too far ahead, or outside hours."""
    if at is not None and at.tzinfo is None:
        raise CallbackRefused("at", "no_time_zone", "the time must carry a time zone (e.g. 17:00+01:00)")
    if at is not None and at < now - PAST_TOLERANCE:
        raise CallbackRefused("at", "in_the_past", f"{at.isoformat()} is in the past (it is {_iso(now)})")
    if at is not None and at > now + timedelta(days=rules.max_days_ahead):
        raise CallbackRefused(
            "at", "too_far_ahead", f"a callback can be booked at most {rules.max_days_ahead} days ahead"
        )
    when = now if at is None or at <= now else at
    decision = calling_decision(when, callee=callee, policy=rules.policy)
    if decision.allowed:
        return when, None
    if decision.next_allowed_at is None:
        raise CallbackRefused("phone", "no_calling_hours", f"this number cannot be called: {decision.detail}")
    if at is None or at <= now:
        note = f"outside calling hours now: due at {_iso(decision.next_allowed_at)}"
        return decision.next_allowed_at, note
    raise CallbackRefused(
        "at",
        "outside_hours",
        f"{at.isoformat()} is outside calling hours on the callee's local clock: "
        f"{decision.detail}; the next allowed time is {_iso(decision.next_allowed_at)}",
    )


def retry_delay(attempts_made: int, rules: CallbackRules) -> float:
    """Seconds to wait after the `attempts_made`-th attempt failed: doubling, capped."""
    return float(min(rules.retry_cap_s, rules.retry_base_s * 2 ** max(0, attempts_made - 1)))


def next_attempt(
    now: datetime, attempts_made: int, *, callee: CalleeLocation, rules: CallbackRules
) -> datetime | None:
    """When to try again after a failed attempt; None when no attempt is left (or no hours ever)."""
    if attempts_made >= rules.max_attempts:
        return None
    at = now + timedelta(seconds=retry_delay(attempts_made, rules))
    decision = calling_decision(at, callee=callee, policy=rules.policy)
    return at if decision.allowed else decision.next_allowed_at


def dial_hours(now: datetime, *, callee: CalleeLocation, rules: CallbackRules) -> CallingDecision:
    """May the callback be dialed at `now` (checked again at dial time, not only when booked)?"""
    return calling_decision(now, callee=callee, policy=rules.policy)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
