"""Campaign settings: each field's shape and the law of the campaign's country, errors naming the field."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from pydantic import ValidationError

from core.errors import InvalidInput
from dialer.calling_window import CalleeLocation, CallingBlock, WeeklyHours, calling_decision
from dialer.campaign_rules import (
    DIALING_LAWS,
    CampaignRulesBroken,
    CampaignSettings,
    DialMode,
    campaign_violations,
    check_campaign,
)

NOW = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def body(**changes: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "name": "Renovaciones junio",
        "mode": "predictive",
        "country": "ES",
        "caller_id": "910 000 000",
        "company_name": "Seguros Sol",
        "queue": "renewals",
        "agents": ["PJSIP/1001", "PJSIP/1002"],
        "schedule": {
            "time_zone": "Europe/Madrid",
            "weekly": {"mon": ["09:00-20:00"], "tue": ["09:00-20:00"]},
        },
        "abandon_message": "Le llamábamos de Seguros Sol. Llámenos al 910 000 000. Gracias.",
    }
    return settings | changes


def us_body(**changes: Any) -> dict[str, Any]:
    return (
        body(
            country="US",
            caller_id="(212) 555-0100",
            company_name="Acme Insurance",
            schedule={"time_zone": "America/New_York"},
            abandon_message="This is Acme Insurance. Please call us back at 1-800-555-0199.",
        )
        | changes
    )


def violations(data: dict[str, Any], now: datetime = NOW) -> dict[str, str]:
    return {v.field: v.rule for v in campaign_violations(CampaignSettings.model_validate(data), now=now)}


def shape_errors(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        CampaignSettings.model_validate(data)
    return [error["loc"] for error in caught.value.errors()]


def test_a_lawful_campaign_passes_with_its_numbers_normalised_and_defaults_set() -> None:
    settings = CampaignSettings.model_validate(body())
    assert settings.caller_id == "+34910000000"
    assert settings.mode is DialMode.PREDICTIVE
    assert (settings.abandonment_target, settings.drop_wait_seconds, settings.ring_timeout_seconds) == (
        0.03,
        2,
        25,
    )
    assert settings.max_attempts == 3 and settings.retry_delays.busy == 900 and not settings.amd
    assert campaign_violations(settings, now=NOW) == []
    check_campaign(settings, now=NOW)
    assert campaign_violations(CampaignSettings.model_validate(us_body()), now=NOW) == []
    # Stored as JSON and read back, the same settings.
    assert CampaignSettings.model_validate(settings.model_dump(mode="json")) == settings


def test_a_campaign_that_breaks_the_law_is_refused_naming_each_field() -> None:
    data = body(
        abandonment_target=0.05, drop_wait_seconds=5, ring_timeout_seconds=10, abandon_message="Hola."
    )
    settings = CampaignSettings.model_validate(data)
    with pytest.raises(CampaignRulesBroken) as caught:
        check_campaign(settings, now=NOW)
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert {v.field for v in error.violations} == {
        "abandonment_target",
        "drop_wait_seconds",
        "ring_timeout_seconds",
        "abandon_message",
    }
    assert {v.rule for v in error.violations} >= {
        "abandon_message_without_company",
        "abandon_message_without_number",
    }
    text = str(error)
    assert "abandonment_target: 5.00% is above the 3% cap for ES" in text
    assert (
        "drop_wait_seconds: an answered call must reach an agent within 2 s of the greeting, not 5 s" in text
    )
    assert "ring_timeout_seconds: an unanswered call must ring at least 15 s, not 10 s" in text


def test_a_five_second_drop_wait_in_a_us_campaign_cites_the_tcpa() -> None:
    [violation] = campaign_violations(CampaignSettings.model_validate(us_body(drop_wait_seconds=5)), now=NOW)
    assert violation.field == "drop_wait_seconds" and "47 CFR 64.1200(a)(7)" in violation.message


def test_the_uk_cap_is_three_percent_over_twenty_four_hours() -> None:
    uk = body(
        country="GB",
        caller_id="020 7946 0000",
        company_name="Acme",
        abandon_message="This was Acme. Call us on 020 7946 0000.",
        abandonment_target=0.031,
    )
    [violation] = campaign_violations(CampaignSettings.model_validate(uk), now=NOW)
    assert violation.field == "abandonment_target" and "Ofcom" in violation.message
    assert DIALING_LAWS["GB"].abandonment_window.total_seconds() == 24 * 3600
    assert violations(uk | {"abandonment_target": 0.03}) == {}


@pytest.mark.parametrize(
    ("message", "rule"),
    [
        ("Le llamábamos de Seguros Sol. Gracias.", "abandon_message_without_number"),
        ("Le llamábamos. Llámenos al 910 000 000.", "abandon_message_without_company"),
        ("Le llamábamos de Seguros Solares. Llámenos al 910 000 000.", "abandon_message_without_company"),
        ("Le llamábamos de Seguros Sol. Llámenos al 803 123 456.", "abandon_message_paid_number"),
        ("Le llamábamos de Seguros Sol. Llámenos al 901 123 456.", "abandon_message_paid_number"),
    ],
)
def test_the_abandoned_call_message_names_the_company_and_a_number_that_costs_nothing_extra(
    message: str, rule: str
) -> None:
    assert violations(body(abandon_message=message)) == {"abandon_message": rule}


def test_the_company_is_recognised_whatever_the_case_and_accents() -> None:
    message = "Le llamábamos de SEGUROS SOL. Llámenos gratis al 900 123 456."
    assert violations(body(company_name="Seguros Sól", abandon_message=message)) == {}


def test_explicit_callee_hours_must_sit_inside_the_countrys_law() -> None:
    early = violations(us_body(callee_hours={day: ["07:00-22:00"] for day in ("mon", "tue")}))
    assert early == {"callee_hours": "callee_hours_outside_law"}
    weekend = CampaignSettings.model_validate(body(callee_hours={"sat": ["10:00-14:00"]}))
    [violation] = campaign_violations(weekend, now=NOW)
    assert "sat: 10:00-14:00 is outside no calls" in violation.message and "TRLGDCU" in violation.message
    assert violations(body(callee_hours={"mon": ["10:00-20:00"], "fri": ["09:00-14:00"]})) == {}
    # No law on file for Germany: only the shape is checked.
    de = body(
        country="DE",
        caller_id="030 123456",
        company_name="Sonne GmbH",
        abandon_message="Hier war Sonne GmbH. Rufen Sie uns an: 030 1234567.",
        callee_hours={"sat": ["08:00-22:00"]},
    )
    assert violations(de) == {}


def test_a_schedule_that_already_ended_is_refused_and_dates_must_be_in_order() -> None:
    past = body(schedule={"time_zone": "Europe/Madrid", "end_date": "2025-06-01"})
    assert violations(past) == {"schedule.end_date": "schedule_ended"}
    # Still 1 June in Madrid at 21:59 UTC: not ended yet.
    assert violations(past, now=datetime(2025, 6, 1, 21, 59, tzinfo=UTC)) == {}
    assert shape_errors(
        body(schedule={"time_zone": "Europe/Madrid", "start_date": "2025-07-01", "end_date": "2025-06-30"})
    ) == [("schedule",)]


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"max_attempts": 0}, ("max_attempts",)),
        ({"retry_delays": {"busy": -60}}, ("retry_delays", "busy")),
        ({"retry_delays": {"no_answer": 60, "sometimes": 5}}, ("retry_delays", "sometimes")),
        ({"mode": "telepathic"}, ("mode",)),
        ({"country": "XX"}, ("country",)),
        ({"country": "es"}, ("country",)),
        ({"caller_id": "12"}, ("caller_id",)),
        ({"queue": "Renewals Team"}, ("queue",)),
        ({"agents": []}, ("agents",)),
        ({"abandonment_target": 1.5}, ("abandonment_target",)),
        ({"drop_wait_seconds": 0}, ("drop_wait_seconds",)),
        ({"schedule": {"time_zone": "Europe/Atlantis"}}, ("schedule", "time_zone")),
        (
            {"schedule": {"time_zone": "Europe/Madrid", "weekly": {"mon": ["9-21"]}}},
            ("schedule", "weekly", "mon", 0),
        ),
        ({"schedule": {"time_zone": "Europe/Madrid", "weekly": {"mon": []}}}, ("schedule", "weekly")),
        ({"callee_hours": {"mon": ["09:00-14:00", "13:00-20:00"]}}, ("callee_hours",)),
        ({"callee_hours": {"caturday": ["09:00-14:00"]}}, ("callee_hours", "caturday", "[key]")),
        ({"surprise": 1}, ("surprise",)),
    ],
)
def test_shape_errors_name_the_field(changes: dict[str, Any], where: tuple[Any, ...]) -> None:
    assert where in shape_errors(body(**changes))


def test_the_settings_give_the_calling_policy_the_dialer_checks() -> None:
    settings = CampaignSettings.model_validate(
        body(
            schedule={
                "time_zone": "Europe/Madrid",
                "weekly": {"mon": ["09:00-20:00"]},
                "end_date": "2025-06-30",
            },
            callee_hours={"mon": ["10:00-20:00"]},
            callee_holidays=["2025-06-09"],
        )
    )
    policy = settings.calling_policy(public_holidays={"ES": frozenset({date(2025, 6, 16)})})
    assert policy.callee_hours == WeeklyHours.from_mapping({"mon": ["10:00-20:00"]})
    assert policy.campaign is not None and policy.campaign.last_day == date(2025, 6, 30)
    madrid = CalleeLocation("ES", ("Europe/Madrid",))
    monday_9_30 = datetime(2025, 6, 2, 7, 30, tzinfo=UTC)  # inside the schedule, before the callee hours
    decision = calling_decision(monday_9_30, callee=madrid, policy=policy)
    assert decision.reason is CallingBlock.OUTSIDE_CALLEE_HOURS
    assert decision.next_allowed_at == datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
    assert calling_decision(datetime(2025, 6, 9, 9, 0, tzinfo=UTC), callee=madrid, policy=policy).reason is (
        CallingBlock.CALLEE_HOLIDAY
    )
    assert calling_decision(datetime(2025, 6, 16, 9, 0, tzinfo=UTC), callee=madrid, policy=policy).reason is (
        CallingBlock.CALLEE_HOLIDAY
    )
    # Default callee hours: 09:00-21:00 every day, which each callee's law then cuts.
    default = CampaignSettings.model_validate(body()).calling_policy()
    assert default.callee_hours == WeeklyHours.every_day(time(9), time(21))


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="time zone"):
        campaign_violations(CampaignSettings.model_validate(body()), now=datetime(2025, 6, 2, 10))
