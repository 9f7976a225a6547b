"""Campaign settings, and the rules that refuse a campaign that would break the law.

Two layers, so that each error names its field:

- `CampaignSettings` (pydantic, reused by the API) checks each field's shape: types, ranges that no
  campaign may leave (max attempts at least 1, retry delays not negative), time zones, phone numbers;
- `campaign_violations(settings, now=...)` checks what depends on the law of the campaign's country or on
  the date: abandonment target, drop wait, ring time-out, the abandoned-call message, callee hours
  within the legal window, a schedule that already ended. `check_campaign` raises them all at once as
  `CampaignRulesBroken` (an `InvalidInput`), each violation with its field path.

Stored settings are read back with `CampaignSettings.model_validate` and checked again before a start:
a law table that tightened since the campaign was created stops it then.

    settings = CampaignSettings.model_validate(body)       # 422 with the field on a shape error
    check_campaign(settings, now=clock.now())              # CampaignRulesBroken naming each field
    policy = settings.calling_policy(public_holidays={"ES": holidays})   # for dialer.calling_window
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.customers.identities import normalise_phone
from core.errors import InvalidInput
from core.text_folding import fold
from dialer.abandonment import DEFAULT_TARGET, LEGAL_DROP_WAIT, MIN_RING_BEFORE_NO_ANSWER
from dialer.calling_window import (
    CALLING_LAWS,
    DEFAULT_CALLEE_HOURS,
    CallingPolicy,
    CampaignWindow,
    LocalWindow,
    WeeklyHours,
    load_zone,
)
from voice.ivr.recording_consent import consent_text

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# Where the campaign's prompts (abandoned-call message, recording notice) are in Spanish; English elsewhere.
SPANISH_SPEAKING = frozenset(
    {
        "ES",
        "MX",
        "AR",
        "CO",
        "CL",
        "PE",
        "VE",
        "EC",
        "GT",
        "CU",
        "BO",
        "DO",
        "HN",
        "PY",
        "SV",
        "NI",
        "CR",
        "PA",
        "UY",
    }
)
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _hours_range(value: str) -> str:
    return str(LocalWindow.parse(value))  # "9:00-21:00" is refused; "09:00 - 21:00" becomes "09:00-21:00"


def _time_zone(value: str) -> str:
    load_zone(value)
    return value


HoursRange = Annotated[str, AfterValidator(_hours_range), Field(examples=["09:00-21:00"])]
TimeZoneName = Annotated[str, AfterValidator(_time_zone), Field(examples=["Europe/Madrid"])]
Weekly = dict[Weekday, list[HoursRange]]
# Queue names, as the IVR flows name them.
QueueName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
# An agent's phone as Asterisk dials it: technology/resource.
AgentEndpoint = Annotated[str, Field(pattern=r"^[A-Za-z]+/[A-Za-z0-9_.@-]{1,80}$", examples=["PJSIP/1001"])]


class DialMode(StrEnum):
    PREVIEW = "preview"  # the agent sees the contact and chooses to call or skip
    PROGRESSIVE = "progressive"  # one call per free agent
    PREDICTIVE = "predictive"  # calls ahead of free agents, paced to the abandonment target


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _weekly_hours(weekly: Weekly) -> WeeklyHours:
    return WeeklyHours.from_mapping({str(day): hours for day, hours in weekly.items()})


class RetryDelays(_Strict):
    """Seconds to wait before the next attempt, per disposition of the last one."""

    busy: int = Field(default=15 * 60, ge=0)
    no_answer: int = Field(default=2 * 3600, ge=0)
    answering_machine: int = Field(default=4 * 3600, ge=0)
    failed: int = Field(default=30 * 60, ge=0)
    call_back_later: int = Field(
        default=2 * 3600,
        ge=0,
        description="after an abandoned call (its callee expects one); an agent's call_back has its time",
    )
    no_contact: int = Field(
        default=2 * 3600,
        ge=0,
        description="the agent's disposition `no_contact`: the right person was not reached",
    )
    skipped: int = Field(
        default=3600, ge=0, description="a preview the agent skipped to retry later without giving a time"
    )


class CampaignSchedule(_Strict):
    """When the campaign runs, in its own time zone (the call centre's); callee hours apply on top."""

    time_zone: TimeZoneName
    weekly: Weekly = Field(
        default_factory=lambda: {day: ["00:00-24:00"] for day in WEEKDAYS},
        description="hours per weekday; days left out do not run",
    )
    start_date: date | None = None
    end_date: date | None = Field(default=None, description="the last day, inclusive")
    closed_dates: list[date] = Field(default_factory=list, max_length=366)

    @field_validator("weekly")
    @classmethod
    def _valid_week(cls, value: Weekly) -> Weekly:
        if not any(value.values()):
            raise ValueError("a schedule needs hours on at least one day")
        _weekly_hours(value)  # overlapping ranges
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> CampaignSchedule:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


class CampaignSettings(_Strict):
    name: str = Field(min_length=1, max_length=100)
    mode: DialMode
    country: str = Field(
        pattern=r"^[A-Z]{2}$",
        examples=["ES", "US", "GB"],
        description="ISO 3166-1 alpha-2: whose law caps abandonment (callee hours follow each number's)",
    )
    caller_id: str = Field(
        description="the number shown to the callee; read in `country` if not international"
    )
    company_name: str = Field(min_length=1, max_length=100, description="who is calling, as callees know it")
    queue: QueueName
    schedule: CampaignSchedule
    callee_hours: Weekly | None = Field(
        default=None,
        description="callee-local hours per weekday; default 09:00-21:00 every day, within the callee's law",
    )
    callee_holidays: list[date] = Field(default_factory=list, max_length=366)
    avoid_public_holidays: bool = False
    max_attempts: int = Field(default=3, ge=1, le=100)
    retry_delays: RetryDelays = Field(default_factory=RetryDelays)
    abandonment_target: float = Field(
        default=DEFAULT_TARGET, ge=0, le=1, description="a fraction: 0.03 is 3%"
    )
    abandon_message: str = Field(
        min_length=1,
        max_length=1000,
        description="what an abandoned call hears: must name the company and a number to call back",
    )
    amd: bool = Field(default=False, description="answering-machine detection")
    drop_wait_seconds: float = Field(
        default=LEGAL_DROP_WAIT.total_seconds(),
        gt=0,
        description="how long an answered call waits for an agent before it is abandoned (with the message)",
    )
    ring_timeout_seconds: int = Field(default=25, gt=0, le=300, description="ringing before a no-answer")
    require_call_consent: bool = Field(
        default=False, description="only call customers with a recorded consent to calls (marketing)"
    )
    agents: list[AgentEndpoint] = Field(
        min_length=1,
        max_length=500,
        description="the agents' phones that take this campaign's calls, e.g. PJSIP/1001",
    )
    wrap_up_seconds: float = Field(
        default=15, ge=0, le=3600, description="after-call work before the next call"
    )
    max_lines: int | None = Field(
        default=None, ge=1, le=10_000, description="calls ringing at once (trunk capacity)"
    )
    preview_timeout_seconds: int = Field(
        default=120,
        ge=10,
        le=3600,
        description="preview: how long a contact shown to an agent stays theirs before it goes back",
    )
    do_not_call_disposition: Literal["global", "campaign"] = Field(
        default="global",
        description="where an agent's `do_not_call` disposition lists the number (unless the request says)",
    )
    recording: Literal["always", "on_demand", "never"] = Field(
        default="never",
        description="record the conversation with the agent: always, when the agent asks, or never; "
        "with always or on_demand the callee hears the recording notice first",
    )
    recording_notice: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="what the callee hears when the call may be recorded; default: "
        '"This call may be recorded…" in the campaign\'s language (Spanish in Spanish-speaking countries)',
    )

    @field_validator("agents")
    @classmethod
    def _distinct_agents(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an agent is listed twice")
        return value

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown country code {value!r} (ISO 3166-1 alpha-2, e.g. 'ES')")
        return value

    @field_validator("caller_id")
    @classmethod
    def _caller_id_e164(cls, value: str, info: ValidationInfo) -> str:
        # `country` is declared before `caller_id`, so it is in `info.data` when it was valid.
        region = info.data.get("country") or "ZZ"
        try:
            return normalise_phone(value, region=region)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    @field_validator("callee_hours")
    @classmethod
    def _valid_callee_hours(cls, value: Weekly | None) -> Weekly | None:
        if value is not None:
            if not any(value.values()):
                raise ValueError("callee hours need at least one day with hours")
            _weekly_hours(value)
        return value

    @model_validator(mode="after")
    def _notice_only_when_recording(self) -> CampaignSettings:
        if self.recording_notice is not None and self.recording == "never":
            raise ValueError("recording_notice is set but recording is never: nobody would hear it")
        return self

    def prompt_language(self) -> str:
        """The language of the campaign's prompts (its messages and the recording notice)."""
        return "es" if self.country in SPANISH_SPEAKING else "en"

    def recording_notice_text(self) -> str | None:
        """What the callee hears before a recorded conversation; None when the campaign never records."""
        if self.recording == "never":
            return None
        return self.recording_notice or consent_text(self.prompt_language())

    def callee_weekly_hours(self) -> WeeklyHours:
        return DEFAULT_CALLEE_HOURS if self.callee_hours is None else _weekly_hours(self.callee_hours)

    def calling_policy(
        self, *, public_holidays: Mapping[str, frozenset[date]] | None = None
    ) -> CallingPolicy:
        """The inputs of `dialer.calling_window.calling_decision` for this campaign."""
        schedule = self.schedule
        return CallingPolicy(
            callee_hours=self.callee_weekly_hours(),
            callee_holidays=frozenset(self.callee_holidays),
            public_holidays=dict(public_holidays or {}),
            avoid_public_holidays=self.avoid_public_holidays,
            campaign=CampaignWindow(
                time_zone=schedule.time_zone,
                hours=_weekly_hours(schedule.weekly),
                first_day=schedule.start_date,
                last_day=schedule.end_date,
                closed_dates=frozenset(schedule.closed_dates),
            ),
        )


# --- the law ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DialingLaw:
    """What a country caps for automated dialing."""

    region: str
    abandonment_cap: float  # of live calls
    abandonment_window: timedelta  # the period the cap is measured over
    max_drop_wait: timedelta  # from the end of the greeting to an agent
    min_ring: timedelta  # before giving up on an unanswered call
    source: str


DIALING_LAWS: Mapping[str, DialingLaw] = {
    "US": DialingLaw(
        "US",
        abandonment_cap=0.03,
        abandonment_window=timedelta(days=30),
        max_drop_wait=timedelta(seconds=2),
        min_ring=timedelta(seconds=15),
        source="TCPA rules, 47 CFR 64.1200(a)(7) (at most 3% of live-answered calls per campaign "
        "over 30 days, "
        "an agent within 2 s of the greeting, else a message naming the seller and a number) "
        "and 64.1200(a)(6) (ring 15 s or four rings)",
    ),
    "GB": DialingLaw(
        "GB",
        abandonment_cap=0.03,
        abandonment_window=timedelta(hours=24),
        max_drop_wait=timedelta(seconds=2),
        min_ring=timedelta(seconds=15),
        source="Ofcom, statement of policy on the persistent misuse of an electronic communications network "
        "or service (at most 3% of live calls per campaign over any 24 hours, 2 s from the greeting, "
        "ring at least 15 s, a message naming the company and a number to call back)",
    ),
}

# Countries not in the table get the same caps: issue 6 holds every campaign to them.
HOUSE_RULES = DialingLaw(
    "",
    abandonment_cap=DEFAULT_TARGET,
    abandonment_window=timedelta(days=30),  # both 30 days and 24 hours are checked in the report
    max_drop_wait=LEGAL_DROP_WAIT,
    min_ring=MIN_RING_BEFORE_NO_ANSWER,
    source="Centralita's rule for every campaign (the US and UK caps)",
)

_PHONE_TYPES_REFUSED = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
}


