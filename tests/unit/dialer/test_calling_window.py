"""Callee-local calling hours: the law per country, every candidate zone, holidays, daylight saving time."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import timezone as phone_zones

from dialer.calling_window import (
    CALLING_LAWS,
    CalleeLocation,
    CallingBlock,
    CallingPolicy,
    CampaignWindow,
    LocalWindow,
    WeeklyHours,
    callee_location,
    calling_decision,
    zones_for_number,
)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


MADRID_ONLY = CalleeLocation(None, ("Europe/Madrid",))  # no country: no law, only the campaign's hours
NEW_YORK_ONLY = CalleeLocation(None, ("America/New_York",))
DEFAULT = CallingPolicy()


def hours(start: str, end: str) -> CallingPolicy:
    return CallingPolicy(
        callee_hours=WeeklyHours.every_day(time.fromisoformat(start), time.fromisoformat(end))
    )


# --- the number's zones ----------------------------------------------------------------------------


def test_zones_come_from_the_number_and_an_explicit_zone_wins() -> None:
    assert callee_location("+34910000000") == CalleeLocation("ES", ("Europe/Madrid",))
    assert callee_location("+34922000000") == CalleeLocation("ES", ("Atlantic/Canary",))
    # A Spanish mobile may be in the Canaries: both zones.
    assert callee_location("+34612345678").zones == ("Atlantic/Canary", "Europe/Madrid")
    # South Dakota's 605 spans Mountain and Central time.
    assert callee_location("+16055550123") == CalleeLocation(
        "US", ("America/Denver", "America/North_Dakota/Center")
    )
    assert callee_location("+34612345678", time_zone="Europe/Madrid").zones == ("Europe/Madrid",)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        callee_location("+34612345678", time_zone="Mars/Olympus")
    with pytest.raises(ValueError, match=r"not an E\.164 number"):
        callee_location("not a number")


def test_zones_for_number_agree_with_phonenumbers() -> None:
    # zones_for_number compiles phonenumbers' type patterns once; its answer must be the library's.
    rng = random.Random(6)
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in range(12):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            national = phonenumbers.national_significant_number(example)
            for _ in range(4):
                cut = rng.randint(1, max(1, len(national) - 1))
                digits = national[:-cut] + "".join(rng.choice("0123456789") for _ in range(cut))
                number = phonenumbers.parse(f"+{example.country_code}{digits}", None)
                expected = tuple(
                    sorted(z for z in phone_zones.time_zones_for_number(number) if z != "Etc/Unknown")
                )
                assert zones_for_number(number) == expected, phonenumbers.format_number(number, 0)
                checked += 1
    assert checked > 5000


# --- hand-worked decisions -------------------------------------------------------------------------


def test_spanish_law_weekdays_nine_to_nine_on_the_callees_clock() -> None:
    madrid = callee_location("+34910000000")
    # Tuesday 3 June 2025, CEST (UTC+2)
    assert calling_decision(utc(2025, 6, 3, 7, 0), callee=madrid, policy=DEFAULT).allowed  # 09:00
    late = calling_decision(utc(2025, 6, 3, 19, 0), callee=madrid, policy=DEFAULT)  # 21:00
    assert not late.allowed and late.reason is CallingBlock.OUTSIDE_CALLEE_HOURS
    assert late.next_allowed_at == utc(2025, 6, 4, 7, 0)
    assert "ES law" in late.detail and late.zone == "Europe/Madrid"
    open_ = calling_decision(utc(2025, 6, 3, 18, 59), callee=madrid, policy=DEFAULT)
    assert open_.allowed and open_.allowed_until == utc(2025, 6, 3, 19, 0)
    # Saturday: the law says no calls at all; the next chance is Monday 09:00.
    saturday = calling_decision(utc(2025, 6, 7, 10, 0), callee=madrid, policy=DEFAULT)
    assert saturday.reason is CallingBlock.CALLEE_DAY_NOT_ALLOWED
    assert saturday.next_allowed_at == utc(2025, 6, 9, 7, 0)


def test_a_number_that_may_be_in_two_zones_is_called_only_when_both_allow_it() -> None:
    mobile = callee_location("+34612345678")  # Madrid or the Canaries (one hour behind)
    at_9_30_madrid = calling_decision(utc(2025, 6, 3, 7, 30), callee=mobile, policy=DEFAULT)
    assert not at_9_30_madrid.allowed and at_9_30_madrid.zone == "Atlantic/Canary"
    assert at_9_30_madrid.next_allowed_at == utc(2025, 6, 3, 8, 0)  # 09:00 in the Canaries
    at_8_30_pm_madrid = calling_decision(utc(2025, 6, 3, 18, 30), callee=mobile, policy=DEFAULT)
    assert at_8_30_pm_madrid.allowed and at_8_30_pm_madrid.allowed_until == utc(2025, 6, 3, 19, 0)

    dakota = callee_location("+16055550123")  # Mountain (UTC-6 in summer) and Central (UTC-5)
    early = calling_decision(utc(2025, 7, 1, 14, 30), callee=dakota, policy=DEFAULT)  # 08:30 / 09:30
    assert not early.allowed and early.zone == "America/Denver"
    assert early.next_allowed_at == utc(2025, 7, 1, 15, 0)
    evening = calling_decision(utc(2025, 7, 2, 1, 30), callee=dakota, policy=DEFAULT)  # 19:30 / 20:30
    assert evening.allowed and evening.allowed_until == utc(2025, 7, 2, 2, 0)  # 21:00 Central


def test_campaign_hours_are_cut_to_the_law_of_the_callees_country() -> None:
    us = CalleeLocation("US", ("America/New_York",))
    # The campaign asks for 07:00-22:00; the TCPA allows 08:00-21:00.
    policy = hours("07:00", "22:00")
    assert not calling_decision(utc(2025, 1, 15, 12, 30), callee=us, policy=policy).allowed  # 07:30 EST
    assert calling_decision(utc(2025, 1, 15, 13, 0), callee=us, policy=policy).allowed  # 08:00
    assert not calling_decision(utc(2025, 1, 16, 2, 0), callee=us, policy=policy).allowed  # 21:00
    # France: 10:00-13:00 and 14:00-20:00 on weekdays; lunch is closed.
    paris = callee_location("+33612345678")
    lunch = calling_decision(utc(2025, 6, 3, 11, 30), callee=paris, policy=DEFAULT)  # 13:30 CEST
    assert not lunch.allowed and lunch.next_allowed_at == utc(2025, 6, 3, 12, 0)
    # Canada: weekends 10:00-18:00 only.
    toronto = callee_location("+14165550123")
    assert not calling_decision(utc(2025, 6, 7, 13, 30), callee=toronto, policy=DEFAULT).allowed  # Sat 09:30
    assert calling_decision(utc(2025, 6, 7, 14, 0), callee=toronto, policy=DEFAULT).allowed  # Sat 10:00
    assert CALLING_LAWS["US"].source.startswith("TCPA")


def test_holidays_on_the_callees_calendar() -> None:
    madrid = callee_location("+34910000000")
    christmas = frozenset({date(2025, 12, 25)})
    policy = CallingPolicy(public_holidays={"ES": christmas})
    decision = calling_decision(utc(2025, 12, 25, 10, 0), callee=madrid, policy=policy)
    assert decision.reason is CallingBlock.CALLEE_HOLIDAY
    assert decision.next_allowed_at == utc(2025, 12, 26, 8, 0)  # Friday 09:00 CET
    # In the US the law does not close public holidays; a campaign may.
    us = CalleeLocation("US", ("America/New_York",))
    us_policy = CallingPolicy(public_holidays={"US": christmas})
    assert calling_decision(utc(2025, 12, 25, 15, 0), callee=us, policy=us_policy).allowed
    closed = CallingPolicy(public_holidays={"US": christmas}, avoid_public_holidays=True)
    assert not calling_decision(utc(2025, 12, 25, 15, 0), callee=us, policy=closed).allowed
    own = CallingPolicy(callee_holidays=christmas)
    assert (
        calling_decision(utc(2025, 12, 25, 15, 0), callee=us, policy=own).reason
        is CallingBlock.CALLEE_HOLIDAY
    )


def test_the_campaigns_own_schedule_and_dates_apply_on_top() -> None:
    campaign = CampaignWindow(
        time_zone="Europe/Madrid",
        hours=WeeklyHours.every_day(time(10), time(14), weekdays=["mon", "tue", "wed", "thu", "fri"]),
        first_day=date(2025, 6, 2),
        last_day=date(2025, 6, 6),
        closed_dates=frozenset({date(2025, 6, 4)}),
    )
    policy = CallingPolicy(campaign=campaign)
    madrid = callee_location("+34910000000")
    before = calling_decision(utc(2025, 5, 30, 9, 0), callee=madrid, policy=policy)
    assert before.reason is CallingBlock.BEFORE_CAMPAIGN_START and before.next_allowed_at == utc(
        2025, 6, 2, 8, 0
    )
    assert calling_decision(utc(2025, 6, 2, 8, 0), callee=madrid, policy=policy).allowed
    afternoon = calling_decision(utc(2025, 6, 2, 13, 0), callee=madrid, policy=policy)  # 15:00
    assert afternoon.reason is CallingBlock.OUTSIDE_CAMPAIGN_HOURS
    assert afternoon.next_allowed_at == utc(2025, 6, 3, 8, 0)
    closed = calling_decision(utc(2025, 6, 4, 9, 0), callee=madrid, policy=policy)
    assert closed.reason is CallingBlock.CAMPAIGN_CLOSED_DAY and closed.next_allowed_at == utc(
        2025, 6, 5, 8, 0
    )
    after = calling_decision(utc(2025, 6, 9, 9, 0), callee=madrid, policy=policy)
    assert after.reason is CallingBlock.AFTER_CAMPAIGN_END and after.next_allowed_at is None
    with pytest.raises(ValueError, match="ends"):
        CampaignWindow(time_zone="Europe/Madrid", first_day=date(2025, 6, 6), last_day=date(2025, 6, 2))


def test_an_unknown_zone_is_never_callable() -> None:
    unknown = CalleeLocation("ES", ())
    decision = calling_decision(utc(2025, 6, 3, 10, 0), callee=unknown, policy=DEFAULT)
    assert decision.reason is CallingBlock.UNKNOWN_TIME_ZONE and decision.next_allowed_at is None


def test_hours_that_never_overlap_across_zones_give_no_next_instant() -> None:
    # 09:00-10:00 in Madrid and in Honolulu never coincide.
    apart = CalleeLocation(None, ("Europe/Madrid", "Pacific/Honolulu"))
    policy = CallingPolicy(callee_hours=WeeklyHours.every_day(time(9), time(10)), horizon_days=30)
    decision = calling_decision(utc(2025, 6, 3, 10, 0), callee=apart, policy=policy)
    assert not decision.allowed and decision.next_allowed_at is None


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="time zone"):
        calling_decision(datetime(2025, 6, 3, 10), callee=MADRID_ONLY, policy=DEFAULT)
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        LocalWindow.parse("9-21")
    with pytest.raises(ValueError, match="within one day"):
        LocalWindow.parse("09:00-24:30")
    with pytest.raises(ValueError, match="crosses midnight"):
        LocalWindow.parse("22:00-02:00")
    with pytest.raises(ValueError, match="overlap"):
        WeeklyHours.from_mapping({"mon": ["09:00-14:00", "13:00-20:00"]})
    with pytest.raises(ValueError, match="unknown weekday"):
        WeeklyHours.from_mapping({"funday": ["09:00-14:00"]})
    with pytest.raises(ValueError, match="unknown time zone"):
        CalleeLocation(None, ("Europe/Atlantis",))


# --- daylight saving time --------------------------------------------------------------------------


def test_madrid_opens_at_nine_local_across_the_spring_change() -> None:
    # Clocks go from 02:00 CET to 03:00 CEST on Sunday 30 March 2025 (01:00 UTC).
    assert calling_decision(
        utc(2025, 3, 29, 7, 59), callee=MADRID_ONLY, policy=DEFAULT
    ).next_allowed_at == utc(2025, 3, 29, 8, 0)
    saturday_night = calling_decision(utc(2025, 3, 29, 20, 0), callee=MADRID_ONLY, policy=DEFAULT)
    assert saturday_night.next_allowed_at == utc(2025, 3, 30, 7, 0)  # 09:00 CEST is an hour earlier in UTC
    assert calling_decision(utc(2025, 3, 30, 7, 0), callee=MADRID_ONLY, policy=DEFAULT).allowed
    assert not calling_decision(utc(2025, 3, 30, 6, 59), callee=MADRID_ONLY, policy=DEFAULT).allowed


def test_a_window_starting_in_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    policy = hours("02:30", "04:00")
    # Madrid: 02:00-03:00 does not exist on 30 March 2025; at 01:59 CET nothing is open yet.
    decision = calling_decision(utc(2025, 3, 30, 0, 59), callee=MADRID_ONLY, policy=policy)
    assert not decision.allowed and decision.next_allowed_at == utc(2025, 3, 30, 1, 0)  # 03:00 CEST
    assert calling_decision(utc(2025, 3, 30, 1, 0), callee=MADRID_ONLY, policy=policy).allowed_until == utc(
        2025, 3, 30, 2, 0
    )
    # New York: 02:00-03:00 does not exist on 9 March 2025 (07:00 UTC).
    ny = calling_decision(utc(2025, 3, 9, 6, 0), callee=NEW_YORK_ONLY, policy=policy)  # 01:00 EST
    assert ny.next_allowed_at == utc(2025, 3, 9, 7, 0)  # 03:00 EDT
    # New York opens at 09:00 EDT, 13:00 UTC, the morning the clocks change.
    evening = calling_decision(utc(2025, 3, 9, 2, 0), callee=NEW_YORK_ONLY, policy=DEFAULT)  # Sat 21:00 EST
    assert evening.next_allowed_at == utc(2025, 3, 9, 13, 0)


def test_a_window_over_the_repeated_hour_is_open_both_times() -> None:
    # Madrid: 02:00-03:00 happens twice on 26 October 2025, in CEST (00:00-01:00 UTC) then CET.
    policy = hours("02:00", "02:30")
    first = calling_decision(utc(2025, 10, 26, 0, 10), callee=MADRID_ONLY, policy=policy)
    assert first.allowed and first.allowed_until == utc(2025, 10, 26, 0, 30)
    between = calling_decision(utc(2025, 10, 26, 0, 45), callee=MADRID_ONLY, policy=policy)  # 02:45 CEST
    assert not between.allowed and between.next_allowed_at == utc(2025, 10, 26, 1, 0)  # 02:00 CET
    assert calling_decision(utc(2025, 10, 26, 1, 15), callee=MADRID_ONLY, policy=policy).allowed
    assert calling_decision(
        utc(2025, 10, 26, 1, 30), callee=MADRID_ONLY, policy=policy
    ).next_allowed_at == utc(2025, 10, 27, 1, 0)
    # New York: 01:00-02:00 happens twice on 2 November 2025, in EDT (05:00 UTC) then EST (06:00 UTC).
    ny_policy = hours("01:00", "01:30")
    assert calling_decision(utc(2025, 11, 2, 5, 15), callee=NEW_YORK_ONLY, policy=ny_policy).allowed
    gap = calling_decision(utc(2025, 11, 2, 5, 45), callee=NEW_YORK_ONLY, policy=ny_policy)
    assert not gap.allowed and gap.next_allowed_at == utc(2025, 11, 2, 6, 0)
    assert calling_decision(utc(2025, 11, 2, 6, 29), callee=NEW_YORK_ONLY, policy=ny_policy).allowed
    # The ordinary day: 09:00 EST is 14:00 UTC after the change.
    morning = calling_decision(utc(2025, 11, 2, 13, 59), callee=NEW_YORK_ONLY, policy=DEFAULT)
    assert morning.next_allowed_at == utc(2025, 11, 2, 14, 0)


# --- properties ------------------------------------------------------------------------------------

ZONES = (
    "Europe/Madrid",
    "Atlantic/Canary",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Europe/London",
    "Australia/Lord_Howe",  # a 30-minute daylight-saving shift
    "Asia/Kathmandu",  # UTC+05:45
    "America/Santiago",  # changes at midnight
    "Pacific/Chatham",  # UTC+12:45 / +13:45
)
REGIONS = (None, "US", "ES", "FR", "CA")
instants = st.datetimes(
    min_value=datetime(2021, 1, 1), max_value=datetime(2029, 12, 31), timezones=st.just(UTC)
)


@st.composite
def weekly_hours(draw: st.DrawFn) -> WeeklyHours:
    days = []
    for _ in range(7):
        cuts = sorted(set(draw(st.lists(st.integers(0, 24 * 4), min_size=0, max_size=4))))
        pairs = list(zip(cuts[0::2], cuts[1::2], strict=False))
        days.append(tuple(LocalWindow(a * 15, b * 15) for a, b in pairs if a < b))
    return WeeklyHours(tuple(days))


@st.composite
def callees_and_policies(draw: st.DrawFn) -> tuple[CalleeLocation, CallingPolicy]:
    zones = tuple(sorted(draw(st.sets(st.sampled_from(ZONES), min_size=1, max_size=3))))
    region = draw(st.sampled_from(REGIONS))
    holidays = frozenset(draw(st.sets(st.dates(date(2021, 1, 1), date(2029, 12, 31)), max_size=3)))
    policy = CallingPolicy(callee_hours=draw(weekly_hours()), callee_holidays=holidays, horizon_days=60)
    return CalleeLocation(region, zones), policy


def allowed_by_the_rules(now: datetime, callee: CalleeLocation, policy: CallingPolicy) -> bool:
    """The oracle: the local wall clock of every zone, read directly."""
    law = CALLING_LAWS.get(callee.region) if callee.region else None
    for zone in callee.zones:
        local = now.astimezone(ZoneInfo(zone))
        if local.date() in policy.callee_holidays or not policy.callee_hours.allows(local):
            return False
        if law is not None and not law.hours.allows(local):
            return False
    return True


@settings(max_examples=300, deadline=None)
@given(now=instants, case=callees_and_policies())
def test_never_says_callable_outside_the_callees_local_hours(
    now: datetime, case: tuple[CalleeLocation, CallingPolicy]
) -> None:
    callee, policy = case
    decision = calling_decision(now, callee=callee, policy=policy)
    assert decision.allowed == allowed_by_the_rules(now, callee, policy)
    if decision.allowed:
        assert decision.next_allowed_at == now and decision.reason is None
    else:
        assert decision.reason is not None and decision.detail


@settings(max_examples=200, deadline=None)
@given(now=instants, case=callees_and_policies(), probe=st.floats(0, 1))
def test_the_next_instant_is_allowed_and_nothing_before_it_is(
    now: datetime, case: tuple[CalleeLocation, CallingPolicy], probe: float
) -> None:
    callee, policy = case
    decision = calling_decision(now, callee=callee, policy=policy)
    if decision.allowed:
        if decision.allowed_until is not None:
            assert allowed_by_the_rules(decision.allowed_until - timedelta(seconds=1), callee, policy)
            assert not allowed_by_the_rules(decision.allowed_until, callee, policy)
        return
    following = decision.next_allowed_at
    if following is None:
        return
    assert following > now
    assert allowed_by_the_rules(following, callee, policy)
    assert not allowed_by_the_rules(following - timedelta(seconds=1), callee, policy)
    between = now + (following - now) * probe
    if between < following:
        assert not allowed_by_the_rules(between, callee, policy)
