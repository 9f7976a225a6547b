"""Call recordings: list them, play one, and start one on demand during a call.

Who: `recordings:listen` (managers, admins) hears any call's recordings; `recordings:own` (agents) hears,
and starts on demand, only the recordings of calls they talked on (their agent, linked to their key,
is named by the call or answered it: `routing.recordings.is_own_call`). Every time a file is served an
audit row (`recording.listened`) says who heard which one, and every on-demand start one
(`recording.started`).

Files are read from CENTRALITA_ASTERISK_RECORDINGS_DIR (503 when it is not set), by the relative name on
the recording's touchpoint, and only when that name has the shape Centralita gives recordings
(`routing.recording_policy.resolve`): nothing outside that directory can be served.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from api.deps import ReadDB, WriteDB, authenticate
from core.auth.roles import Permission, allows
from core.auth.service import Principal
from core.db import unit_of_work, utcnow
from core.settings import Settings
from core.timeline import service as timeline
from core.timeline.models import Interaction
from routing import recordings
from routing.recording_asterisk import (
    AmiMixMonitor,
    ChannelRecorder,
    RecordingRefused,
    RecordingUnavailable,
)
from routing.recording_policy import UnsafeRecordingName, asterisk_file, recording_name, resolve
from routing.recording_schemas import RecordingList, RecordingRead
from routing.recordings import RecordingStart

router = APIRouter(prefix="/interactions", tags=["recordings"])
T = TypeVar("T")

Who = Annotated[Principal, Depends(authenticate)]


def _needs(who: Principal, *permissions: Permission) -> None:
    if not any(allows(who.role, permission) for permission in permissions):
        wanted = " or ".join(permission.value for permission in permissions)
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"role {who.role.value} may not do this (needs {wanted})"
        )


def _may_hear(db: Session, who: Principal, interaction: Interaction) -> None:
    if allows(who.role, Permission.RECORDINGS_LISTEN):
        return
    if allows(who.role, Permission.RECORDINGS_OWN) and recordings.is_own_call(
        db=db, interaction=interaction, key_id=who.key_id
    ):
        return
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"role {who.role.value} hears only its own calls' recordings (interaction {interaction.id} "
        f"needs {Permission.RECORDINGS_LISTEN.value})",
    )


def _recordings_dir(settings: Settings) -> Any:
    root = settings.asterisk_recordings_dir
    if root is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "recordings cannot be read here: set CENTRALITA_ASTERISK_RECORDINGS_DIR to the directory "
            "Asterisk records into (CENTRALITA_ASTERISK_RECORDINGS_PATH), as this machine sees it",
        )
    return root


@router.get("/{interaction_id}/recordings", response_model=RecordingList)
def list_recordings(interaction_id: int, db: ReadDB, who: Who) -> Any:
    """The call's recordings, in order: number, file, when, why (policy, who asked), deleted or not."""
    _needs(who, Permission.RECORDINGS_LISTEN, Permission.RECORDINGS_OWN)
    interaction = timeline.get_interaction(db=db, interaction_id=interaction_id)
    _may_hear(db, who, interaction)
    return RecordingList(items=recordings.list_recordings(db=db, interaction_id=interaction_id))


@router.get(
    "/{interaction_id}/recordings/{number}",
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/wav": {}}, "description": "the recording (WAV)"},
        404: {"description": "no such recording, or its file is gone (deleted by retention, or missing)"},
        409: {"description": "the recording's file name is not one Centralita makes: never served"},
        503: {"description": "CENTRALITA_ASTERISK_RECORDINGS_DIR is not set"},
    },
)
def play_recording(interaction_id: int, number: int, request: Request, db: WriteDB, who: Who) -> FileResponse:
    """The recording's WAV file. Every file served writes an audit row (`recording.listened`)."""
    _needs(who, Permission.RECORDINGS_LISTEN, Permission.RECORDINGS_OWN)
    settings: Settings = request.app.state.settings
    interaction = timeline.get_interaction(db=db, interaction_id=interaction_id)
    _may_hear(db, who, interaction)
    found = recordings.get_recording(db=db, interaction_id=interaction_id, number=number)
    root = _recordings_dir(settings)
    try:
        path = resolve(root, found.file)
    except UnsafeRecordingName as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"recording {number} is not served: {exc}") from None
    if found.deleted_at is not None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"recording {number} of interaction {interaction_id} was deleted on "
            f"{found.deleted_at:%Y-%m-%d} by the retention job",
        )
    if not path.is_file():
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"recording {number} of interaction {interaction_id} is listed, but its file {found.file} is "
            "missing from the recordings directory",
        )
    recordings.record_listen(db=db, actor=who.name, interaction_id=interaction_id, recording=found)
    return FileResponse(path, media_type="audio/wav", filename=f"interaction-{interaction_id}-{number}.wav")


