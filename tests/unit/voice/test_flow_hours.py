"""Business hours of IVR flows: weekly hours in the flow's time zone, holidays, daylight saving time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from voice.ivr.hours import is_holiday, is_open
from voice.ivr.schema import Schedule

MADRID = Schedule.model_validate(
    {
        "time_zone": "Europe/Madrid",
        "weekly": {
            **{day: ["08:00-20:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
            "sat": ["09:00-14:00"],
            "sun": ["10:00-12:00", "17:00-24:00"],
        },
        "holidays": ["2025-01-06", "2025-12-25"],
    }
)


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "open_"),
    [
        # Winter (CET, UTC+1)
        (utc(2025, 1, 7, 7, 0), True),  # Tue 08:00 local: opening minute
        (utc(2025, 1, 7, 6, 59), False),  # Tue 07:59 local
        (utc(2025, 1, 7, 18, 59), True),  # Tue 19:59 local
        (utc(2025, 1, 7, 19, 0), False),  # Tue 20:00 local: closed (end is exclusive)
        (utc(2025, 1, 11, 12, 59), True),  # Sat 13:59
        (utc(2025, 1, 11, 13, 0), False),  # Sat 14:00
        (utc(2025, 1, 12, 12, 0), False),  # Sun 13:00, between the two ranges
        (utc(2025, 1, 12, 22, 59), True),  # Sun 23:59, a range to midnight
        # Holidays: Epiphany is a Monday, Christmas a Thursday
        (utc(2025, 1, 6, 10, 0), False),
        (utc(2025, 12, 25, 10, 0), False),
        (utc(2025, 12, 26, 10, 0), True),
        # Daylight saving time starts on Sunday 30 March 2025: the same UTC hour is an hour later locally
        (utc(2025, 3, 28, 6, 30), False),  # Fri 07:30 CET
        (utc(2025, 3, 31, 6, 30), True),  # Mon 08:30 CEST
        (utc(2025, 3, 30, 8, 30), True),  # Sun 10:30 CEST (09:30 had the clocks not changed)
        (utc(2025, 3, 30, 9, 30), True),  # Sun 11:30 CEST
        (utc(2025, 3, 30, 10, 0), False),  # Sun 12:00 CEST
        # and ends on Sunday 26 October 2025
        (utc(2025, 10, 24, 18, 30), False),  # Fri 20:30 CEST
        (utc(2025, 10, 27, 18, 30), True),  # Mon 19:30 CET
    ],
)
def test_flow_schedule_is_judged_in_its_time_zone(now: datetime, open_: bool) -> None:
    assert is_open(MADRID, now) is open_


def test_flow_schedule_accepts_any_aware_time() -> None:
    new_york = timezone(timedelta(hours=-5))
    assert is_open(MADRID, datetime(2025, 1, 7, 3, 0, tzinfo=new_york))  # 09:00 in Madrid
    assert not is_open(MADRID, datetime(2025, 1, 7, 15, 0, tzinfo=new_york))  # 21:00 in Madrid


@pytest.mark.parametrize(
    ("now", "holiday"),
    [
        (utc(2025, 1, 5, 23, 30), True),  # already 6 January in Madrid
        (utc(2025, 1, 5, 22, 30), False),  # still the 5th
        (utc(2025, 1, 6, 22, 59), True),
        (utc(2025, 1, 6, 23, 0), False),  # the 7th in Madrid
    ],
)
def test_flow_holidays_follow_the_local_date(now: datetime, holiday: bool) -> None:
    assert is_holiday(MADRID, now) is holiday
    if holiday:
        assert not is_open(MADRID, now)
