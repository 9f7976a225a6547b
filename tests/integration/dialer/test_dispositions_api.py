"""Agents' dispositions through the API, on SQLite and PostgreSQL: each kind sets the contact's next
attempt, lands on the customer's timeline and counts in the stats; the same one twice counts once;
wrong agents, attempts and combinations are refused clearly.

The calls are preview dials ended the way the runner ends them (`attempts.finish_call`), so that each
test says exactly how its call went."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from test_preview_api import (
    AGENT_1,
    AGENT_2,
    ManualClock,
    ask,
    contact_row,
    dial,
    numbers,
    preview_campaign,
    with_clock,
)

from centralita.container import Container
from core.db import unit_of_work
from dialer import attempts, campaigns
from dialer.call_network import CallEnd
from dialer.models import DialAttempt, DoNotCall


def finish(container: Container, attempt_id: int, *, connected: bool = True) -> None:
    """What the runner records when the call ends: connected to its agent, or unanswered."""
    with unit_of_work(container.session_factory) as db:
        attempt = db.get(DialAttempt, attempt_id)
        assert attempt is not None
        campaign = campaigns.get_campaign(db=db, campaign_id=attempt.campaign_id)
        start = attempt.dialed_at
        if connected:
            result = attempts.CallResult(
                attempt_id=attempt_id,
                ended_at=start + timedelta(seconds=90),
                end=CallEnd.COMPLETED,
                cause="16 normal clearing",
                call_ref=f"test-{attempt_id}",
                answered_at=start + timedelta(seconds=8),
                greeting_ended_at=start + timedelta(seconds=9),
                connected_at=start + timedelta(seconds=9.2),
                agent=attempt.agent,
            )
        else:
            result = attempts.CallResult(
                attempt_id=attempt_id,
                ended_at=start + timedelta(seconds=25),
                end=CallEnd.NO_ANSWER,
                cause="19 no answer",
                call_ref=f"test-{attempt_id}",
                agent=attempt.agent,
            )
        attempts.finish_call(
            db=db,
            result=result,
            settings=campaigns.settings_of(campaign),
            campaign_name=campaign.name,
            region="ES",
        )


def call(
    client: TestClient, container: Container, campaign: int, agent: str = AGENT_1, *, connected: bool = True
) -> dict[str, Any]:
    """The agent's next contact, dialed and ended: the attempt as the API shows it."""
    contact = ask(client, campaign, agent).json()["contact"]["id"]
    accepted = dial(client, campaign, contact, agent)
    assert accepted.status_code == 202, accepted.text
    attempt_id = accepted.json()["attempt"]["id"]
    finish(container, attempt_id, connected=connected)
    attempt: dict[str, Any] = client.get(f"/api/v1/campaigns/{campaign}/attempts/{attempt_id}").json()
    assert attempt["state"] == "ended"
    return attempt


def dispose(client: TestClient, campaign: int, attempt: int, agent: str = AGENT_1, **body: Any) -> Any:
    return client.post(
        f"/api/v1/campaigns/{campaign}/attempts/{attempt}/disposition", json={"agent": agent} | body
    )


