"""Call recordings on the timeline: each one a `recording` touchpoint of its call's interaction.

    note_started(db=db, start=RecordingStart(...))      # the touchpoint (the interaction found by call id)
    list_recordings(db=db, interaction_id=7)            # RecordingRead, in order
    get_recording(db=db, interaction_id=7, number=1)    # NotFound when there is no such recording
    on_demand_target(db=db, interaction=row)            # may an agent start one now? (Conflict: why not)

The touchpoint's attributes say what the file is and why it exists: `file` (relative to the recordings
directory: `routing.recording_policy`), `number`, `started_at`, `policy`, `requested_by` (`policy`, or
the API key that asked), `source` (`mixmonitor`, `ari_bridge`), the `queue` or `campaign`, and once the
retention job deleted the file, `deleted_at`. Voicemail (a flow's record node) is a `recording`
touchpoint too, without `file`: it is not a call recording and none of this touches it.

Nothing here commits: the request, the call's writer or the retention job owns the unit of work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import service as audit
from core.errors import Conflict, NotFound
from core.timeline import service as timeline
from core.timeline.models import Interaction, InteractionRef, Touchpoint
from core.timeline.schemas import RefKind, TouchpointCreate, TouchpointKind
from routing.models import Agent, Queue
from routing.recording_policy import MAX_NUMBER, Policy, is_recording_name
from routing.recording_schemas import RecordingRead

RECORDING = TouchpointKind.RECORDING.value
POLICY_ACTOR = "policy"  # `requested_by` of a recording the queue's or campaign's policy made
_CALL_REFS = (RefKind.ASTERISK_LINKEDID.value, RefKind.ASTERISK_UNIQUEID.value)


@dataclass(frozen=True, slots=True)
class RecordingStart:
    """A recording Asterisk was told to make: what its touchpoint says."""

    file: str  # relative name (recording_policy.recording_name)
    number: int
    started_at: datetime
    policy: Policy
    requested_by: str
    source: str  # "mixmonitor" or "ari_bridge"
    interaction_id: int | None = None
    call_id: str | None = None  # finds the interaction when its id is not known (yet) to the caller
    attempt_id: int | None = None  # a campaign call's dial attempt: finds its interaction
    queue: str | None = None
    campaign: str | None = None

    def attributes(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "file": self.file,
            "number": self.number,
            "started_at": self.started_at.isoformat(),
            "policy": self.policy,
            "requested_by": self.requested_by,
            "source": self.source,
        }
        if self.queue is not None:
            found["queue"] = self.queue
        if self.campaign is not None:
            found["campaign"] = self.campaign
        return found


def note_started(*, db: Session, start: RecordingStart) -> Touchpoint:
    """The recording's touchpoint on its interaction. NotFound when no interaction has that id, call id
    or dial attempt (the call never reached the timeline)."""
    if not is_recording_name(start.file):
        raise ValueError(f"{start.file!r} is not a recording name")
    interaction_id = start.interaction_id
    if interaction_id is None and start.call_id is not None:
        interaction_id = _interaction_by_ref(db, _CALL_REFS, start.call_id)
    if interaction_id is None and start.attempt_id is not None:
        interaction_id = _interaction_by_ref(db, (RefKind.DIAL_ATTEMPT.value,), str(start.attempt_id))
    if interaction_id is None:
        what = f"call {start.call_id}" if start.call_id else f"dial attempt {start.attempt_id}"
        raise NotFound(f"no interaction for {what}: recording {start.file} is not on the timeline")
    return timeline.add_touchpoint(
        db=db,
        interaction_id=interaction_id,
        data=TouchpointCreate(
            kind=TouchpointKind.RECORDING,
            occurred_at=start.started_at,
            input=start.policy,
            attributes=start.attributes(),
        ),
    )


def _interaction_by_ref(db: Session, kinds: tuple[str, ...], value: str) -> int | None:
    return db.scalar(
        select(InteractionRef.interaction_id)
        .where(InteractionRef.kind.in_(kinds), InteractionRef.value == value[:255])
        .limit(1)
    )


# --- reading ------------------------------------------------------------------------------------------


def is_call_recording(touchpoint: Touchpoint) -> bool:
    attributes = touchpoint.attributes or {}
    return touchpoint.kind == RECORDING and "file" in attributes and isinstance(attributes.get("number"), int)


def recording_read(touchpoint: Touchpoint) -> RecordingRead:
    attributes = touchpoint.attributes
    return RecordingRead(
        number=attributes["number"],
        file=str(attributes["file"]),
        started_at=attributes.get("started_at") or touchpoint.occurred_at,
        policy=str(attributes.get("policy", "")),
        requested_by=str(attributes.get("requested_by", "")),
        source=str(attributes.get("source", "")),
        queue=attributes.get("queue"),
        campaign=attributes.get("campaign"),
        deleted_at=attributes.get("deleted_at"),
        touchpoint_id=touchpoint.id,
    )


def _recording_touchpoints(db: Session, interaction_id: int) -> list[Touchpoint]:
    rows = db.scalars(
        select(Touchpoint)
        .where(Touchpoint.interaction_id == interaction_id, Touchpoint.kind == RECORDING)
        .order_by(Touchpoint.seq)
    )
    return [row for row in rows if is_call_recording(row)]


def list_recordings(*, db: Session, interaction_id: int) -> list[RecordingRead]:
    timeline.get_interaction(db=db, interaction_id=interaction_id)
    return [recording_read(row) for row in _recording_touchpoints(db, interaction_id)]


def get_recording(*, db: Session, interaction_id: int, number: int) -> RecordingRead:
    timeline.get_interaction(db=db, interaction_id=interaction_id)
    for row in _recording_touchpoints(db, interaction_id):
        if row.attributes["number"] == number:
            return recording_read(row)
    raise NotFound(f"interaction {interaction_id} has no recording {number}")


def next_number(*, db: Session, interaction_id: int) -> int:
    numbers = [row.attributes["number"] for row in _recording_touchpoints(db, interaction_id)]
    number = max(numbers, default=0) + 1
    if number > MAX_NUMBER:
        raise Conflict(f"interaction {interaction_id} has {MAX_NUMBER} recordings already")
    return number


# --- who may -----------------------------------------------------------------------------------------


def agent_of_key(*, db: Session, key_id: int) -> Agent | None:
    return db.scalars(select(Agent).where(Agent.api_key_id == key_id)).one_or_none()


def is_own_call(*, db: Session, interaction: Interaction, key_id: int) -> bool:
    """Whether the agent linked to API key `key_id` talked on this call: the interaction names them
    (a campaign call names the agent's phone) or one of its `agent_connect` steps does."""
    agent = agent_of_key(db=db, key_id=key_id)
    if agent is None:
        return False
    names = {name for name in (agent.name, agent.home_endpoint, agent.endpoint) if name}
    if interaction.agent in names:
        return True
    connects = db.scalars(
        select(Touchpoint.attributes).where(
            Touchpoint.interaction_id == interaction.id,
            Touchpoint.kind == TouchpointKind.AGENT_CONNECT.value,
        )
    )
    return any((attributes or {}).get("agent") == agent.name for attributes in connects)


@dataclass(frozen=True, slots=True)
class OnDemandTarget:
    """Where an on-demand recording of a live call goes: the caller's channel, named in the call."""

    channel: str
    call_id: str
    queue: str


def on_demand_target(*, db: Session, interaction: Interaction) -> OnDemandTarget:
    """The call an agent asks to record now. Conflict, saying why, unless it is a live voice call that
    went through a queue whose policy is `on_demand` and whose Asterisk channel is known."""
    if interaction.channel != "voice":
        raise Conflict(f"interaction {interaction.id} is not a call ({interaction.channel})")
    if interaction.ended_at is not None:
        raise Conflict(f"call {interaction.id} has ended: there is nothing left to record")
    queue_name = db.scalars(
        select(Touchpoint.attributes)
        .where(
            Touchpoint.interaction_id == interaction.id,
            Touchpoint.kind == TouchpointKind.QUEUE_ENTER.value,
        )
        .order_by(Touchpoint.seq.desc())
        .limit(1)
    ).first()
    queue = (queue_name or {}).get("queue")
    if not queue:
        raise Conflict(f"call {interaction.id} went through no queue: no recording policy allows it")
    row = db.scalars(select(Queue).where(Queue.name == queue)).one_or_none()
    policy = row.recording if row is not None else "never"
    if policy != "on_demand":
        why = "it is recorded already" if policy == "always" else "its calls are never recorded"
        raise Conflict(f"queue {queue!r} records {policy}: {why}")
    channel = (interaction.attributes or {}).get("channel")
    if not isinstance(channel, str) or "/" not in channel:
        raise Conflict(f"call {interaction.id} does not name its Asterisk channel: it cannot be recorded")
    call_id = next(
        (ref["value"] for ref in interaction.external_refs or () if ref.get("kind") in _CALL_REFS),
        f"interaction-{interaction.id}",
    )
    return OnDemandTarget(channel=channel, call_id=call_id, queue=queue)


def record_listen(*, db: Session, actor: str, interaction_id: int, recording: RecordingRead) -> None:
    audit.record(
        db=db,
        actor=actor,
        action="recording.listened",
        subject_type="interaction",
        subject_id=interaction_id,
        details={"number": recording.number, "file": recording.file},
    )


def record_start_request(*, db: Session, actor: str, interaction_id: int, recording: RecordingRead) -> None:
    audit.record(
        db=db,
        actor=actor,
        action="recording.started",
        subject_type="interaction",
        subject_id=interaction_id,
        details={"number": recording.number, "file": recording.file, "policy": recording.policy},
    )
