"""`centralita demo`: a few made-up days on SQLite and PostgreSQL, read back as the reports read them."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from served import run_cli
from sqlalchemy import select

from centralita.container import Container
from centralita.demo import DatabaseNotEmpty, DemoOptions, DemoSummary, generate
from core.cases.models import Case
from core.customers.models import Customer
from core.db import Base, unit_of_work
from core.timeline.models import Interaction, Touchpoint
from dialer.models import Campaign, CampaignContact, DialAttempt
from reporting.kpis import channel_switches, first_contact_resolution, ivr_containment, outbound_abandonment
from reporting.kpis import service_level as service_level_of
from reporting.rows import queue_visits_of
from reporting.service import ReportOptions, journey_report, kpi_inputs

# Monday 9 to Thursday 12 March 2026: working days, no holiday in Spain or England.
OPTIONS = DemoOptions(
    days=4, customers=150, seed=11, end=date(2026, 3, 12), now=datetime(2026, 3, 20, tzinfo=UTC)
)
START, END = datetime(2026, 3, 8, 23, tzinfo=UTC), datetime(2026, 3, 12, 23, tzinfo=UTC)
IVR_STEPS = {"ivr_node", "menu_choice", "dtmf", "speech", "lookup", "language_set", "callback_offered"}


def _demo(container: Container, options: DemoOptions = OPTIONS) -> DemoSummary:
    return asyncio.run(generate(container, options))


def test_a_demo_month_is_consistent_and_runs_through_the_shipped_flows(container: Container) -> None:
    summary = _demo(container)
    assert summary.ivr_calls > 10 and summary.customers >= 150 and summary.agents and summary.queues
    with container.session_factory() as db:
        interactions = db.scalars(select(Interaction)).all()
        steps: dict[int, list[Touchpoint]] = defaultdict(list)
        for step in db.scalars(select(Touchpoint).order_by(Touchpoint.interaction_id, Touchpoint.seq)):
            steps[step.interaction_id].append(step)
        for interaction in interactions:
            if interaction.customer_id is None:  # only a call from a withheld number has nobody
                assert (interaction.channel, interaction.direction) == ("voice", "inbound")
                assert "caller" not in interaction.attributes
            if (
                interaction.channel == "voice" or interaction.direction == "inbound"
            ):  # messages sent stay open
                assert interaction.ended_at is not None and interaction.ended_at >= interaction.started_at
            assert START <= interaction.started_at < END, interaction.started_at
            kinds = [s.kind for s in steps[interaction.id]]
            assert [s.seq for s in steps[interaction.id]] == list(range(1, len(kinds) + 1))
            if (interaction.channel, interaction.direction) == ("voice", "inbound"):
                assert interaction.attributes["flow"] in ("banco_es", "support_en")
                assert interaction.attributes["flow_version"]
                assert IVR_STEPS & set(kinds), kinds
                assert interaction.outcome in ("contained", "transferred", "abandoned", "callback_requested")
            if "agent_connect" in kinds:
                assert interaction.agent and interaction.queue
        every_kind = {s.kind for group in steps.values() for s in group}
        assert {
            "menu_choice",
            "speech",
            "lookup",
            "queue_enter",
            "queue_leave",
            "agent_connect",
        } <= every_kind
        assert {"banco_es", "support_en"} <= {i.attributes.get("flow") for i in interactions}

        channels_of_case: dict[int, set[str]] = defaultdict(set)
        for interaction in interactions:
            if interaction.case_id is not None:
                channels_of_case[interaction.case_id].add(interaction.channel)
                case = db.get(Case, interaction.case_id)
                assert case is not None and case.customer_id == interaction.customer_id
        assert any(len(channels) >= 2 for channels in channels_of_case.values()), "a case across channels"
        assert db.scalars(select(Case).where(Case.status == "resolved")).first() is not None

        campaigns = {c.id: c.name for c in db.scalars(select(Campaign))}
        attempts = db.scalars(select(DialAttempt)).all()
        assert len(campaigns) == 2 and attempts
        for attempt in attempts:
            contact = db.get(CampaignContact, attempt.contact_id)
            assert contact is not None and contact.campaign_id == attempt.campaign_id
            if attempt.interaction_id is not None:
                call = db.get(Interaction, attempt.interaction_id)
                assert call is not None and call.campaign == campaigns[attempt.campaign_id]
                assert call.customer_id == contact.customer_id


def test_the_reports_read_plausible_figures_from_the_demo(container: Container) -> None:
    _demo(container)
    with container.read_session_factory() as db:
        inputs = kpi_inputs(db=db, start=START, end=END, options=ReportOptions())
        journeys = journey_report(db=db, start=START, end=END)
    visits = [visit for contact in inputs.contacts for visit in queue_visits_of(contact)]
    level = service_level_of(visits)
    assert level is not None and 0.3 < level < 1
    ivr = ivr_containment(inputs.contacts)
    assert ivr.calls > 10 and ivr.containment is not None and 0 < ivr.containment < 1 and ivr.abandoned
    resolution = first_contact_resolution(inputs.cases)
    assert resolution.resolved and resolution.rate is not None and 0 < resolution.rate < 1
    assert (channel_switches(inputs.cases).per_case or 0) > 0
    outbound = outbound_abandonment([a.call for a in inputs.attempts], now=END)
    assert outbound.live_calls > 0 and (outbound.abandonment_rate or 0) < 0.03
    assert journeys.journeys > 10 and journeys.links
    assert any(node.label.startswith("ivr:") for node in journeys.nodes)
    assert any(node.label == "agent" for node in journeys.nodes)


def _fingerprint(container: Container) -> list[tuple[Any, ...]]:
    """What the demo made, without the ids (those depend on the order concurrent calls were written)."""
    with container.session_factory() as db:
        names: dict[int | None, str | None] = dict(db.execute(select(Customer.id, Customer.name)).all())
        kinds: dict[int, list[str]] = defaultdict(list)
        for interaction_id, kind in db.execute(
            select(Touchpoint.interaction_id, Touchpoint.kind).order_by(
                Touchpoint.interaction_id, Touchpoint.seq
            )
        ):
            kinds[interaction_id].append(kind)
        subjects: dict[int | None, str | None] = dict(db.execute(select(Case.id, Case.subject)).all())
        made = [
            (
                names.get(i.customer_id),
                i.channel,
                i.direction,
                i.started_at,
                i.ended_at,
                i.outcome,
                i.queue,
                i.agent,
                i.csat,
                i.intent,
                subjects.get(i.case_id),
                tuple(kinds[i.id]),
            )
            for i in db.scalars(select(Interaction))
        ]
        return sorted(made, key=repr)  # repr: None sorts beside text


def _empty(container: Container) -> None:
    with container.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def test_the_same_seed_makes_the_same_month(container: Container) -> None:
    options = DemoOptions(days=2, customers=80, seed=5, end=date(2026, 3, 11), now=OPTIONS.now)
    _demo(container, options)
    first = _fingerprint(container)
    _empty(container)
    _demo(container, options)
    assert _fingerprint(container) == first
    _empty(container)
    _demo(container, DemoOptions(days=2, customers=80, seed=6, end=date(2026, 3, 11), now=OPTIONS.now))
    assert _fingerprint(container) != first


def test_a_database_with_data_is_refused_unless_forced(container: Container) -> None:
    with unit_of_work(container.session_factory) as db:
        db.add(Customer(name="Ana Pérez", name_search="ana perez"))
    small = DemoOptions(days=1, customers=20, seed=2, end=date(2026, 3, 10), now=OPTIONS.now)
    with pytest.raises(DatabaseNotEmpty, match=r"1 customers.*--force"):
        _demo(container, small)
    with container.session_factory() as db:
        assert db.scalars(select(Interaction)).first() is None, "nothing written when refused"
    forced = DemoOptions(days=1, customers=20, seed=2, end=date(2026, 3, 10), now=OPTIONS.now, force=True)
    assert _demo(container, forced).customers >= 21
    with container.session_factory() as db:
        assert db.scalars(select(Customer).where(Customer.name == "Ana Pérez")).one()


def test_the_command_prints_what_it_made_and_refuses_to_run_twice(
    env: dict[str, str], tmp_path: Path
) -> None:
    made = run_cli("demo", "--days", "2", "--customers", "40", "--end", "2026-03-10", env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    out = made.stdout
    assert "customers:" in out and "contacts:" in out and "voice inbound" in out and "campaign" in out
    assert "/wallboard" in out and "/journey-map" in out and "/customers/" in out
    again = run_cli("demo", "--days", "2", "--customers", "40", env=env, cwd=tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr
