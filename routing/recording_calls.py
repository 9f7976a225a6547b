"""Recording on the call's path: what the FastAGI queue path and the dialer's ARI calls ask before and
while they connect a caller to an agent.

- `QueueRecording` (the IVR's queues, `voice.agi.ivr_port` and `voice.ari.ivr_port`): `plan(queue,
  language)` says the queue's policy and the notice the caller hears before joining; `target(call_id, n)`
  names the file MixMonitor writes (FastAGI); `record_bridge(...)` records the caller's bridge with the
  agent (ARI, with `bridges`); `started(...)` puts the recording on the call's timeline, in the
  background.
- `CampaignRecording` (`dialer.ari_network.AriCallNetwork`'s recorder): once a campaign call is bridged
  to its agent and the campaign records, the notice is played to the bridge (the callee and the agent
  hear it) and, for `always`, the bridge is recorded from that moment, the notice included: the
  recording itself shows that the callee was told. The call's interaction is written by the campaign
  runner when the call ends, so the recording reaches the timeline then (`ended`).

Both read policies and write touchpoints through `RecordingNotes` (the database, in a thread pool of
its own; `InMemoryRecordingNotes` is the fake). A failure here is logged and never drops a call: a
caller is better connected unrecorded than not connected.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db import unit_of_work, utcnow
from core.errors import Conflict
from dialer.campaign_rules import CampaignSettings
from dialer.models import Campaign
from routing.models import Queue
from routing.recording_asterisk import BridgeRecorder, RecordingRefused, RecordingUnavailable
from routing.recording_policy import (
    POLICIES,
    Policy,
    announces,
    ari_name,
    asterisk_file,
    recording_name,
    records_from_start,
)
from routing.recordings import POLICY_ACTOR, RecordingStart, note_started
from voice.ivr.recording_consent import consent_text
from voice.prompts import PromptAudio, prompt_name

log = logging.getLogger(__name__)
WRITE_ATTEMPTS = 6  # a recording's step racing the call's other steps for a sequence number
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CampaignPolicy:
    campaign: str
    policy: Policy
    notice: PromptAudio | None  # None: the campaign never records


class RecordingNotes(Protocol):
    async def queue_policy(self, queue: str) -> Policy:
        """The queue's policy; `never` for a queue Centralita does not have."""
        ...

    async def campaign_policy(self, campaign_id: int) -> CampaignPolicy | None:
        """The campaign's policy and notice; None for a campaign that does not exist (a callback's)."""
        ...

    async def started(self, start: RecordingStart) -> None:
        """Put the recording on its call's timeline."""
        ...


def _policy(value: object) -> Policy:
    return next((policy for policy in POLICIES if policy == value), "never")


def _campaign_policy(row: Campaign) -> CampaignPolicy:
    settings = CampaignSettings.model_validate(row.settings)
    text = settings.recording_notice_text()
    language = settings.prompt_language()
    notice = PromptAudio(prompt_name(language, text), text, language) if text is not None else None
    return CampaignPolicy(row.name, settings.recording, notice)


