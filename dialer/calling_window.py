"""Callee-local calling hours: may this number be called at this instant, and if not, when and why not.

Pure: the instant is an argument, never the clock. A call is allowed when every constraint allows it:

- the callee's hours (the campaign's, default 09:00-21:00 every day), cut down to what the law of the
  callee's country allows (`CALLING_LAWS`), on the local clock of EVERY zone the number may be in
  (a US area code spanning two zones is callable only when it is allowed in both), and not on the
  callee's holidays;
- the campaign's own schedule (its days, hours and dates, in its time zone), when it has one.

Time zones come from the number (`callee_location`, phonenumbers' time-zone data) or from an explicit
zone the caller knows better (a contact's field). Daylight saving time is zoneinfo's: each local window
is turned into UTC intervals piece by piece between the zone's offset changes, so a window that starts
inside a skipped hour opens when the clocks jump, and a window over a repeated hour is open both times.

    decision = calling_decision(now, callee=callee_location("+12015550123"), policy=CallingPolicy())
    if not decision.allowed:
        reschedule(contact, decision.next_allowed_at)  # None: never within the search horizon
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

WEEKDAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
# How far ahead `next_allowed_at` looks: past a year, "never" is the useful answer.
DEFAULT_HORIZON_DAYS = 366

_WINDOW_TEXT = re.compile(r"^(\d\d):(\d\d)\s*-\s*(\d\d):(\d\d)$")
_UNKNOWN_ZONE = "Etc/Unknown"  # what phonenumbers answers when it does not know


class CallingBlock(StrEnum):
    """Why a call may not be placed now."""

    UNKNOWN_TIME_ZONE = "unknown_time_zone"
    BEFORE_CAMPAIGN_START = "before_campaign_start"
    AFTER_CAMPAIGN_END = "after_campaign_end"
    CAMPAIGN_CLOSED_DAY = "campaign_closed_day"
    OUTSIDE_CAMPAIGN_HOURS = "outside_campaign_hours"
    CALLEE_HOLIDAY = "callee_holiday"
    CALLEE_DAY_NOT_ALLOWED = "callee_day_not_allowed"
    OUTSIDE_CALLEE_HOURS = "outside_callee_hours"


@dataclass(frozen=True, slots=True, order=True)
class LocalWindow:
    """From `start` to `end` (exclusive) on the local clock, in minutes after midnight (end up to 24:00)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise ValueError(
                f"a calling window runs from 00:00 to 24:00 and ends after it starts, not {self}"
                " (split a window that crosses midnight in two)"
            )

    @classmethod
    def of(cls, start: time, end: time | None) -> LocalWindow:
        """From two clock times; `end` None (or 00:00) means midnight at the end of the day."""
        end_minute = MINUTES_PER_DAY if end is None or end == time(0) else end.hour * 60 + end.minute
        return cls(start.hour * 60 + start.minute, end_minute)

    @classmethod
    def parse(cls, text: str) -> LocalWindow:
        """From "09:00-21:00"."""
        found = _WINDOW_TEXT.match(text.strip())
        if not found:
            raise ValueError(f"a calling window is written 'HH:MM-HH:MM', e.g. '09:00-21:00', not {text!r}")
        h1, m1, h2, m2 = (int(part) for part in found.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise ValueError(f"{text!r} is not a time range within one day")
        return cls(h1 * 60 + m1, h2 * 60 + m2)

    def contains(self, minute: int) -> bool:
        return self.start <= minute < self.end

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"


@dataclass(frozen=True, slots=True)
class WeeklyHours:
    """Hours on the local clock for each weekday, Monday first; a day without windows has no calls."""

    days: tuple[tuple[LocalWindow, ...], ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError("weekly hours need one entry per weekday, Monday first")
        for windows in self.days:
            for earlier, later in pairwise(windows):
                if later.start < earlier.end:
                    raise ValueError(f"calling windows {earlier} and {later} overlap or are out of order")

    @classmethod
    def every_day(
        cls, start: time, end: time | None, *, weekdays: Iterable[int | str] | None = None
    ) -> WeeklyHours:
        """The same window on `weekdays` (0 = Monday, or "mon".."sun"; all by default)."""
        chosen = set(range(7)) if weekdays is None else {_weekday(day) for day in weekdays}
        window = LocalWindow.of(start, end)
        return cls(tuple((window,) if day in chosen else () for day in range(7)))

    @classmethod
    def from_mapping(cls, by_day: Mapping[str, Sequence[str]]) -> WeeklyHours:
        """From {"mon": ["10:00-13:00", "14:00-20:00"], ...}; days left out have no calls."""
        days: list[tuple[LocalWindow, ...]] = [() for _ in range(7)]
        for name, texts in by_day.items():
            days[_weekday(name)] = tuple(sorted(LocalWindow.parse(text) for text in texts))
        return cls(tuple(days))

    def on(self, weekday: int) -> tuple[LocalWindow, ...]:
        return self.days[weekday]

    def allows(self, local: datetime) -> bool:
        """Whether the local wall-clock time `local` falls in a window of its weekday."""
        minute = local.hour * 60 + local.minute
        return any(window.contains(minute) for window in self.days[local.weekday()])

    def intersect(self, other: WeeklyHours) -> WeeklyHours:
        return WeeklyHours(
            tuple(_intersect_windows(a, b) for a, b in zip(self.days, other.days, strict=True))
        )

    def within(self, other: WeeklyHours) -> list[str]:
        """Where these hours go beyond `other`, one sentence per weekday (empty: they fit)."""
        problems = []
        for day, (mine, allowed) in enumerate(zip(self.days, other.days, strict=True)):
            if _intersect_windows(mine, allowed) != mine:
                shown = ", ".join(str(window) for window in mine)
                limit = ", ".join(str(window) for window in allowed) or "no calls"
                problems.append(f"{WEEKDAY_NAMES[day]}: {shown} is outside {limit}")
        return problems

    def __str__(self) -> str:
        return "; ".join(
            f"{WEEKDAY_NAMES[day]} {', '.join(str(window) for window in windows)}"
            for day, windows in enumerate(self.days)
            if windows
        )


def _weekday(day: int | str) -> int:
    if isinstance(day, int):
        if not 0 <= day <= 6:
            raise ValueError(f"a weekday is 0 (Monday) to 6 (Sunday), not {day}")
        return day
    try:
        return WEEKDAY_NAMES.index(day.strip().lower()[:3])
    except ValueError:
        raise ValueError(f"unknown weekday {day!r} (use mon, tue, wed, thu, fri, sat, sun)") from None


def _intersect_windows(a: Sequence[LocalWindow], b: Sequence[LocalWindow]) -> tuple[LocalWindow, ...]:
    out = []
    for x in a:
        for y in b:
            start, end = max(x.start, y.start), min(x.end, y.end)
            if start < end:
                out.append(LocalWindow(start, end))
    return tuple(sorted(out))


# The callee's hours when a campaign says nothing else (issue 6: 09:00-21:00, callee-local).
DEFAULT_CALLEE_HOURS = WeeklyHours.every_day(time(9), time(21))
ANY_TIME = WeeklyHours.every_day(time(0), None)


@dataclass(frozen=True, slots=True)
class CallingLaw:
    """What a country's law allows on the callee's local clock, and where the rule comes from."""

    region: str  # ISO 3166-1 alpha-2, as phonenumbers names regions
    hours: WeeklyHours
    no_calls_on_public_holidays: bool
    source: str


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")

# Statutory calling hours for unsolicited/marketing calls, on the callee's local clock. A country that is
# not here has no statutory hours known to this table: the campaign's own hours (default 09:00-21:00)
# still apply. Stricter state or provincial rules (e.g. some US states) are the campaign's to set.
CALLING_LAWS: Mapping[str, CallingLaw] = {
    "US": CallingLaw(
        "US",
        WeeklyHours.every_day(time(8), time(21)),
        no_calls_on_public_holidays=False,
        source="TCPA rules, 47 CFR 64.1200(c)(1): not before 8 a.m. or after 9 p.m., "
        "called party's local time",
    ),
    "CA": CallingLaw(
        "CA",
        WeeklyHours.from_mapping(
            {**{day: ["09:00-21:30"] for day in _WEEKDAYS}, "sat": ["10:00-18:00"], "sun": ["10:00-18:00"]}
        ),
        no_calls_on_public_holidays=False,
        source="CRTC Unsolicited Telecommunications Rules, Part III (Telemarketing): "
        "weekdays 9:00-21:30, weekends 10:00-18:00, callee's local time",
    ),
    "ES": CallingLaw(
        "ES",
        WeeklyHours.every_day(time(9), time(21), weekdays=_WEEKDAYS),
        no_calls_on_public_holidays=True,
        source="TRLGDCU (RDL 1/2007) art. 96.3, as amended by Ley 3/2014: "
        "not before 9:00 or after 21:00, nor on weekends or public holidays",
    ),
    "FR": CallingLaw(
        "FR",
        WeeklyHours.from_mapping({day: ["10:00-13:00", "14:00-20:00"] for day in _WEEKDAYS}),
        no_calls_on_public_holidays=True,
        source="Code de la consommation art. D223-8 (décret 2022-1313): "
        "Monday to Friday 10:00-13:00 and 14:00-20:00, not on public holidays",
    ),
}


@dataclass(frozen=True, slots=True)
class CampaignWindow:
    """The campaign's own schedule: when it runs, in its own time zone (the call centre's)."""

    time_zone: str
    hours: WeeklyHours = ANY_TIME
    first_day: date | None = None  # inclusive, local to `time_zone`
    last_day: date | None = None  # inclusive
    closed_dates: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        load_zone(self.time_zone)
        if self.first_day and self.last_day and self.last_day < self.first_day:
            raise ValueError(f"the campaign ends ({self.last_day}) before it starts ({self.first_day})")


@dataclass(frozen=True, slots=True)
class CallingPolicy:
    """Everything that decides calling hours, except the callee and the instant."""

    callee_hours: WeeklyHours = DEFAULT_CALLEE_HOURS
    # Dates, on the callee's local calendar, with no calls at all (the campaign's choice).
    callee_holidays: frozenset[date] = frozenset()
    # Public holidays per region ("ES": {...}); applied where the law forbids calls on them, or everywhere
    # with `avoid_public_holidays`. The dates come from the caller: there is no holiday calendar here.
    public_holidays: Mapping[str, frozenset[date]] = field(default_factory=dict)
    avoid_public_holidays: bool = False
    laws: Mapping[str, CallingLaw] = field(default_factory=lambda: CALLING_LAWS)
    campaign: CampaignWindow | None = None
    horizon_days: int = DEFAULT_HORIZON_DAYS


@dataclass(frozen=True, slots=True)
class CalleeLocation:
    """Where the callee may be: their country (None if unknown) and every time zone they may be in."""

    region: str | None
    zones: tuple[str, ...]

    def __post_init__(self) -> None:
        for zone in self.zones:
            load_zone(zone)


@dataclass(frozen=True, slots=True)
class CallingDecision:
    allowed: bool
    reason: CallingBlock | None  # None when allowed
    detail: str  # one sentence: what was checked, or what blocks the call
    # Allowed: now. Not allowed: the first instant every constraint allows, or None if there is none
    # within the policy's horizon (the campaign has ended, the hours never overlap, the zone is unknown).
    next_allowed_at: datetime | None
    # Allowed: when the current window closes (None: not within the horizon).
    allowed_until: datetime | None
    zone: str | None = None  # the zone whose local time blocks the call


def load_zone(name: str) -> ZoneInfo:
    """The zone, or ValueError naming it (zoneinfo caches zones, so this is cheap after the first call)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Madrid')") from None


def callee_location(e164: str, *, time_zone: str | None = None) -> CalleeLocation:
    """The callee's country and candidate zones from an E.164 number, or from `time_zone` if given
    (a contact's explicit zone beats the number's: a mobile travels, a landline's area code may span two).
    An unknown number gives no zones, and so is never callable."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{e164!r} is not an E.164 number: {exc}") from None
    region = phonenumbers.region_code_for_number(number)
    if region in (None, "ZZ", "001"):
        region = None
    if time_zone is not None:
        return CalleeLocation(region, (time_zone,))
    return CalleeLocation(region, zones_for_number(number))


def zones_for_number(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    """The IANA zones a number may be in, sorted; empty when unknown (an invalid number, no data).

    The same answer as `phonenumbers.timezone.time_zones_for_number` (a test holds them equal), about
    twice as fast: the number-type patterns are compiled once per region instead of looked up per
    call, which was the largest cost of importing a million contacts."""
    code = number.country_code
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code) if code is not None else None
    if code is None or not regions:
        return ()
    region = regions[0] if len(regions) == 1 else phonenumbers.region_code_for_number(number)
    if region is None:
        return ()
    return zones_for_national(code, region, phonenumbers.national_significant_number(number))


def zones_for_national(code: int, region: str, national: str) -> tuple[str, ...]:
    """`zones_for_number` for a number already taken apart: its country code, the region phonenumbers
    gives it ("001" for non-geographic codes) and its national significant number."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:
        return ()
    kind = _number_type(national, metadata)
    if kind == PhoneNumberType.UNKNOWN:
        return ()
    if phonenumbers.is_number_type_geographical(kind, code):
        return _zones_by_prefix(f"{code}{national}")
    return _zones_by_prefix(str(code))


@lru_cache(maxsize=65536)
def _zones_by_prefix(digits: str) -> tuple[str, ...]:
    for size in range(min(len(digits), TIMEZONE_LONGEST_PREFIX), 0, -1):
        zones = TIMEZONE_DATA.get(digits[:size])
        if zones is not None:
            return tuple(sorted(zone for zone in zones if zone != _UNKNOWN_ZONE))
    return ()


@dataclass(frozen=True, slots=True)
class _Pattern:
    """A phonenumbers PhoneNumberDesc, compiled: possible lengths, then the national number pattern."""

    lengths: frozenset[int]
    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, desc: object) -> _Pattern:
        if desc is None:
            return cls(frozenset(), None)
        text = getattr(desc, "national_number_pattern", None)
        return cls(frozenset(getattr(desc, "possible_length", ()) or ()), re.compile(text) if text else None)

    def matches(self, national: str) -> bool:
        if self.lengths and len(national) not in self.lengths:
            return False
        return self.pattern is not None and self.pattern.fullmatch(national) is not None


_SPECIAL_TYPES = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)
# By id(): phonenumbers loads each region's metadata once and keeps it for the life of the process.
_COMPILED: dict[int, tuple[_Pattern, tuple[tuple[_Pattern, int], ...], _Pattern, _Pattern, bool]] = {}


def _number_type(national: str, metadata: PhoneMetadata) -> int:
    """phonenumbers' `_number_type_helper`, in the same order, over patterns compiled once."""
    compiled = _COMPILED.get(id(metadata))
    if compiled is None:
        compiled = _COMPILED[id(metadata)] = (
            _Pattern.of(metadata.general_desc),
            # Types without a pattern never match: leave them out of the loop.
            tuple(
                (pattern, kind)
                for pattern, kind in (
                    (_Pattern.of(getattr(metadata, name)), kind) for name, kind in _SPECIAL_TYPES
                )
                if pattern.pattern is not None
            ),
            _Pattern.of(metadata.fixed_line),
            _Pattern.of(metadata.mobile),
            bool(metadata.same_mobile_and_fixed_line_pattern),
        )
    general, special, fixed_line, mobile, same_pattern = compiled
    if not general.matches(national):
        return PhoneNumberType.UNKNOWN
    for pattern, kind in special:
        if pattern.matches(national):
            return kind
    if fixed_line.matches(national):
        if same_pattern or mobile.matches(national):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not same_pattern and mobile.matches(national):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


# --- the decision ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Constraint:
    """Hours on one zone's local clock, closed on some local dates, optionally between two dates."""

    zone: str
    hours: WeeklyHours
    closed: frozenset[date]
    first_day: date | None
    last_day: date | None
    is_campaign: bool
    law: str | None = None  # the region whose law cut the hours down, named in the explanation

    def block_at(self, now: datetime) -> tuple[CallingBlock, str] | None:
        """Why this constraint refuses `now` (local wall-clock check), or None if it allows it."""
        local = now.astimezone(load_zone(self.zone))
        day = local.date()
        shown = f"{local:%a %Y-%m-%d %H:%M} in {self.zone}"
        if self.is_campaign:
            if self.first_day and day < self.first_day:
                return (
                    CallingBlock.BEFORE_CAMPAIGN_START,
                    f"the campaign starts on {self.first_day} ({shown})",
                )
            if self.last_day and day > self.last_day:
                return CallingBlock.AFTER_CAMPAIGN_END, f"the campaign ended on {self.last_day} ({shown})"
            if day in self.closed or not self.hours.on(local.weekday()):
                return CallingBlock.CAMPAIGN_CLOSED_DAY, f"the campaign does not run on {shown}"
            if not self.hours.allows(local):
                windows = ", ".join(str(w) for w in self.hours.on(local.weekday()))
                return (
                    CallingBlock.OUTSIDE_CAMPAIGN_HOURS,
                    f"{shown} is outside the campaign's hours {windows}",
                )
            return None
        under = f" (campaign hours within {self.law} law)" if self.law else ""
        if day in self.closed:
            return CallingBlock.CALLEE_HOLIDAY, f"{shown} is a holiday for the callee{under}"
        if not self.hours.on(local.weekday()):
            return CallingBlock.CALLEE_DAY_NOT_ALLOWED, f"no calls on {shown}{under}"
        if not self.hours.allows(local):
            windows = ", ".join(str(w) for w in self.hours.on(local.weekday()))
            return CallingBlock.OUTSIDE_CALLEE_HOURS, f"{shown} is outside the calling hours {windows}{under}"
        return None

    def intervals(self, start: datetime, horizon: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The UTC intervals this constraint allows, in order, merged, from the one holding `start`."""
        zone = load_zone(self.zone)
        # The day before: a zone that falls back across midnight revisits the previous local date.
        day = start.astimezone(zone).date() - timedelta(days=1)
        if self.first_day and day < self.first_day:
            day = self.first_day
        pending: tuple[datetime, datetime] | None = None
        while True:
            if (self.last_day and day > self.last_day) or _day_start_utc(day, zone) > horizon:
                break
            if day not in self.closed:
                for lo, hi in _utc_intervals(self.zone, day, self.hours.on(day.weekday())):
                    if hi <= start:
                        continue
                    if pending is None:
                        pending = (lo, hi)
                    elif lo <= pending[1]:
                        pending = (pending[0], max(pending[1], hi))
                    else:
                        yield pending
                        pending = (lo, hi)
            day += timedelta(days=1)
        if pending is not None:
            yield pending


def calling_decision(now: datetime, *, callee: CalleeLocation, policy: CallingPolicy) -> CallingDecision:
    """May the callee be called at `now` (an aware datetime)? If not, why, and from when."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    if not callee.zones:
        return CallingDecision(
            allowed=False,
            reason=CallingBlock.UNKNOWN_TIME_ZONE,
            detail="the callee's time zone is unknown (give the contact an explicit time zone)",
            next_allowed_at=None,
            allowed_until=None,
        )
    now = now.astimezone(UTC)
    constraints = _constraints(callee, policy)
    horizon = now + timedelta(days=policy.horizon_days)
    window = next(_intersection([c.intervals(now, horizon) for c in constraints]), None)
    if window is not None and window[0] <= now:
        return CallingDecision(
            allowed=True,
            reason=None,
            detail=f"allowed in {', '.join(callee.zones)}",
            next_allowed_at=now,
            allowed_until=window[1] if window[1] < horizon else None,
        )
    next_at = window[0] if window is not None else None
    for constraint in constraints:
        blocked = constraint.block_at(now)
        if blocked is not None:
            reason, detail = blocked
            return CallingDecision(False, reason, detail, next_at, None, constraint.zone)
    # Unreachable while block_at and intervals agree; say so rather than allow a call.
    raise AssertionError(f"calling window disagreement at {now.isoformat()} for {callee}")


def _constraints(callee: CalleeLocation, policy: CallingPolicy) -> list[_Constraint]:
    out = []
    if policy.campaign is not None:
        campaign = policy.campaign
        out.append(
            _Constraint(
                campaign.time_zone,
                campaign.hours,
                campaign.closed_dates,
                campaign.first_day,
                campaign.last_day,
                is_campaign=True,
            )
        )
    hours = policy.callee_hours
    closed = set(policy.callee_holidays)
    law = policy.laws.get(callee.region) if callee.region else None
    if law is not None:
        hours = hours.intersect(law.hours)
    if callee.region and (
        policy.avoid_public_holidays or (law is not None and law.no_calls_on_public_holidays)
    ):
        closed |= policy.public_holidays.get(callee.region, frozenset())
    frozen_closed = frozenset(closed)
    for zone in callee.zones:
        out.append(
            _Constraint(
                zone, hours, frozen_closed, None, None, is_campaign=False, law=law.region if law else None
            )
        )
    return out


def _intersection(
    streams: Sequence[Iterator[tuple[datetime, datetime]]],
) -> Iterator[tuple[datetime, datetime]]:
    """The instants every stream allows, as ordered, non-overlapping intervals."""
    current: list[tuple[datetime, datetime]] = []
    for stream in streams:
        first = next(stream, None)
        if first is None:
            return
        current.append(first)
    while True:
        lo = max(interval[0] for interval in current)
        hi = min(interval[1] for interval in current)
        if lo < hi:
            yield lo, hi
        # Move on every stream whose interval ends first: nothing after `hi` is left in it.
        for index, stream in enumerate(streams):
            if current[index][1] == hi:
                following = next(stream, None)
                if following is None:
                    return
                current[index] = following


def _day_start_utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


# Per zone and day: a year of days for a number spanning forty zones (a toll-free +1) still fits.
@lru_cache(maxsize=65536)
def _utc_intervals(
    zone_name: str, day: date, windows: tuple[LocalWindow, ...]
) -> tuple[tuple[datetime, datetime], ...]:
    """The UTC instants whose wall-clock time in the zone is on `day` and inside `windows`.

    Wall time is UTC plus an offset that is constant between the zone's transitions, so on each piece
    the window maps to UTC by subtracting that piece's offset, clipped to the piece. That is exact at
    daylight-saving changes: a skipped hour maps to nothing, a repeated hour to two intervals."""
    if not windows:
        return ()
    midnight = datetime.combine(day, time(0))  # naive: wall-clock arithmetic
    out: list[tuple[datetime, datetime]] = []
    for piece_start, piece_end, offset in _offset_pieces(zone_name, day):
        for window in windows:
            lo = max(piece_start, midnight + timedelta(minutes=window.start) - offset)
            hi = min(piece_end, midnight + timedelta(minutes=window.end) - offset)
            if lo < hi:
                out.append((lo.replace(tzinfo=UTC), hi.replace(tzinfo=UTC)))
    out.sort()
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in out:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _offset_at(zone: ZoneInfo, naive_utc: datetime) -> timedelta:
    offset = naive_utc.replace(tzinfo=UTC).astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


@lru_cache(maxsize=65536)
def _offset_pieces(zone_name: str, day: date) -> tuple[tuple[datetime, datetime, timedelta], ...]:
    """Naive-UTC pieces [start, end) with a constant offset, covering every instant whose local date is
    `day` (offsets stay within about -12 h and +14 h, so 15 h either side covers them)."""
    zone = load_zone(zone_name)
    start = datetime.combine(day, time(0)) - timedelta(hours=15)
    end = datetime.combine(day, time(0)) + timedelta(hours=24 + 15)
    step = timedelta(hours=3)  # no zone changes its offset twice within 3 hours
    pieces: list[tuple[datetime, datetime, timedelta]] = []
    piece_start, piece_offset = start, _offset_at(zone, start)
    probe = start
    while probe < end:
        following = min(probe + step, end)
        offset = _offset_at(zone, following)
        if offset != piece_offset:
            change = _find_change(zone, probe, following, piece_offset)
            pieces.append((piece_start, change, piece_offset))
            piece_start, piece_offset = change, offset
        probe = following
    pieces.append((piece_start, end, piece_offset))
    return tuple(pieces)


def _find_change(zone: ZoneInfo, lo: datetime, hi: datetime, before: timedelta) -> datetime:
    """The first whole second in (lo, hi] whose offset is not `before` (zones change on whole seconds)."""
    low, high = 0, int((hi - lo).total_seconds())
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(zone, lo + timedelta(seconds=middle)) == before:
            low = middle
        else:
            high = middle
    return lo + timedelta(seconds=high)
