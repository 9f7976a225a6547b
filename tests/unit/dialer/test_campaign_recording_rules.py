"""A campaign's recording policy: never by default, one of three values, a notice only where the
campaign records, one that says so, and the default notice in the campaign's language."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from dialer.campaign_rules import CampaignSettings, campaign_violations

NOW = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def body(**changes: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "name": "Renovaciones junio",
        "mode": "predictive",
        "country": "ES",
        "caller_id": "910 000 000",
        "company_name": "Seguros Sol",
        "queue": "renewals",
        "agents": ["PJSIP/1001"],
        "schedule": {"time_zone": "Europe/Madrid"},
        "abandon_message": "Le llamábamos de Seguros Sol. Llámenos al 910 000 000. Gracias.",
    }
    return settings | changes


def rules(**changes: Any) -> dict[str, str]:
    settings = CampaignSettings.model_validate(body(**changes))
    return {v.field: v.rule for v in campaign_violations(settings, now=NOW)}


def test_a_campaign_records_nothing_unless_it_says_so() -> None:
    settings = CampaignSettings.model_validate(body())
    assert settings.recording == "never"
    assert settings.recording_notice_text() is None


def test_an_unknown_policy_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        CampaignSettings.model_validate(body(recording="sometimes"))
    assert [error["loc"] for error in caught.value.errors()] == [("recording",)]


def test_a_notice_for_a_campaign_that_never_records_is_refused() -> None:
    with pytest.raises(ValidationError, match="recording is never"):
        CampaignSettings.model_validate(body(recording_notice="Esta llamada puede ser grabada."))


@pytest.mark.parametrize(
    ("country", "start"), [("ES", "Esta llamada puede ser grabada"), ("GB", "This call may be recorded")]
)
def test_the_default_notice_is_in_the_campaigns_language(country: str, start: str) -> None:
    data = body(recording="always")
    if country == "GB":
        data |= {
            "country": "GB",
            "caller_id": "+44 20 7946 0000",
            "schedule": {"time_zone": "Europe/London"},
            "abandon_message": "This is Seguros Sol. Call us on 020 7946 0000.",
        }
    notice = CampaignSettings.model_validate(data).recording_notice_text()
    assert notice is not None and notice.startswith(start)


def test_a_notice_must_say_the_call_is_recorded() -> None:
    assert rules(recording="always", recording_notice="Seguros Sol le atiende.") == {
        "recording_notice": "recording_notice_does_not_say_recorded"
    }
    assert rules(recording="on_demand", recording_notice="Seguros Sol: esta llamada podrá ser GRABADA.") == {}
    assert rules(recording="always") == {}
