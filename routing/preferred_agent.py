"""Who should take a customer's call first: the agent who handled their open case last.

When a caller with an open case (status open or pending) joins one of Centralita's queues, the IVR asks
the live ACD to prefer the agent who answered the latest answered call of that case: the newest
`agent_connect` touchpoint (its `attributes.agent`, the agent's login name, as the voice ports and the
callback desk write it) on any interaction of the customer's open cases. Calls that never reached an
agent leave no such touchpoint, so an abandoned call does not count; with several open cases the one
with the newest answered call decides. No open case, no answered call in it, or an agent who is no
longer in the `agents` table: no preference.

What the preference does is the ACD's rule (`routing.acd`): the preferred agent takes the call only if
that agent is ready (and has the call's required skills, at any level); a busy, paused or logged-out
preferred agent never makes the caller wait, the call goes to the longest-idle matching agent as usual.

The read is one query on the read (autocommit) session, run in a worker thread so the call's loop is
not held up. Its path is indexed end to end: `ix_cases_customer_status` (the customer's open cases),
`ix_interactions_case_id` (their interactions), `uq_touchpoints_interaction_seq` (their touchpoints,
by interaction), `uq_agents_name` (the agent by name). `FakePreferredAgents` is the port's fake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from core.cases.models import Case
from core.cases.schemas import OPEN_STATUSES
from core.timeline.models import Interaction, Touchpoint
from core.timeline.schemas import TouchpointKind
from routing.models import Agent


class PreferredAgents(Protocol):
    async def preferred_agent(self, customer_id: int) -> int | None:
        """The agent (id) a call of this customer should go to first, if any."""
        ...


def latest_case_agent_statement() -> Select[Any]:
    """The agent of the newest `agent_connect` on the customer's open cases (NULL when that agent is
    not known any more; no row when there is none). Parameter: `customer_id`."""
    agent_name = Touchpoint.attributes["agent"].as_string()
    return (
        select(Agent.id)
        .select_from(Case)
        .join(Interaction, Interaction.case_id == Case.id)
        .join(Touchpoint, Touchpoint.interaction_id == Interaction.id)
        .outerjoin(Agent, Agent.name == agent_name)
        .where(
            Case.customer_id == bindparam("customer_id"),
            Case.status.in_(OPEN_STATUSES),
            Touchpoint.kind == TouchpointKind.AGENT_CONNECT.value,
        )
        .order_by(Touchpoint.occurred_at.desc(), Touchpoint.id.desc())
        .limit(1)
    )


_LATEST_CASE_AGENT = latest_case_agent_statement()


def case_agent(*, db: Session, customer_id: int) -> int | None:
    """The agent who handled the latest answered call of the customer's open cases (see the module)."""
    agent_id: int | None = db.execute(_LATEST_CASE_AGENT, {"customer_id": customer_id}).scalar()
    return agent_id


class CaseAgentPreference:
    """`PreferredAgents` on the database: `case_agent` on a read session, in a worker thread."""

    def __init__(self, read_session_factory: sessionmaker[Session]) -> None:
        self._reads = read_session_factory

    async def preferred_agent(self, customer_id: int) -> int | None:
        return await asyncio.to_thread(self._read, customer_id)

    def _read(self, customer_id: int) -> int | None:
        with self._reads() as db:
            return case_agent(db=db, customer_id=customer_id)


class FakePreferredAgents:
    """Answers from a table (customer id -> agent id); records who was asked."""

    def __init__(self, agents: Mapping[int, int] | None = None) -> None:
        self.agents = dict(agents or {})
        self.asked: list[int] = []

    async def preferred_agent(self, customer_id: int) -> int | None:
        self.asked.append(customer_id)
        return self.agents.get(customer_id)
