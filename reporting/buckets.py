"""Time buckets of reports (15 minutes, an hour, a day) on a time zone's wall clock.

A day is a local calendar day, so it lasts 23 or 25 hours on the days the clocks change; hours follow the
local clock too (a zone at UTC+5:30 has its hours at :30 UTC), and the hour repeated when the clocks go
back is two buckets, not one. Buckets are named by their start, as an aware datetime in the zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum


class Interval(StrEnum):
    QUARTER_HOUR = "15m"
    HOUR = "hour"
    DAY = "day"


def bucket_start(at: datetime, interval: Interval, zone: tzinfo) -> datetime:
    """The start of the bucket holding `at`, in `zone`."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: reports need aware timestamps")
    local = at.astimezone(zone)
    if interval is Interval.DAY:
        midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
        # Through UTC and back: a zone whose clocks change at midnight has no 00:00 that day.
        return midnight.astimezone(UTC).astimezone(zone)
    minute = local.minute - local.minute % 15 if interval is Interval.QUARTER_HOUR else 0
    # replace() keeps `fold`, which tells the two 01:30s of a night the clocks go back apart.
    start = local.replace(minute=minute, second=0, microsecond=0)
    return start.astimezone(UTC).astimezone(zone)


def bucket_end(start: datetime, interval: Interval, zone: tzinfo) -> datetime:
    """The start of the next bucket."""
    if interval is Interval.DAY:
        local = start.astimezone(zone)
        following = datetime(local.year, local.month, local.day, tzinfo=zone) + timedelta(days=1, hours=12)
        return bucket_start(following, Interval.DAY, zone)
    step = timedelta(minutes=15) if interval is Interval.QUARTER_HOUR else timedelta(hours=1)
    return (start.astimezone(UTC) + step).astimezone(zone)


def buckets(start: datetime, end: datetime, interval: Interval, zone: tzinfo) -> Iterator[datetime]:
    """The starts of every bucket that overlaps [start, end)."""
    current = bucket_start(start, interval, zone)
    while current < end:
        yield current
        current = bucket_end(current, interval, zone)