@dataclass(frozen=True, slots=True)
class RuleViolation:
    field: str  # dotted path in the settings, e.g. "schedule.end_date"
    rule: str  # a stable id, e.g. "abandonment_target_over_cap"
    message: str


class CampaignRulesBroken(InvalidInput):
    """The settings would break a rule; `violations` names each field (the API answers 422 with them)."""

    def __init__(self, violations: list[RuleViolation]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{v.field}: {v.message}" for v in violations))


def dialing_law(country: str) -> DialingLaw:
    return DIALING_LAWS.get(country, HOUSE_RULES)


def campaign_violations(settings: CampaignSettings, *, now: datetime) -> list[RuleViolation]:
    """Every rule the settings break, for `settings.country`, as of `now` (an aware datetime)."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    law = dialing_law(settings.country)
    cite = f" ({law.source})"
    out: list[RuleViolation] = []

    cap = min(law.abandonment_cap, DEFAULT_TARGET)
    if settings.abandonment_target > cap:
        out.append(
            RuleViolation(
                "abandonment_target",
                "abandonment_target_over_cap",
                f"{settings.abandonment_target:.2%} is above the {cap:.0%} cap for {settings.country}" + cite,
            )
        )
    drop_wait = timedelta(seconds=settings.drop_wait_seconds)
    if drop_wait > law.max_drop_wait:
        out.append(
            RuleViolation(
                "drop_wait_seconds",
                "drop_wait_too_long",
                f"an answered call must reach an agent within {law.max_drop_wait.total_seconds():g} s "
                f"of the greeting, not {settings.drop_wait_seconds:g} s" + cite,
            )
        )
    if timedelta(seconds=settings.ring_timeout_seconds) < law.min_ring:
        out.append(
            RuleViolation(
                "ring_timeout_seconds",
                "ring_timeout_too_short",
                f"an unanswered call must ring at least {law.min_ring.total_seconds():g} s, "
                f"not {settings.ring_timeout_seconds} s" + cite,
            )
        )
    out.extend(_message_violations(settings, cite))
    out.extend(_recording_violations(settings))
    out.extend(_hours_violations(settings))

    today = now.astimezone(load_zone(settings.schedule.time_zone)).date()
    end_date = settings.schedule.end_date
    if end_date is not None and end_date < today:
        out.append(
            RuleViolation(
                "schedule.end_date",
                "schedule_ended",
                f"the schedule ended on {end_date}; today is {today} in {settings.schedule.time_zone}",
            )
        )
    return out


def check_campaign(settings: CampaignSettings, *, now: datetime) -> None:
    """Raise `CampaignRulesBroken` listing every violation, if there is any."""
    violations = campaign_violations(settings, now=now)
    if violations:
        raise CampaignRulesBroken(violations)


def _message_violations(settings: CampaignSettings, cite: str) -> list[RuleViolation]:
    out = []
    message = settings.abandon_message
    if not _names(fold(message), fold(settings.company_name)):
        out.append(
            RuleViolation(
                "abandon_message",
                "abandon_message_without_company",
                f"the abandoned-call message must name the company ({settings.company_name!r})" + cite,
            )
        )
    numbers = [
        match.number
        for match in phonenumbers.PhoneNumberMatcher(
            message, settings.country, leniency=phonenumbers.Leniency.POSSIBLE
        )
    ]
    if not numbers:
        out.append(
            RuleViolation(
                "abandon_message",
                "abandon_message_without_number",
                "the abandoned-call message must give a number to call back, written in full" + cite,
            )
        )
    for number in numbers:
        refused = _PHONE_TYPES_REFUSED.get(phonenumbers.number_type(number))
        if refused:
            shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            out.append(
                RuleViolation(
                    "abandon_message",
                    "abandon_message_paid_number",
                    f"the number to call back ({shown}) is {refused}; give a free or ordinary one" + cite,
                )
            )
    return out


# A recording notice must say that the call is recorded: these stems, in the languages campaigns use.
_RECORDING_WORDS = re.compile(r"(record|grab|grava[dc]|enregistr|registra|aufgezeichn|aufzeichn)")


def _recording_violations(settings: CampaignSettings) -> list[RuleViolation]:
    notice = settings.recording_notice
    if notice is None or _RECORDING_WORDS.search(fold(notice)):
        return []
    return [
        RuleViolation(
            "recording_notice",
            "recording_notice_does_not_say_recorded",
            "the recording notice must tell the callee that the call may be recorded "
            '(e.g. "This call may be recorded", "Esta llamada puede ser grabada") before it is',
        )
    ]


def _names(text: str, name: str) -> bool:
    # The whole name as words: "Acme" is not named by "Acmeville".
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


def _hours_violations(settings: CampaignSettings) -> list[RuleViolation]:
    law = CALLING_LAWS.get(settings.country)
    if law is None or settings.callee_hours is None:
        # The default hours are cut to each callee's law at dial time; only explicit hours are judged.
        return []
    problems = settings.callee_weekly_hours().within(law.hours)
    if not problems:
        return []
    return [
        RuleViolation(
            "callee_hours",
            "callee_hours_outside_law",
            f"calling hours outside what {settings.country} law allows ({law.hours}): "
            + "; ".join(problems)
            + f" ({law.source})",
        )
    ]
