"""What a customer's open case changes about their call: who should take it first, and how far up the
queue it goes.

When a caller with an open case (status open or pending) joins one of Centralita's queues, the IVR asks
one question of the database (`open_case_statement`) and gets back whether the customer has an open
case at all and, if so:

- **the preferred agent**: the agent who answered the latest answered call of that case, i.e. the
  newest `agent_connect` touchpoint (its `attributes.agent`, the agent's login name, as the voice ports
  and the callback desk write it) on any interaction of the customer's open cases. Calls that never
  reached an agent leave no such touchpoint, so an abandoned call does not count; with several open
  cases the one with the newest answered call decides. No answered call in them, or an agent who is no
  longer in the `agents` table: no preference (the case still counts as open);
- **the priority boost**: the queue's `open_case_priority_boost` (0 turns it off). The call's own
  priority (the IVR's, 0..10) goes up by it, but never above `OPEN_CASE_PRIORITY_CAP`, the IVR's
  highest priority: an open case brings a caller level with the most urgent calls the IVR sends, never
  ahead of them, and a priority already above the cap is left as it is (`raised_priority`).

What the preference does is the ACD's rule (`routing.acd`): the preferred agent takes the call only if
that agent is ready (and has the call's required skills, at any level); a busy, paused or logged-out
preferred agent never makes the caller wait, the call goes to the longest-idle matching agent as usual.
The raised priority orders the call among the waiting ones like any other priority (higher first, then
the longest waiting).

The read is one query on the read (autocommit) session, run in a worker thread so the call's loop is
not held up. Its path is indexed end to end: `ix_cases_customer_status` (the customer's open cases),
`ix_interactions_case_id` (their interactions), `uq_touchpoints_interaction_seq` (their touchpoints,
by interaction), `uq_agents_name` (the agent by name), `uq_queues_name` (the queue's boost, a scalar
subquery: read with the case, so the setting is the one committed when the caller joins).
`FakeOpenCases` is the port's fake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from core.cases.models import Case
from core.cases.schemas import OPEN_STATUSES
from core.timeline.models import Interaction, Touchpoint
from core.timeline.schemas import TouchpointKind
from routing.models import Agent, Queue

# The IVR's highest priority (a flow's queue node takes 0..10): an open case lifts a call up to it.
OPEN_CASE_PRIORITY_CAP = 10


@dataclass(frozen=True, slots=True)
class OpenCase:
    """The customer has an open (or pending) case: what that asks of their call joining a queue."""

    preferred_agent: int | None  # who answered its latest answered call (None: nobody we know)
    priority_boost: int  # the queue's open_case_priority_boost (0: the queue gives none)


class OpenCaseLookup(Protocol):
    async def open_case(self, customer_id: int, queue: str) -> OpenCase | None:
        """What the customer's open case asks of a call joining `queue`; None: no open case."""
        ...


def raised_priority(priority: int, boost: int) -> int:
    """A call's own priority raised by an open case's `boost`: never above `OPEN_CASE_PRIORITY_CAP`,
    never lowered (a priority above the cap stays), unchanged by a boost of 0 or less."""
    if boost <= 0:
        return priority
    return max(priority, min(priority + boost, OPEN_CASE_PRIORITY_CAP))


def open_case_statement() -> Select[Any]:
    """One row when the customer has an open case: (case id, the agent of the newest `agent_connect` on
    their open cases or NULL, the queue's boost or NULL for a queue not in the table); no row when they
    have none. Parameters: `customer_id`, `queue`."""
    agent_name = Touchpoint.attributes["agent"].as_string()
    boost = select(Queue.open_case_priority_boost).where(Queue.name == bindparam("queue")).scalar_subquery()
    return (
        select(Case.id, Agent.id, boost)
        .select_from(Case)
        .outerjoin(Interaction, Interaction.case_id == Case.id)
        .outerjoin(
            Touchpoint,
            and_(
                Touchpoint.interaction_id == Interaction.id,
                Touchpoint.kind == TouchpointKind.AGENT_CONNECT.value,
            ),
        )
        .outerjoin(Agent, Agent.name == agent_name)
        .where(Case.customer_id == bindparam("customer_id"), Case.status.in_(OPEN_STATUSES))
        # Answered calls first (false sorts before true on both databases), the newest of them on top.
        .order_by(Touchpoint.id.is_(None), Touchpoint.occurred_at.desc(), Touchpoint.id.desc())
        .limit(1)
    )


_OPEN_CASE = open_case_statement()


def open_case(*, db: Session, customer_id: int, queue: str) -> OpenCase | None:
    """What the customer's open case asks of a call joining `queue` (see the module); None: no open case."""
    row = db.execute(_OPEN_CASE, {"customer_id": customer_id, "queue": queue}).first()
    if row is None:
        return None
    _, agent_id, boost = row
    return OpenCase(preferred_agent=agent_id, priority_boost=boost or 0)


class CaseAgentPreference:
    """`OpenCaseLookup` on the database: `open_case` on a read session, in a worker thread."""

    def __init__(self, read_session_factory: sessionmaker[Session]) -> None:
        self._reads = read_session_factory

    async def open_case(self, customer_id: int, queue: str) -> OpenCase | None:
        return await asyncio.to_thread(self._read, customer_id, queue)

    def _read(self, customer_id: int, queue: str) -> OpenCase | None:
        with self._reads() as db:
            return open_case(db=db, customer_id=customer_id, queue=queue)


class FakeOpenCases:
    """Answers from tables: the customers with an open case (customer id -> their case's agent, or None)
    and the queues' boosts (queue -> boost; a queue not named gives `default_boost`). Records who was
    asked, and for which queue."""

    def __init__(
        self,
        cases: Mapping[int, int | None] | None = None,
        *,
        boosts: Mapping[str, int] | None = None,
        default_boost: int = 1,
    ) -> None:
        self.cases = dict(cases or {})
        self.boosts = dict(boosts or {})
        self.default_boost = default_boost
        self.asked: list[tuple[int, str]] = []

    async def open_case(self, customer_id: int, queue: str) -> OpenCase | None:
        self.asked.append((customer_id, queue))
        if customer_id not in self.cases:
            return None
        return OpenCase(self.cases[customer_id], self.boosts.get(queue, self.default_boost))
