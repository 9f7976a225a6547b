"""The rows the KPIs read: plain typed values, free of the database and of any one channel's code.

`reporting.service` maps the timeline, the cases and the dialer's attempts into these; anything else
(inbound routing's queues and agents, a broker in another process) can feed the same rows.

Where each figure comes from on the timeline:

- a **contact** is one interaction; its **steps** are its touchpoints, in order;
- a **queue visit** runs from a `queue_enter` step (queue in `attributes["queue"]`, else the step's
  node, else the interaction's queue) to the first of: an `agent_connect` step (answered; the agent in
  `attributes["agent"]`, else the interaction's agent), a `queue_leave` step, the next `queue_enter`
  (moved to another queue: left), or the end of the interaction. A `queue_leave` says why in
  `attributes["reason"]`: "answered"/"connected" (answered), "abandoned"/"hangup"/"left" (the caller
  hung up),
  anything else ("timeout", "overflow", "full", "callback", "voicemail", "transfer") left the queue for
  another destination. Without a reason it is an answer when an `agent_connect` follows, else the caller
  hung up. A visit still open when the interaction ended was abandoned if the interaction's outcome is
  `abandoned`, and left for somewhere unknown otherwise;
- **handling** (talk, hold, wrap-up) starts at `agent_connect` and ends with the interaction; `hold`
  steps last their `duration_ms`, or until the next `resume` step (or the end); wrap-up is the
  interaction's `attributes["wrap_up_seconds"]` (written by whoever knows when the agent finished);
- **callbacks**: offered = a contact with a `callback_offered` step; accepted = one with a
  `callback_accepted` step; completed = an outbound contact whose `attributes["callback_for"]` (the id of
  the contact or callback it returns) is set and whose outcome is `completed`;
- **CSAT** is the interaction's `csat` column (1-5; `POST /interactions/{id}/close` takes it);
- an **IVR call** is an inbound voice contact that ran a flow (`attributes["flow"]`, as the call journal
  writes it, or any IVR step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from core.channels import Direction
from core.timeline.schemas import Outcome, TouchpointKind

# Outbound attempts that never reached the customer are not contacts with them.
UNREACHED = frozenset(
    {
        Outcome.NO_ANSWER.value,
        Outcome.BUSY.value,
        Outcome.FAILED.value,
        Outcome.REJECTED.value,
        Outcome.ANSWERING_MACHINE.value,
        Outcome.VOICEMAIL.value,
        Outcome.UNDELIVERED.value,
    }
)
_IVR_STEPS = frozenset(
    {
        TouchpointKind.IVR_NODE.value,
        TouchpointKind.MENU_CHOICE.value,
        TouchpointKind.DTMF.value,
        TouchpointKind.SPEECH.value,
        TouchpointKind.LANGUAGE_SET.value,
    }
)
_ANSWERED_REASONS = frozenset({"answered", "connected"})
_HANGUP_REASONS = frozenset({"abandoned", "hangup", "caller_hangup", "left"})


@dataclass(frozen=True, slots=True)
class Step:
    """One touchpoint of a contact."""

    kind: str
    occurred_at: datetime
    node: str | None = None
    duration_ms: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Contact:
    """One interaction, with its steps in order."""

    interaction_id: int
    channel: str
    direction: str
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str | None = None
    customer_id: int | None = None
    case_id: int | None = None
    queue: str | None = None
    agent: str | None = None
    campaign: str | None = None
    csat: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()

    @property
    def is_customer_contact(self) -> bool:
        """The customer took part: not an internal note, not an outbound attempt nobody answered."""
        if self.direction == Direction.INTERNAL:
            return False
        return not (self.direction == Direction.OUTBOUND and self.outcome in UNREACHED)

    @property
    def is_ivr_call(self) -> bool:
        if self.channel != "voice" or self.direction != Direction.INBOUND:
            return False
        return "flow" in self.attributes or any(step.kind in _IVR_STEPS for step in self.steps)

    def has_step(self, kind: TouchpointKind) -> bool:
        return any(step.kind == kind.value for step in self.steps)


class VisitResult(StrEnum):
    ANSWERED = "answered"
    ABANDONED = "abandoned"  # the caller hung up while waiting
    LEFT = "left"  # for another destination: another queue, a callback, voicemail, a timeout
    WAITING = "waiting"  # still in the queue


@dataclass(frozen=True, slots=True)
class QueueVisit:
    """A contact's time in one queue."""

    queue: str
    entered_at: datetime
    result: VisitResult
    ended_at: datetime | None = None  # answered or left; None while waiting
    agent: str | None = None
    interaction_id: int | None = None
    channel: str = "voice"
    campaign: str | None = None
    started_at: datetime | None = None  # the contact's start, which reports bucket by; else entered_at

    def wait_seconds(self, now: datetime | None = None) -> float | None:
        """How long the caller waited: until the answer or leaving, or until `now` while waiting."""
        end = self.ended_at or now
        return None if end is None else max(0.0, seconds_between(self.entered_at, end))


@dataclass(frozen=True, slots=True)
class Handling:
    """An agent's work on one contact."""

    answered_at: datetime
    talk_seconds: float
    hold_seconds: float = 0.0
    wrap_seconds: float = 0.0
    agent: str | None = None
    queue: str | None = None
    campaign: str | None = None
    channel: str = "voice"
    interaction_id: int | None = None
    started_at: datetime | None = None  # the contact's start; else answered_at

    @property
    def handle_seconds(self) -> float:
        return self.talk_seconds + self.hold_seconds + self.wrap_seconds


class AgentActivity(StrEnum):
    """What occupancy sees of an agent's state (routing's states map onto these)."""

    READY = "ready"  # logged in and free
    HANDLING = "handling"  # ringing, talking, on hold
    WRAP_UP = "wrap_up"
    AWAY = "away"  # paused or logged out: not counted