def channel_recorder(request: Request) -> ChannelRecorder:
    """The app's own (tests set `app.state.channel_recorder`), else AMI from the settings; 503 without."""
    recorder: ChannelRecorder | None = getattr(request.app.state, "channel_recorder", None)
    if recorder is not None:
        return recorder
    settings: Settings = request.app.state.settings
    if not settings.asterisk_ami_host:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "on-demand recording needs Asterisk's manager interface: set CENTRALITA_ASTERISK_AMI_HOST "
            "(and _AMI_USER, _AMI_PASSWORD)",
        )
    return AmiMixMonitor.to(
        settings.asterisk_ami_host,
        settings.asterisk_ami_port,
        username=settings.asterisk_ami_user,
        secret=settings.asterisk_ami_password,
    )


async def _in_session(request: Request, work: Callable[[Session], T]) -> T:
    """`work` in one unit of work, in a worker thread (this route awaits Asterisk too)."""
    factory = request.app.state.session_factory

    def run() -> T:
        with unit_of_work(factory) as db:
            return work(db)

    return await anyio.to_thread.run_sync(run)


@router.post(
    "/{interaction_id}/recording/start",
    status_code=status.HTTP_201_CREATED,
    response_model=RecordingRead,
    responses={
        409: {"description": "the call has ended, its queue does not record on demand, or Asterisk refused"},
        503: {"description": "no AMI configured, or Asterisk unreachable"},
    },
)
async def start_recording(interaction_id: int, request: Request, who: Who) -> Any:
    """Record a live call from now on (its queue's policy must be `on_demand`): AMI `MixMonitor` on the
    caller's channel, while it is bridged to the agent. Agents: their own calls only."""
    _needs(who, Permission.RECORDINGS_OWN)
    settings: Settings = request.app.state.settings
    recorder = channel_recorder(request)

    def prepare(db: Session) -> tuple[recordings.OnDemandTarget, int]:
        interaction = timeline.get_interaction(db=db, interaction_id=interaction_id)
        if not allows(who.role, Permission.RECORDINGS_LISTEN) and not recordings.is_own_call(
            db=db, interaction=interaction, key_id=who.key_id
        ):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this key may record only its own agent's calls, not {interaction_id}",
            )
        target = recordings.on_demand_target(db=db, interaction=interaction)
        return target, recordings.next_number(db=db, interaction_id=interaction_id)

    target, number = await _in_session(request, prepare)
    started_at = utcnow()
    name = recording_name(target.call_id, number, started_at)
    try:
        await recorder.mix_monitor(target.channel, asterisk_file(settings.asterisk_recordings_path, name))
    except RecordingRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"not recorded: {exc}") from None
    except RecordingUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"not recorded: {exc}") from None
    start = RecordingStart(
        file=name,
        number=number,
        started_at=started_at,
        policy="on_demand",
        requested_by=who.name,
        source="mixmonitor",
        interaction_id=interaction_id,
        queue=target.queue,
    )

    def note(db: Session) -> RecordingRead:
        touchpoint = recordings.note_started(db=db, start=start)
        found = recordings.recording_read(touchpoint)
        recordings.record_start_request(db=db, actor=who.name, interaction_id=interaction_id, recording=found)
        return found

    return await _in_session(request, note)