def timeline_of(client: TestClient, customer: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(f"/api/v1/customers/{customer}/timeline").json()["items"]
    return items


def test_each_disposition_sets_the_next_attempt_lands_on_the_timeline_and_counts(
    client: TestClient, container: Container
) -> None:
    clock = with_clock(client)
    campaign = preview_campaign(client, numbers(6), max_attempts=2, retry_delays={"no_contact": 1800})
    at = clock.now() + timedelta(days=1, hours=8)  # Tuesday 18:00 in Madrid
    expected = {
        "sale": ("done", None),
        "not_interested": ("done", None),
        "call_back": ("pending", at),
        "wrong_number": ("failed", None),
        "do_not_call": ("blocked", None),
        "no_contact": ("pending", "ended + 30 min"),
    }
    results: dict[str, dict[str, Any]] = {}
    for kind in expected:
        attempt = call(client, container, campaign)
        extra = {"at": at.isoformat()} if kind == "call_back" else {}
        answer = dispose(client, campaign, attempt["id"], disposition=kind, note=f"the {kind} call", **extra)
        assert answer.status_code == 200, (kind, answer.text)
        results[kind] = answer.json() | {"call": attempt}

    for kind, (status, due) in expected.items():
        answer = results[kind]
        attempt = answer["call"]
        assert answer["recorded"] and answer["rescheduled"], kind
        assert answer["contact"]["status"] == status, kind
        assert answer["contact"]["last_disposition"] == kind
        if due == "ended + 30 min":
            ended = datetime.fromisoformat(attempt["ended_at"])
            assert datetime.fromisoformat(answer["contact"]["next_attempt_at"]) == ended + timedelta(
                minutes=30
            )
        else:
            due_at = answer["contact"]["next_attempt_at"]
            assert (datetime.fromisoformat(due_at) if due_at else None) == due, kind
        # On the customer's timeline: the call's interaction carries the agent's disposition.
        customer = contact_row(container, answer["contact"]["id"]).customer_id
        (call_entry,) = timeline_of(client, customer)
        assert call_entry["id"] == attempt["interaction_id"] and call_entry["disposition"] == kind
        assert call_entry["outcome"] == "completed" and call_entry["agent"] == AGENT_1
        noted = call_entry["attributes"]["agent_disposition"]
        assert (noted["disposition"], noted["agent"], noted["note"], noted["call"]) == (
            kind,
            AGENT_1,
            f"the {kind} call",
            "connected",
        )
        read = client.get(f"/api/v1/campaigns/{campaign}/attempts/{attempt['id']}").json()
        assert read["agent_disposition"]["disposition"] == kind
        assert read["disposition"] == "connected"  # the network's verdict stays what the law reads

    listed = client.get("/api/v1/do-not-call").json()["items"]
    dnc_call = results["do_not_call"]["call"]
    assert [(i["phone"], i["source"]) for i in listed] == [
        (dnc_call["phone"], f"disposition:{dnc_call['id']}:{AGENT_1}")
    ]
    assert results["do_not_call"]["do_not_call_listed"] == [dnc_call["phone"]]
    stats = client.get(f"/api/v1/campaigns/{campaign}/stats").json()
    assert stats["dispositions"] == {kind: 1 for kind in expected}
    assert stats["contacts"] == {"done": 2, "pending": 2, "failed": 1, "blocked": 1}
    with container.session_factory() as db:
        live = db.scalars(select(DialAttempt.live_person).where(DialAttempt.campaign_id == campaign)).all()
    assert sorted(live, key=str) == [None] + [True] * 5  # no_contact says nothing of who answered


def test_the_same_disposition_twice_counts_once_and_another_is_refused(
    client: TestClient, container: Container
) -> None:
    clock = with_clock(client)
    campaign = preview_campaign(client, numbers(2))
    attempt = call(client, container, campaign)
    at = (clock.now() + timedelta(hours=3)).isoformat()
    first = dispose(client, campaign, attempt["id"], disposition="call_back", at=at)
    assert first.status_code == 200 and first.json()["recorded"]
    clock.advance(hours=4)  # a retry arriving late, after the time it booked, changes nothing either
    again = dispose(client, campaign, attempt["id"], disposition="call_back", at=at)
    assert again.status_code == 200, again.text
    assert (again.json()["recorded"], again.json()["rescheduled"]) == (False, False)
    assert again.json()["details"] == first.json()["details"]
    other = dispose(client, campaign, attempt["id"], disposition="sale")
    assert other.status_code == 409 and "already has the disposition 'call_back'" in other.json()["detail"]
    assert client.get(f"/api/v1/campaigns/{campaign}/stats").json()["dispositions"] == {"call_back": 1}

    listed = call(client, container, campaign)
    for _ in range(2):
        assert (
            dispose(
                client, campaign, listed["id"], disposition="do_not_call", do_not_call_scope="campaign"
            ).status_code
            == 200
        )
    assert len(client.get(f"/api/v1/campaigns/{campaign}/do-not-call").json()["items"]) == 1
    assert client.get("/api/v1/do-not-call").json()["items"] == []
    with container.session_factory() as db:
        assert len(db.scalars(select(DoNotCall)).all()) == 1


def test_wrong_agents_attempts_and_combinations_are_refused(client: TestClient, container: Container) -> None:
    clock = with_clock(client)
    campaign = preview_campaign(client, numbers(3))
    attempt = call(client, container, campaign)

    other_agent = dispose(client, campaign, attempt["id"], AGENT_2, disposition="sale")
    assert other_agent.status_code == 409 and f"{AGENT_1}'s call" in other_agent.json()["detail"]
    assert dispose(client, campaign, 999999, disposition="sale").status_code == 404
    other_campaign = preview_campaign(client, numbers(1, start=900), name="Otra campaña")
    assert dispose(client, other_campaign, attempt["id"], disposition="sale").status_code == 404

    no_time = dispose(client, campaign, attempt["id"], disposition="call_back")
    assert no_time.status_code == 422 and "needs `at`" in no_time.text
    past = dispose(
        client,
        campaign,
        attempt["id"],
        disposition="call_back",
        at=(clock.now() - timedelta(minutes=1)).isoformat(),
    )
    assert past.status_code == 422 and "in the past" in past.json()["detail"]
    assert (
        dispose(client, campaign, attempt["id"], disposition="sale", at=clock.now().isoformat()).status_code
        == 422
    )
    assert dispose(client, campaign, attempt["id"], disposition="maybe").status_code == 422

    # A call still going on, and a call nobody answered.
    contact = ask(client, campaign, AGENT_2).json()["contact"]["id"]
    ringing = dial(client, campaign, contact, AGENT_2).json()["attempt"]["id"]
    in_progress = dispose(client, campaign, ringing, AGENT_2, disposition="sale")
    assert in_progress.status_code == 409 and "still in progress" in in_progress.json()["detail"]
    finish(container, ringing, connected=False)
    unanswered = dispose(client, campaign, ringing, AGENT_2, disposition="sale")
    assert unanswered.status_code == 422 and "use no_contact" in unanswered.json()["detail"]
    assert dispose(client, campaign, ringing, AGENT_2, disposition="no_contact").status_code == 200
    # Nothing the refusals touched was recorded.
    assert client.get(f"/api/v1/campaigns/{campaign}/stats").json()["dispositions"] == {"no_contact": 1}


def test_no_contact_on_the_last_attempt_exhausts_the_contact(
    client: TestClient, container: Container
) -> None:
    with_clock(client)
    campaign = preview_campaign(client, numbers(1), max_attempts=1)
    attempt = call(client, container, campaign)
    answer = dispose(client, campaign, attempt["id"], disposition="no_contact").json()
    assert (answer["contact"]["status"], answer["contact"]["next_attempt_at"]) == ("exhausted", None)


def test_a_call_back_is_dialed_only_within_the_callee_hours(client: TestClient, container: Container) -> None:
    clock: ManualClock = with_clock(client)
    campaign = preview_campaign(client, numbers(1))
    attempt = call(client, container, campaign)
    late = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 in Madrid: booked as the callee asked
    booked = dispose(client, campaign, attempt["id"], disposition="call_back", at=late.isoformat())
    assert booked.status_code == 200 and booked.json()["contact"]["status"] == "pending"

    clock.at = late + timedelta(minutes=1)
    assert ask(client, campaign, AGENT_1).status_code == 204  # due, but not at that hour
    row = contact_row(container, booked.json()["contact"]["id"])
    assert (row.status, row.last_disposition) == ("pending", "outside_callee_hours")
    assert row.next_attempt_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    clock.at = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    again = ask(client, campaign, AGENT_1).json()["contact"]
    assert (again["id"], again["attempts"]) == (booked.json()["contact"]["id"], 1)