@dataclass(frozen=True, slots=True)
class AgentStateSpan:
    agent: str
    activity: AgentActivity
    start: datetime
    end: datetime | None = None  # None: still in it
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """A case with every contact attached to it (steps not needed), in order of start."""

    case_id: int
    customer_id: int
    status: str
    opened_at: datetime
    resolved_at: datetime | None = None
    reopened_count: int = 0
    contacts: tuple[Contact, ...] = ()

    def customer_contacts(self) -> list[Contact]:
        return sorted(
            (c for c in self.contacts if c.is_customer_contact),
            key=lambda c: (c.started_at, c.interaction_id),
        )

    @property
    def first_contact_at(self) -> datetime | None:
        contacts = self.customer_contacts()
        return contacts[0].started_at if contacts else None


def seconds_between(start: datetime, end: datetime) -> float:
    """Elapsed seconds, through UTC: two times of one zone subtract by the wall clock (an hour off across
    a clock change)."""
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds()


# --- contacts into visits and handling ------------------------------------------------------------------


def queue_visits_of(contact: Contact) -> list[QueueVisit]:
    """The queue visits in a contact's steps (see the module docstring for the rules)."""
    visits: list[QueueVisit] = []
    open_queue: str | None = None
    entered: datetime | None = None
    steps = contact.steps

    def close(result: VisitResult, at: datetime | None, agent: str | None = None) -> None:
        nonlocal open_queue, entered
        assert open_queue is not None and entered is not None
        visits.append(
            QueueVisit(
                queue=open_queue,
                entered_at=entered,
                result=result,
                ended_at=at,
                agent=agent,
                interaction_id=contact.interaction_id,
                channel=contact.channel,
                campaign=contact.campaign,
                started_at=contact.started_at,
            )
        )
        open_queue = entered = None

    for index, step in enumerate(steps):
        if step.kind == TouchpointKind.QUEUE_ENTER:
            if open_queue is not None:
                close(VisitResult.LEFT, step.occurred_at)
            open_queue = str(step.attributes.get("queue") or step.node or contact.queue or "unknown")
            entered = step.occurred_at
        elif open_queue is None:
            continue
        elif step.kind == TouchpointKind.AGENT_CONNECT:
            close(VisitResult.ANSWERED, step.occurred_at, _agent(step, contact))
        elif step.kind == TouchpointKind.QUEUE_LEAVE:
            reason = str(step.attributes.get("reason") or "").lower()
            if reason in _ANSWERED_REASONS:
                close(VisitResult.ANSWERED, step.occurred_at, _agent(step, contact))
            elif reason in _HANGUP_REASONS:
                close(VisitResult.ABANDONED, step.occurred_at)
            elif reason:
                close(VisitResult.LEFT, step.occurred_at)
            else:
                connect = _connect_after(steps, index)
                if connect is not None:
                    close(VisitResult.ANSWERED, connect.occurred_at, _agent(connect, contact))
                else:
                    close(VisitResult.ABANDONED, step.occurred_at)
    if open_queue is not None:
        if contact.ended_at is None:
            close(VisitResult.WAITING, None)
        elif contact.outcome == Outcome.ABANDONED:
            close(VisitResult.ABANDONED, contact.ended_at)
        else:
            close(VisitResult.LEFT, contact.ended_at)
    return visits


def _agent(step: Step, contact: Contact) -> str | None:
    agent = step.attributes.get("agent")
    return str(agent) if agent else contact.agent


def _connect_after(steps: tuple[Step, ...], index: int) -> Step | None:
    for step in steps[index + 1 :]:
        if step.kind == TouchpointKind.AGENT_CONNECT:
            return step
        if step.kind == TouchpointKind.QUEUE_ENTER:
            return None
    return None


def handling_of(contact: Contact, *, visits: Sequence[QueueVisit] | None = None) -> Handling | None:
    """The agent's work on a finished contact that reached one (an `agent_connect` step), else None.
    `visits`: the contact's queue visits, when already derived."""
    connect = next((s for s in contact.steps if s.kind == TouchpointKind.AGENT_CONNECT), None)
    if connect is None or contact.ended_at is None:
        return None
    end = contact.ended_at
    total = max(0.0, seconds_between(connect.occurred_at, end))
    hold = 0.0
    held_since: datetime | None = None
    for step in contact.steps:
        if step.occurred_at < connect.occurred_at:
            continue
        if step.kind == TouchpointKind.HOLD:
            if step.duration_ms is not None:
                hold += step.duration_ms / 1000
            elif held_since is None:
                held_since = step.occurred_at
        elif step.kind == TouchpointKind.RESUME and held_since is not None:
            hold += seconds_between(held_since, step.occurred_at)
            held_since = None
    if held_since is not None:
        hold += seconds_between(held_since, end)
    hold = min(hold, total)
    return Handling(
        answered_at=connect.occurred_at,
        talk_seconds=total - hold,
        hold_seconds=hold,
        wrap_seconds=_seconds(contact.attributes.get("wrap_up_seconds")),
        agent=_agent(connect, contact),
        queue=_answering_queue(contact, queue_visits_of(contact) if visits is None else visits),
        campaign=contact.campaign,
        channel=contact.channel,
        interaction_id=contact.interaction_id,
        started_at=contact.started_at,
    )


def _answering_queue(contact: Contact, visits: Sequence[QueueVisit]) -> str | None:
    answered = [v for v in visits if v.result is VisitResult.ANSWERED]
    return answered[-1].queue if answered else contact.queue


def _seconds(value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 0.0
    return seconds if seconds >= 0 else 0.0