class TimelineRecordingNotes:
    """`RecordingNotes` on the database: reads through the autocommit `read_session_factory`, writes
    each in its own unit of work, all in a thread pool of its own (the call's loop never waits on it)."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        read_session_factory: sessionmaker[Session],
        threads: int = 2,
    ) -> None:
        self._writes = session_factory
        self._reads = read_session_factory
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="recordings")

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    async def _blocking(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def queue_policy(self, queue: str) -> Policy:
        def read() -> Policy:
            with self._reads() as db:
                return _policy(db.scalar(select(Queue.recording).where(Queue.name == queue)))

        return await self._blocking(read)

    async def campaign_policy(self, campaign_id: int) -> CampaignPolicy | None:
        def read() -> CampaignPolicy | None:
            with self._reads() as db:
                row = db.get(Campaign, campaign_id)
                return _campaign_policy(row) if row is not None else None

        return await self._blocking(read)

    async def started(self, start: RecordingStart) -> None:
        def write() -> None:
            with unit_of_work(self._writes) as db:
                note_started(db=db, start=start)

        # The call's own steps are written by its timeline task at the same moment (the agent answering):
        # a step that took the same sequence number is a Conflict, so try again, a little later each time.
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                await self._blocking(write)
                return
            except Conflict:
                if attempt == WRITE_ATTEMPTS:
                    raise
                await asyncio.sleep(0.02 * attempt)


@dataclass
class InMemoryRecordingNotes:
    """The fake: policies in dicts, recordings noted in a list; `failures` raise from `started`."""

    queues: dict[str, Policy] = field(default_factory=dict)
    campaigns: dict[int, CampaignPolicy] = field(default_factory=dict)
    notes: list[RecordingStart] = field(default_factory=list)
    failure: Exception | None = None

    async def queue_policy(self, queue: str) -> Policy:
        return self.queues.get(queue, "never")

    async def campaign_policy(self, campaign_id: int) -> CampaignPolicy | None:
        return self.campaigns.get(campaign_id)

    async def started(self, start: RecordingStart) -> None:
        if self.failure is not None:
            raise self.failure
        self.notes.append(start)


# --- the IVR's queues -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuePlan:
    """What a call joining a queue gets: the policy, and the notice to play first (None: no notice)."""

    queue: str
    policy: Policy
    consent: PromptAudio | None

    @property
    def records(self) -> bool:
        return records_from_start(self.policy)


@dataclass(frozen=True, slots=True)
class RecordingTarget:
    name: str  # relative (the timeline's)
    file: str  # as Asterisk writes it: MixMonitor's argument
    number: int


class QueueRecording:
    """The queue side of recording for the FastAGI port (see the module docstring)."""

    def __init__(
        self,
        notes: RecordingNotes,
        *,
        asterisk_path: str,
        clock: Callable[[], datetime] = utcnow,
        bridges: BridgeRecorder | None = None,
    ) -> None:
        self.notes = notes
        self.asterisk_path = asterisk_path
        self._clock = clock
        self._writes: set[asyncio.Task[None]] = set()
        self.bridges = bridges  # ARI's bridge recording (None: queue calls over ARI are not recorded)

    async def plan(self, queue: str, language: str) -> QueuePlan:
        try:
            policy = await self.notes.queue_policy(queue)
        except Exception:  # the database's trouble: nobody is recorded (and so nobody needs telling)
            log.exception("queue %s: recording policy not read; the call is not recorded", queue)
            policy = "never"
        consent = None
        if announces(policy):
            text = consent_text(language)
            consent = PromptAudio(prompt_name(language, text), text, language)
        return QueuePlan(queue, policy, consent)

    def target(self, call_id: str, number: int) -> RecordingTarget:
        name = recording_name(call_id, number, self._clock())
        return RecordingTarget(name, asterisk_file(self.asterisk_path, name), number)

    async def record_bridge(self, bridge_id: str, call_id: str, number: int) -> RecordingTarget | None:
        """ARI: record the bridge where the caller talks to the agent. None when it cannot be (no ARI
        recorder, a recordings path ARI cannot write under, Asterisk refused): the call goes on."""
        if self.bridges is None:
            return None
        name = recording_name(call_id, number, self._clock())
        ari = ari_name(self.asterisk_path, name)
        if ari is None:
            log.warning(
                "call %s: not recorded: ARI records only under /var/spool/asterisk/recording, and "
                "CENTRALITA_ASTERISK_RECORDINGS_PATH is %s",
                call_id,
                self.asterisk_path,
            )
            return None
        try:
            await self.bridges.record(bridge_id, ari, format="wav")
        except (RecordingRefused, RecordingUnavailable) as exc:
            log.warning("call %s: bridge %s not recorded: %s", call_id, bridge_id, exc)
            return None
        return RecordingTarget(name, ari, number)

    def started(
        self,
        target: RecordingTarget,
        *,
        plan: QueuePlan,
        call_id: str,
        interaction_id: int | None,
        source: str = "mixmonitor",
    ) -> None:
        """The agent answered with the recording running: it goes on the timeline (a task)."""
        start = RecordingStart(
            file=target.name,
            number=target.number,
            started_at=self._clock(),
            policy=plan.policy,
            requested_by=POLICY_ACTOR,
            source=source,
            interaction_id=interaction_id,
            call_id=call_id,
            queue=plan.queue,
        )
        task = asyncio.get_running_loop().create_task(self._note(start), name=f"recording of {call_id}")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _note(self, start: RecordingStart) -> None:
        try:
            await self.notes.started(start)
        except Exception:
            log.exception("call %s: recording %s not put on the timeline", start.call_id, start.file)

    async def drain(self, timeout: float | None = None) -> None:
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=timeout)


# --- campaign calls over ARI ------------------------------------------------------------------------


@dataclass
class _CampaignCall:
    start: RecordingStart | None = None


class CampaignRecording:
    """`dialer.ari_network.CallRecorder`: notice and recording of a campaign call's bridge.

    A campaign's policy is read once and kept `cache_seconds` (a changed campaign is heard within a
    minute); the notice plays on every call the campaign may record, the recording runs for `always`.
    `on_demand` campaign calls are announced but an agent cannot start one yet (their interaction
    exists only once the call has ended)."""

    def __init__(
        self,
        notes: RecordingNotes,
        bridges: BridgeRecorder,
        *,
        asterisk_path: str,
        clock: Callable[[], datetime] = utcnow,
        cache_seconds: float = 60.0,
    ) -> None:
        self.notes = notes
        self.bridges = bridges
        self.asterisk_path = asterisk_path
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._policies: dict[int, tuple[float, CampaignPolicy | None]] = {}
        self._calls: dict[str, _CampaignCall] = {}
        if ari_name(asterisk_path, "2000/01/01/x-1.wav") is None:
            log.warning(
                "campaign calls are not recorded: ARI records only under %s, and "
                "CENTRALITA_ASTERISK_RECORDINGS_PATH is %s (set it to a directory inside it)",
                "/var/spool/asterisk/recording",
                asterisk_path,
            )

    async def _policy(self, campaign_id: int) -> CampaignPolicy | None:
        now = time.monotonic()
        cached = self._policies.get(campaign_id)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        policy = await self.notes.campaign_policy(campaign_id)
        self._policies[campaign_id] = (now, policy)
        return policy

    async def bridged(self, *, campaign_id: int, attempt_id: int, call_ref: str, bridge_id: str) -> None:
        """The callee and the agent are in `bridge_id`: announce, and record if the campaign always does."""
        policy = await self._policy(campaign_id)
        if policy is None or policy.notice is None:
            return
        try:
            await self.bridges.play(
                bridge_id, f"sound:{policy.notice.file}", playback_id=f"{bridge_id}-notice"
            )
        except (RecordingRefused, RecordingUnavailable) as exc:
            # Untold, the callee must not be recorded.
            log.warning("attempt %s: recording notice not played (%s): not recorded", attempt_id, exc)
            return
        if not records_from_start(policy.policy):
            return
        name = recording_name(call_ref, 1, self._clock())
        ari = ari_name(self.asterisk_path, name)
        if ari is None:
            return
        try:
            await self.bridges.record(bridge_id, ari, format="wav")
        except (RecordingRefused, RecordingUnavailable) as exc:
            log.warning("attempt %s: bridge not recorded: %s", attempt_id, exc)
            return
        self._calls[call_ref] = _CampaignCall(
            RecordingStart(
                file=name,
                number=1,
                started_at=self._clock(),
                policy=policy.policy,
                requested_by=POLICY_ACTOR,
                source="ari_bridge",
                attempt_id=attempt_id,
                campaign=policy.campaign[:64],
            )
        )

    async def ended(self, *, attempt_id: int, call_ref: str) -> None:
        """The runner has written the call's interaction: the recording goes on it."""
        call = self._calls.pop(call_ref, None)
        if call is None or call.start is None:
            return
        try:
            await self.notes.started(call.start)
        except Exception:
            log.exception("attempt %s: recording %s not put on the timeline", attempt_id, call.start.file)
