"""The inbound routing tables: agents, their skills and state history, and queues.

An agent's SIP endpoint is *held* at log-in (`endpoint`, NULL while logged out) rather than owned for
ever: agents hot-desk, and the unique constraint on `endpoint` is what makes "that phone is taken by
another agent" a clear error even when two log-ins race. `home_endpoint` is only the phone the agent
usually sits at (the phone's log-in feature code uses it). The live states an agent passes through on
a call (offered, on call, wrap-up) are kept in memory by the live ACD; `state` here is the last state
recorded, and `agent_state_changes` is the history of every change, for reports.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (
        UniqueConstraint("name", name="uq_agents_name"),
        UniqueConstraint("endpoint", name="uq_agents_endpoint"),
        UniqueConstraint("api_key_id", name="uq_agents_api_key_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))  # a login name, e.g. "ana"
    display_name: Mapped[str] = mapped_column(String(200))
    home_endpoint: Mapped[str | None] = mapped_column(String(128))  # e.g. PJSIP/1001
    endpoint: Mapped[str | None] = mapped_column(String(128))  # held while logged in
    state: Mapped[str] = mapped_column(String(16), default="logged_out")
    state_reason: Mapped[str | None] = mapped_column(String(200))
    state_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    api_key_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("api_keys.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    skills: Mapped[list[AgentSkill]] = relationship(
        back_populates="agent", cascade="all, delete-orphan", order_by="AgentSkill.skill", lazy="selectin"
    )


class AgentSkill(Base):
    __tablename__ = "agent_skills"
    __table_args__ = (
        UniqueConstraint("agent_id", "skill", name="uq_agent_skills_agent_skill"),
        CheckConstraint("level BETWEEN 1 AND 10", name="level_range"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(BigId, ForeignKey("agents.id", ondelete="CASCADE"))
    skill: Mapped[str] = mapped_column(String(64))
    level: Mapped[int] = mapped_column(Integer)  # 1 (learning) .. 10 (expert)

    agent: Mapped[Agent] = relationship(back_populates="skills")


class AgentStateChange(Base):
    """One row per state change, whoever made it (the agent, a supervisor, the phone, the ACD)."""

    __tablename__ = "agent_state_changes"
    __table_args__ = (Index("ix_agent_state_changes_agent_changed", "agent_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(BigId, ForeignKey("agents.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    previous_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    endpoint: Mapped[str | None] = mapped_column(String(128))
    queue: Mapped[str | None] = mapped_column(String(64))
    call_ref: Mapped[str | None] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Queue(Base):
    __tablename__ = "queues"
    __table_args__ = (
        UniqueConstraint("name", name="uq_queues_name"),
        CheckConstraint("open_case_priority_boost BETWEEN 0 AND 10", name="open_case_priority_boost_range"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))  # what IVR flows name in their queue nodes
    display_name: Mapped[str] = mapped_column(String(200))
    # [{"skill": "billing", "min_level": 3, "optional": false}, ...]: see routing.acd for how they widen.
    skills: Mapped[list[dict[str, Any]]] = mapped_column(JsonDoc, default=list)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # added to each call's own priority
    schedule: Mapped[str | None] = mapped_column(String(64))  # a business-hours schedule's name
    service_level_seconds: Mapped[int] = mapped_column(Integer, default=20)
    service_level_percent: Mapped[int] = mapped_column(Integer, default=80)
    max_wait_seconds: Mapped[int | None] = mapped_column(Integer)
    max_length: Mapped[int | None] = mapped_column(Integer)
    wrap_up_seconds: Mapped[int] = mapped_column(Integer, default=30)
    overflow_wait_seconds: Mapped[int | None] = mapped_column(Integer)  # offer overflow above this EWT
    widen_after_seconds: Mapped[int | None] = mapped_column(Integer)
    recording: Mapped[str] = mapped_column(String(16), default="never")  # always, on_demand, never
    # Added to the call's own priority when the caller has an open case, 0: off (routing.preferred_agent).
    open_case_priority_boost: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
