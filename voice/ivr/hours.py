"""Business hours: is a schedule open at an instant? The instant comes from the call, never the clock."""

from __future__ import annotations

from datetime import datetime

from voice.ivr.schema import WEEKDAYS, Schedule


def is_holiday(schedule: Schedule, now: datetime) -> bool:
    """Whether the local date at `now` (an aware datetime) is one of the schedule's holidays."""
    return now.astimezone(schedule.zone).date() in schedule.holidays


def is_open(schedule: Schedule, now: datetime) -> bool:
    """Whether `now` (an aware datetime) falls in the weekly hours, in the schedule's time zone,
    on a day that is not a holiday. Daylight saving time is the zone's business, not ours."""
    local = now.astimezone(schedule.zone)
    if local.date() in schedule.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(
        hours.start <= minute < hours.end for hours in schedule.weekly.get(WEEKDAYS[local.weekday()], [])
    )
