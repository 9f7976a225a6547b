"""Buckets on a time zone's wall clock, through clock changes and half-hour offsets."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from reporting.buckets import Interval, bucket_end, bucket_start, buckets

MADRID = ZoneInfo("Europe/Madrid")
KOLKATA = ZoneInfo("Asia/Kolkata")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_quarter_hours_and_hours_floor_the_local_clock() -> None:
    # 10:37:12 UTC = 11:37:12 in Madrid (CET): quarter 11:30, hour 11:00 local
    moment = utc(2026, 11, 24, 10, 37, 12)
    assert bucket_start(moment, Interval.QUARTER_HOUR, MADRID) == datetime(
        2026, 11, 24, 11, 30, tzinfo=MADRID
    )
    assert bucket_start(moment, Interval.HOUR, MADRID) == datetime(2026, 11, 24, 11, 0, tzinfo=MADRID)


def test_hours_in_a_half_hour_zone_start_at_half_past_utc() -> None:
    # 10:10 UTC = 15:40 in Kolkata (UTC+5:30): the hour bucket starts 15:00 local = 09:30 UTC
    start = bucket_start(utc(2026, 11, 24, 10, 10), Interval.HOUR, KOLKATA)
    assert start.astimezone(UTC) == utc(2026, 11, 24, 9, 30)


def test_a_day_is_the_local_calendar_day() -> None:
    # 23:30 UTC on the 24th is 00:30 on the 25th in Madrid: the day of the 25th, which began 23:00 UTC
    start = bucket_start(utc(2026, 11, 24, 23, 30), Interval.DAY, MADRID)
    assert start.astimezone(UTC) == utc(2026, 11, 24, 23, 0)


def test_the_day_the_clocks_go_back_lasts_25_hours() -> None:
    # Madrid, 25 Oct 2026: CEST -> CET at 03:00 local. Midnight is 22:00 UTC on the 24th, the next
    # midnight 23:00 UTC on the 25th: 25 hours
    start = bucket_start(utc(2026, 10, 25, 12), Interval.DAY, MADRID)
    end = bucket_end(start, Interval.DAY, MADRID)
    # (in UTC: aware times of one zone subtract by the wall clock)
    assert (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() == 25 * 3600
    spring = bucket_start(utc(2026, 3, 29, 12), Interval.DAY, MADRID)
    spring_end = bucket_end(spring, Interval.DAY, MADRID)
    assert (spring_end.astimezone(UTC) - spring.astimezone(UTC)).total_seconds() == 23 * 3600


def test_the_repeated_hour_is_two_buckets() -> None:
    # 00:30 and 01:30 UTC on 25 Oct are both 02:30 local (CEST, then CET): two different hour buckets
    first = bucket_start(utc(2026, 10, 25, 0, 30), Interval.HOUR, MADRID)
    second = bucket_start(utc(2026, 10, 25, 1, 30), Interval.HOUR, MADRID)
    assert first.astimezone(UTC) == utc(2026, 10, 25, 0, 0)
    assert second.astimezone(UTC) == utc(2026, 10, 25, 1, 0)
    hours = list(buckets(utc(2026, 10, 24, 23, 0), utc(2026, 10, 25, 3, 0), Interval.HOUR, MADRID))
    assert len(hours) == 4  # 01:00, 02:00 (CEST), 02:00 (CET), 03:00: four real hours


def test_buckets_cover_a_range_that_starts_mid_bucket() -> None:
    starts = list(buckets(utc(2026, 11, 24, 10, 7), utc(2026, 11, 24, 10, 50), Interval.QUARTER_HOUR, UTC))
    assert [s.minute for s in starts] == [0, 15, 30, 45]
