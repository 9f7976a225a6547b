"""Reports read from SQLite and PostgreSQL, the rows written through the real timeline and case services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from centralita.container import Container
from core.cases import service as cases
from core.cases.schemas import CaseCreate
from core.customers.identities import IdentityKind
from core.db import unit_of_work
from core.errors import InvalidInput
from core.timeline import service as timeline
from core.timeline.schemas import (
    CustomerIdentityRef,
    InteractionClose,
    InteractionCreate,
    Outcome,
    TouchpointCreate,
)
from dialer.models import Campaign, CampaignContact, DialAttempt
from reporting import service
from reporting.buckets import Interval
from reporting.kpis import GroupBy

DAY = datetime(2026, 11, 20, tzinfo=UTC)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return DAY + timedelta(hours=hour, minutes=minute, seconds=second)


def record(db: Session, phone: str, when: datetime, **fields: Any) -> int:
    data = InteractionCreate(
        identity=CustomerIdentityRef(kind=IdentityKind.PHONE, value=phone),
        direction=fields.pop("direction", "inbound"),
        channel=fields.pop("channel", "voice"),
        started_at=when,
        **fields,
    )
    interaction, _ = timeline.record_interaction(db=db, data=data, region="ES")
    return interaction.id


def step(db: Session, interaction_id: int, kind: str, when: datetime, **fields: Any) -> None:
    timeline.add_touchpoint(
        db=db, interaction_id=interaction_id, data=TouchpointCreate(kind=kind, occurred_at=when, **fields)
    )  # type: ignore[arg-type]


def close(
    db: Session, interaction_id: int, outcome: Outcome, when: datetime, csat: int | None = None
) -> None:
    timeline.close_interaction(
        db=db, interaction_id=interaction_id, data=InteractionClose(outcome=outcome, ended_at=when, csat=csat)
    )


def write_day(container: Container) -> None:
    """10:00-11:00 on 20 Nov: two IVR calls into billing (one answered after 15 s, one hung up after 50 s),
    one call that hung up at the IVR menu, an SMS resolved in its case, and two dialer attempts."""
    with unit_of_work(container.session_factory) as db:
        answered = record(db, "600111222", at(10, 0), attributes={"flow": "banco_es", "wrap_up_seconds": 30})
        step(db, answered, "ivr_node", at(10, 0, 1), node="welcome")
        step(db, answered, "menu_choice", at(10, 0, 10), node="menu", input="2")
        step(db, answered, "queue_enter", at(10, 0, 15), node="to_billing", attributes={"queue": "billing"})
        step(db, answered, "agent_connect", at(10, 0, 30), attributes={"agent": "ana"})
        close(db, answered, Outcome.TRANSFERRED, at(10, 4, 30), csat=4)  # talk 240 s

        gave_up = record(db, "600333444", at(10, 10), attributes={"flow": "banco_es"})
        step(db, gave_up, "ivr_node", at(10, 10, 1), node="welcome")
        step(db, gave_up, "queue_enter", at(10, 10, 10), attributes={"queue": "billing"})
        step(db, gave_up, "queue_leave", at(10, 11, 0), attributes={"reason": "hangup"})
        close(db, gave_up, Outcome.TRANSFERRED, at(10, 11, 0))

        dropped = record(db, "600555666", at(10, 20), attributes={"flow": "banco_es"})
        step(db, dropped, "ivr_node", at(10, 20, 1), node="welcome")
        step(db, dropped, "ivr_node", at(10, 20, 5), node="menu")
        close(db, dropped, Outcome.ABANDONED, at(10, 20, 20))

        text = record(db, "600111222", at(10, 30), channel="sms", outcome="delivered", ended_at=at(10, 30))
        customer = timeline.get_interaction(db=db, interaction_id=text).customer_id
        assert customer is not None
        case = cases.open_case(db=db, data=CaseCreate(customer_id=customer, interaction_ids=[text]))
        cases.resolve_case(db=db, case_id=case.id, resolution="sent the invoice")

        campaign = Campaign(name="renewals", mode="progressive", settings={})
        db.add(campaign)
        db.flush()
        contact = CampaignContact(campaign_id=campaign.id, customer_id=customer, phone="+34600111222")
        db.add(contact)
        db.flush()
        db.add_all(
            [  # connected within 1 s; and one abandoned (no agent), both answered at 10:40:05
                DialAttempt(campaign_id=campaign.id, contact_id=contact.id, attempt=1, phone=contact.phone,
                            dialed_at=at(10, 40), answered_at=at(10, 40, 5), connected_at=at(10, 40, 6),
                            ended_at=at(10, 42, 6), agent="luis", disposition="connected"),
                DialAttempt(campaign_id=campaign.id, contact_id=contact.id, attempt=2, phone=contact.phone,
                            dialed_at=at(10, 45), answered_at=at(10, 45, 5), ended_at=at(10, 45, 20),
                            disposition="abandoned"),
                DialAttempt(campaign_id=campaign.id, contact_id=contact.id, attempt=3, phone=contact.phone,
                            dialed_at=at(10, 50), ended_at=at(10, 50), disposition="not_placed"),
            ]
        )  # fmt: skip


def test_kpis_from_the_database_match_the_hand_count(container: Container) -> None:
    write_day(container)
    with container.read_session_factory() as db:
        rows = list(
            service.kpi_report(
                db=db, start=at(0), end=at(24), interval=Interval.HOUR, zone=UTC, group_by=GroupBy.NONE,
                options=service.ReportOptions(), now=at(23),
            )
        )  # fmt: skip
    (row,) = rows  # everything happened between 10:00 and 11:00
    assert row.bucket_start == at(10)
    # contacts: 3 calls + 1 SMS (the dialer writes its own interactions; these rows were made by hand)
    assert (row.contacts, row.inbound_contacts) == (4, 4)
    # billing: answered after 15 s, abandoned after 50 s: ASA 15; abandonment 1 / 2; SL (20 s) 1 / 2
    assert (row.queue_offered, row.queue_answered, row.queue_abandoned) == (2, 1, 1)
    assert (row.asa_seconds, row.abandonment_rate, row.service_level) == (15.0, 0.5, 0.5)
    # handled: the answered call (240 s talk + 30 s wrap-up) and the dialer's connected call (120 s):
    # (270 + 120) / 2 = 195
    assert (row.handled, row.aht_seconds) == (2, 195.0)
    # IVR: 3 calls ended, none contained, one abandoned at "menu"
    assert (row.ivr_calls, row.ivr_contained, row.ivr_abandoned, row.ivr_containment) == (3, 0, 1, 0.0)
    assert (row.cases_resolved, row.first_contact_resolved, row.fcr_rate) == (1, 1, 1.0)
    assert (row.csat_responses, row.csat_average) == (1, 4.0)
    # the dialer's rule: 1 connected, 1 abandoned -> 1 / 2; the attempt never placed is not counted
    assert (row.outbound_dialed, row.outbound_abandonment_rate) == (2, 0.5)


def test_grouping_by_queue_and_the_drop_off_and_journey_reports(container: Container) -> None:
    write_day(container)
    with container.read_session_factory() as db:
        options = service.ReportOptions()
        by_queue = list(
            service.kpi_report(
                db=db, start=at(0), end=at(24), interval=Interval.DAY, zone=UTC, group_by=GroupBy.QUEUE,
                options=options, now=at(23),
            )
        )  # fmt: skip
        drop_off = list(
            service.drop_off_report(
                db=db, start=at(0), end=at(24), interval=Interval.DAY, zone=UTC, group_by=GroupBy.NONE,
                options=options,
            )
        )  # fmt: skip
        journeys = service.journey_report(db=db, start=at(0), end=at(24), queue="billing")
    billing = next(r for r in by_queue if r.group == "billing")
    assert (billing.queue_offered, billing.queue_answered) == (2, 1)
    assert drop_off == [(at(0), None, "menu", 1)]
    # the journeys through billing: customer 1 (voice... agent, then the SMS) and customer 2
    assert journeys.journeys == 2
    labels = {n.label for n in journeys.nodes}
    assert {"voice", "ivr:welcome", "ivr:menu", "queue:billing", "agent", "sms"} <= labels


def test_a_report_spanning_several_chunks_gives_the_same_rows(container: Container) -> None:
    write_day(container)
    with container.read_session_factory() as db:

        def report(start: datetime) -> list[Any]:
            return list(
                service.kpi_report(
                    db=db, start=start, end=at(24), interval=Interval.HOUR, zone=UTC, group_by=GroupBy.NONE,
                    options=service.ReportOptions(), now=at(23),
                )
            )  # fmt: skip

        # three days before: four chunks of a day, the last holding the figures
        assert report(at(0) - timedelta(days=3)) == report(at(0))


def test_bad_ranges_are_refused(container: Container) -> None:
    options = service.ReportOptions()
    with pytest.raises(InvalidInput, match="must be after"):
        service.check_range(at(10), at(9), Interval.HOUR, options)
    with pytest.raises(InvalidInput, match="at most 31 days"):
        service.check_range(at(0), at(0) + timedelta(days=40), Interval.QUARTER_HOUR, options)
