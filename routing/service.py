"""Agents and queues in the database: create, change, read, and the record of every state change.

Services flush and never commit: the request or the recorder owns the transaction. Each write stages
an event (published once the transaction commits) that keeps the live ACD's copy up to date:
`agent.created` / `agent.updated` carry the agent's name and skills, `queue.created` / `queue.updated`
the queue's whole configuration, `agent.state_changed` the old and new state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import service as audit
from core.auth.models import ApiKey
from core.errors import Conflict, InvalidInput, NotFound
from core.events import stage
from routing.acd import SkillNeed
from routing.agent_state import AgentState, AgentStatus
from routing.live_queues import AgentProfile, QueueConfig, StateChange
from routing.models import Agent, AgentSkill, AgentStateChange, Queue
from routing.schemas import AgentCreate, AgentUpdate, QueueCreate, QueueUpdate

# --- agents ---------------------------------------------------------------------------------------


def create_agent(*, db: Session, data: AgentCreate, actor: str) -> Agent:
    _check_key(db, data.api_key_id)
    agent = Agent(
        name=data.name,
        display_name=data.display_name,
        home_endpoint=data.home_endpoint,
        api_key_id=data.api_key_id,
        state=AgentState.LOGGED_OUT.value,
        skills=[AgentSkill(skill=s.skill, level=s.level) for s in data.skills],
    )
    _flush_unique(
        db, agent, f"an agent named {data.name!r} already exists, or that API key is another agent's"
    )
    audit.record(
        db=db,
        actor=actor,
        action="agent.created",
        subject_type="agent",
        subject_id=agent.id,
        details={"name": agent.name, "skills": _skills(agent)},
    )
    stage(db, "agent.created", profile_payload(agent))
    return agent


def get_agent(*, db: Session, agent_id: int) -> Agent:
    agent = db.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    return agent


def list_agents(*, db: Session) -> list[Agent]:
    return list(db.scalars(select(Agent).order_by(Agent.id)))


def agent_for_key(*, db: Session, key_id: int) -> Agent | None:
    return db.scalars(select(Agent).where(Agent.api_key_id == key_id)).one_or_none()


def agent_at_home(*, db: Session, endpoint: str) -> Agent | None:
    """The agent whose usual phone `endpoint` is (the phone's log-in feature code)."""
    return db.scalars(select(Agent).where(Agent.home_endpoint == endpoint).order_by(Agent.id)).first()


def update_agent(*, db: Session, agent_id: int, data: AgentUpdate, actor: str) -> Agent:
    agent = get_agent(db=db, agent_id=agent_id)
    changed = data.model_dump(exclude_unset=True)
    if "display_name" in changed and data.display_name is None:
        raise InvalidInput("display_name cannot be empty")
    if "api_key_id" in changed:
        _check_key(db, data.api_key_id)
        agent.api_key_id = data.api_key_id
    if data.display_name is not None:
        agent.display_name = data.display_name
    if "home_endpoint" in changed:
        agent.home_endpoint = data.home_endpoint
    if data.skills is not None:
        wanted = {s.skill: s.level for s in data.skills}
        agent.skills = [s for s in agent.skills if s.skill in wanted]
        for skill in agent.skills:
            skill.level = wanted.pop(skill.skill)
        agent.skills.extend(AgentSkill(skill=name, level=level) for name, level in wanted.items())
    _flush_unique(db, agent, "that API key is another agent's")
    audit.record(
        db=db,
        actor=actor,
        action="agent.updated",
        subject_type="agent",
        subject_id=agent.id,
        details={"fields": sorted(changed), "skills": _skills(agent)},
    )
    stage(db, "agent.updated", profile_payload(agent))
    return agent


def record_state_change(*, db: Session, change: StateChange) -> AgentStateChange | None:
    """Writes what the live ACD changed: the agent's row, a history row, an audit row and the event."""
    agent = db.get(Agent, change.agent_id)
    if agent is None:  # deleted since: nothing to record it on
        return None
    after, before = change.after, change.before
    agent.state = after.state.value
    agent.state_reason = after.reason
    agent.state_since = after.since or change.at
    agent.endpoint = after.endpoint if after.state is not AgentState.LOGGED_OUT else None
    row = AgentStateChange(
        agent_id=agent.id,
        state=after.state.value,
        previous_state=before.state.value,
        reason=after.reason,
        endpoint=after.endpoint or before.endpoint,
        queue=after.queue or before.queue,
        call_ref=after.call_id or before.call_id,
        actor=change.actor[:100],
        changed_at=change.at,
    )
    db.add(row)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError:
        raise Conflict(f"{after.endpoint} is held by another agent") from None
    audit.record(
        db=db,
        actor=change.actor[:100],
        action="agent.state_changed",
        subject_type="agent",
        subject_id=agent.id,
        details={"from": before.state.value, "to": after.state.value, "reason": after.reason},
    )
    stage(db, "agent.state_changed", state_payload(change))
    return row


def state_history(*, db: Session, agent_id: int, limit: int = 100) -> list[AgentStateChange]:
    query = (
        select(AgentStateChange)
        .where(AgentStateChange.agent_id == agent_id)
        .order_by(AgentStateChange.changed_at.desc(), AgentStateChange.id.desc())
        .limit(limit)
    )
    return list(db.scalars(query))


def profile_of(agent: Agent) -> AgentProfile:
    skills = {s.skill: s.level for s in agent.skills}
    return AgentProfile(agent.id, agent.name, skills, home_endpoint=agent.home_endpoint)


def stored_status(agent: Agent) -> AgentStatus:
    """The last state recorded, as the live ACD restores it at start-up."""
    state = AgentState(agent.state)
    if state is AgentState.LOGGED_OUT or agent.endpoint is None:
        return AgentStatus()
    return AgentStatus(state, agent.state_since, endpoint=agent.endpoint, reason=agent.state_reason)


def profile_payload(agent: Agent) -> dict[str, Any]:
    return {
        "agent_id": agent.id,
        "name": agent.name,
        "skills": {s.skill: s.level for s in agent.skills},
        "home_endpoint": agent.home_endpoint,
    }


def state_payload(change: StateChange) -> dict[str, Any]:
    return {
        "agent_id": change.agent_id,
        "agent": change.agent_name,
        "actor": change.actor,
        "previous_state": change.before.state.value,
        **status_payload(change.after),
    }


def status_payload(status: AgentStatus) -> dict[str, Any]:
    return {
        "state": status.state.value,
        "since": status.since.isoformat() if status.since else None,
        "endpoint": status.endpoint,
        "reason": status.reason,
        "until": status.until.isoformat() if status.until else None,
        "call_id": status.call_id,
        "queue": status.queue,
    }


def _skills(agent: Agent) -> dict[str, int]:
    return {s.skill: s.level for s in agent.skills}


def _check_key(db: Session, key_id: int | None) -> None:
    if key_id is not None and db.get(ApiKey, key_id) is None:
        raise InvalidInput(f"API key {key_id} does not exist")


def _flush_unique(db: Session, row: Agent | Queue, message: str) -> None:
    try:
        with db.begin_nested():
            db.add(row)
            db.flush()
    except IntegrityError:
        raise Conflict(message) from None


# --- queues ---------------------------------------------------------------------------------------

_QUEUE_DEFAULTS: dict[str, Any] = {
    "priority": 0,
    "service_level_seconds": 20,
    "service_level_percent": 80,
    "wrap_up_seconds": 30,
    "recording": "never",
    "open_case_priority_boost": 1,
}
_REQUIRED = (
    "priority",
    "service_level_seconds",
    "service_level_percent",
    "wrap_up_seconds",
    "recording",
    "open_case_priority_boost",
)


def create_queue(*, db: Session, data: QueueCreate, actor: str) -> Queue:
    fields = _QUEUE_DEFAULTS | data.model_dump(exclude_none=True)
    fields["display_name"] = fields.get("display_name") or data.name
    fields["skills"] = [s.model_dump() for s in data.skills or ()]
    queue = Queue(**fields)
    _flush_unique(db, queue, f"a queue named {data.name!r} already exists")
    _queue_written(db, queue, "queue.created", actor, sorted(fields))
    return queue


def get_queue(*, db: Session, name: str) -> Queue:
    queue = db.scalars(select(Queue).where(Queue.name == name)).one_or_none()
    if queue is None:
        raise NotFound(f"queue {name!r} not found")
    return queue


def list_queues(*, db: Session) -> list[Queue]:
    return list(db.scalars(select(Queue).order_by(Queue.name)))


def update_queue(*, db: Session, name: str, data: QueueUpdate, actor: str) -> Queue:
    queue = get_queue(db=db, name=name)
    changed = data.model_dump(exclude_unset=True)
    for field in (*_REQUIRED, "display_name", "skills"):
        if field in changed and changed[field] is None:
            raise InvalidInput(f"{field} cannot be null")
    if "skills" in changed:
        changed["skills"] = [s.model_dump() for s in data.skills or ()]
    for field, value in changed.items():
        setattr(queue, field, value)
    db.flush()
    _queue_written(db, queue, "queue.updated", actor, sorted(changed))
    return queue


def _queue_written(db: Session, queue: Queue, action: str, actor: str, fields: Sequence[str]) -> None:
    audit.record(
        db=db,
        actor=actor,
        action=action,
        subject_type="queue",
        subject_id=queue.id,
        details={"fields": fields},
    )
    stage(db, action, queue_payload(queue))


def queue_payload(queue: Queue) -> dict[str, Any]:
    return {
        "name": queue.name,
        "skills": list(queue.skills),
        "priority": queue.priority,
        "service_level_seconds": queue.service_level_seconds,
        "service_level_percent": queue.service_level_percent,
        "max_wait_seconds": queue.max_wait_seconds,
        "max_length": queue.max_length,
        "wrap_up_seconds": queue.wrap_up_seconds,
        "overflow_wait_seconds": queue.overflow_wait_seconds,
        "widen_after_seconds": queue.widen_after_seconds,
        "open_case_priority_boost": queue.open_case_priority_boost,
    }


def config_from_payload(payload: dict[str, Any]) -> QueueConfig:
    """The live ACD's copy of a queue, from `queue_payload` (an event's, or a row's at start-up)."""
    return QueueConfig(
        name=payload["name"],
        needs=tuple(
            SkillNeed(s["skill"], s.get("min_level", 1), s.get("optional", False)) for s in payload["skills"]
        ),
        priority=payload["priority"],
        service_level_s=payload["service_level_seconds"],
        service_level_percent=payload["service_level_percent"],
        max_wait_s=payload["max_wait_seconds"],
        max_length=payload["max_length"],
        wrap_up_s=payload["wrap_up_seconds"],
        overflow_wait_s=payload["overflow_wait_seconds"],
        widen_after_s=payload["widen_after_seconds"],
    )


def profile_from_payload(payload: dict[str, Any]) -> AgentProfile:
    home = payload.get("home_endpoint")
    return AgentProfile(payload["agent_id"], payload["name"], dict(payload["skills"]), home_endpoint=home)
