"""The voice port: the few things the IVR runner needs from a phone call, whatever carries it.

`voice.agi.ivr_port.AgiVoicePort` implements it over FastAGI; an ARI adapter implements the same methods.
`FakeVoicePort` (below) is a scripted caller for tests of the code above the port.

Every method raises, besides what it documents:
- `CallerGone` when the caller has hung up (or hangs up during the command): stop talking to the call;
  `CallLost` (a kind of CallerGone) when the link to the call broke instead (time-out, garbage).
- `ActionNotDone` when the command ran but did not do its job (a prompt file that does not exist, a queue
  that refuses the call, a busy transfer target). The call is still up; the flow decides what follows.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from voice.prompts import PromptAudio

DTMF_KEYS = "0123456789*#"


class VoicePortError(Exception):
    """Base of what a voice port raises on purpose."""


class CallerGone(VoicePortError):
    """The caller hung up: no further command can reach them."""


class CallLost(CallerGone):
    """The link to the call broke (no reply in time, a protocol error): no further command can be sent."""


class ActionNotDone(VoicePortError):
    """The command ran but failed; `str()` says why, in words fit for a log and the timeline."""


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What is known of a call when it reaches the IVR."""

    call_id: str  # names the call in logs and on the timeline (Asterisk: the linkedid)
    ref_kind: str  # core.timeline.schemas.RefKind value of `call_id`, e.g. "asterisk_linkedid"
    caller: str | None  # caller id number as the network gave it; None when withheld or unknown
    called: str | None  # the number dialled (DNID / extension), if known
    channel: str = ""  # e.g. "PJSIP/trunk-00000012"; for logs and the interaction's attributes
    flow: str = ""  # the flow the call asked for


@dataclass(frozen=True, slots=True)
class QueueProgress:
    """What happened to a call in one of Centralita's own queues, as the port tells the runner:
    `agent_connected` (an agent answered) and `left` (the call left the queue: `result` says how)."""

    what: Literal["agent_connected", "left"]
    queue: str
    waited_s: float
    agent: str | None = None
    result: str | None = None  # left: "answered", "max_wait", "caller hung up", ...
    priority: int | None = None  # the call's priority in the queue, once it joined
    open_case_raised_from: int | None = None  # the IVR's priority, when an open case raised it


@dataclass(frozen=True, slots=True)
class QueueContext:
    """What the IVR hands a queue with the call: who the customer is and what the IVR collected (for the
    agent's screen pop), and where to report what happens in the queue (for the call's timeline)."""

    customer_id: int | None = None
    interaction_id: int | None = None
    collected: Mapping[str, str] = field(default_factory=dict)  # flow, node, language, variables
    progress: Callable[[QueueProgress], None] | None = None


@dataclass(frozen=True, slots=True)
class Question:
    """A question put to the caller by voice: the prompts (the caller may interrupt them by speaking or
    by pressing a key), then listening for an answer said with one of `phrases` or keyed."""

    prompts: tuple[PromptAudio, ...]
    phrases: Mapping[str, Sequence[str]]  # answer key -> what it may be said with
    language: str
    max_digits: int
    terminator: str | None
    timeout_ms: int  # no speech and no key this long after the prompts: no input


@dataclass(frozen=True, slots=True)
class Heard:
    """What came of a Question. Keys win over speech; nothing at all is no input."""

    digits: str = ""
    spoke: bool = False  # the caller said something (even if nothing in the grammar)
    text: str = ""  # what was recognised in the grammar; "" when the caller spoke: a no-match
    confidence: float = 0.0
    engine: str = ""  # which recogniser, e.g. "pocketsphinx-en", for the timeline
    latency_ms: int | None = None  # from the end of the caller's speech to the final result


@runtime_checkable
class SpeechPort(Protocol):
    """A voice port that can also listen for speech (AudioSocket, a recording, a test's script)."""

    def hears_speech(self, language: str) -> bool:
        """Whether speech in `language` can be recognised on this call; if not, keys only."""
        ...

    async def ask(self, question: Question) -> Heard:
        """Play the question's prompts, stopping them when the caller speaks or keys, and listen."""
        ...


class VoicePort(Protocol):
    """One call's audio and keypad. Never called twice at once for the same call."""

    async def answer(self) -> None: ...

    async def play(self, prompt: PromptAudio, *, escape_digits: str = "") -> str | None:
        """Play a prompt to the end; a key in `escape_digits` ("" = none: no barge-in) stops it and is
        returned. None: it played to the end."""
        ...

    async def collect_digits(self, *, max_digits: int, timeout_ms: int, terminator: str | None) -> str:
        """Keys pressed until `max_digits`, the terminator (not returned), or `timeout_ms` without a key.
        "" when nothing was pressed."""
        ...

    async def enqueue(
        self,
        *,
        queue: str,
        priority: int,
        skills: list[str],
        language: str,
        context: QueueContext | None = None,
    ) -> None:
        """Hand the call to an agent queue. Returns (or raises CallerGone) once the call is done with the
        queue; raises ActionNotDone if the queue did not take the call (full, no agents, timed out)."""
        ...

    async def transfer(self, target: str) -> None:
        """Put the call through to `target` (an extension, a number, a dial string). Like `enqueue`: returns
        or raises CallerGone when the call is over; ActionNotDone if nobody answered."""
        ...

    async def record(self, *, mailbox: str, max_seconds: int, beep: bool) -> str:
        """Record the caller (voicemail) until silence, '#', `max_seconds` or a hang-up; returns the
        recording's name. A hang-up while recording keeps the recording: it returns normally."""
        ...

    async def hangup(self) -> None: ...


# --- the fake ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Barge:
    """The caller presses `digit` during the next prompt that can be interrupted."""

    digit: str


@dataclass(frozen=True, slots=True)
class HangUp:
    """The caller hangs up during whatever comes next."""


@dataclass(frozen=True, slots=True)
class Say:
    """The caller answers the next question by speech; `text` is what the recogniser makes of it
    ("" = it heard speech but nothing in the grammar: a no-match)."""

    text: str
    confidence: float = 0.9
    engine: str = "fake"
    latency_ms: int = 120


CallerMove = str | Barge | HangUp | Say  # a str answers the next collect_digits or question ("" = silence)

HandoffResult = Literal["answered", "refused"]  # answered: the conversation ends with a hang-up


@dataclass
class FakeVoicePort:
    """A scripted caller. `moves` are consumed in order by the commands able to take them:

    - `"123"` (or `""` for silence) answers the next `collect_digits`; prompts before it play to the end;
    - `Barge("1")` stops the next prompt that has escape digits, returning "1";
    - `HangUp()` makes the next command raise CallerGone, and every command after it;
    - `Say("billing")` answers the next question by speech (only with `speech_languages`: a port that
      hears speech in those languages asks questions with `ask`; a key move answers `ask` too).

    When the moves run out the caller hangs up. `hang_up_during=("play", 2)`: the caller hangs up during
    the second prompt. `missing` prompt files raise ActionNotDone; `queue`/`transfer_result` say how a
    handoff goes; `failures` maps a method name to an exception it raises (once). `calls` records every
    command, e.g. ("play", "centralita/es/…", "0123456789*#").
    """

    moves: list[CallerMove] = field(default_factory=list)
    hang_up_during: tuple[str, int] | None = None
    missing: set[str] = field(default_factory=set)
    queue: HandoffResult = "answered"
    transfer_result: HandoffResult = "answered"
    failures: dict[str, BaseException] = field(default_factory=dict)
    hold: asyncio.Event | None = None  # when set: enqueue/transfer wait for it (a long queue wait)
    speech_languages: frozenset[str] = frozenset()  # primary subtags; empty: keys only (no `ask`)
    calls: list[tuple[object, ...]] = field(default_factory=list)
    played: list[PromptAudio] = field(default_factory=list)
    queue_contexts: list[QueueContext | None] = field(default_factory=list)
    gone: bool = False
    _pending: deque[CallerMove] = field(init=False)

    def __post_init__(self) -> None:
        self._pending = deque(self.moves)

    def commands(self) -> list[str]:
        return [str(call[0]) for call in self.calls]

    # --- VoicePort --------------------------------------------------------------------------------

    async def answer(self) -> None:
        self._enter("answer")

    async def play(self, prompt: PromptAudio, *, escape_digits: str = "") -> str | None:
        self._enter("play", prompt.file, escape_digits)
        self.played.append(prompt)
        if prompt.file in self.missing:
            raise ActionNotDone(f"prompt {prompt.file} does not exist")
        next_move = self._pending[0] if self._pending else None
        if isinstance(next_move, Barge) and escape_digits and next_move.digit in escape_digits:
            self._pending.popleft()
            return next_move.digit
        return None

    async def collect_digits(self, *, max_digits: int, timeout_ms: int, terminator: str | None) -> str:
        self._enter("collect_digits", max_digits, timeout_ms, terminator)
        while self._pending and isinstance(self._pending[0], Barge):
            self._pending.popleft()  # a barge-in nobody could take: the caller gave up on it
        if not self._pending:
            self._hang_up()
        move = self._pending.popleft()
        if isinstance(move, HangUp):
            self._hang_up()
        assert isinstance(move, str)
        if terminator and terminator in move:
            move = move.split(terminator, 1)[0]
        return move[:max_digits]

    def hears_speech(self, language: str) -> bool:
        return language.split("-")[0] in self.speech_languages

    async def ask(self, question: Question) -> Heard:
        self._enter("ask", tuple(prompt.file for prompt in question.prompts), question.language)
        self.played.extend(question.prompts)
        if self._pending and isinstance(self._pending[0], Barge):
            return Heard(digits=self._take_barge().digit)
        if not self._pending:
            self._hang_up()
        move = self._pending.popleft()
        if isinstance(move, HangUp):
            self._hang_up()
        if isinstance(move, Say):
            return Heard(
                spoke=True,
                text=move.text,
                confidence=move.confidence if move.text else 0.0,
                engine=move.engine,
                latency_ms=move.latency_ms,
            )
        assert isinstance(move, str)
        if question.terminator and question.terminator in move:
            move = move.split(question.terminator, 1)[0]
        return Heard(digits=move[: question.max_digits])

    async def enqueue(
        self,
        *,
        queue: str,
        priority: int,
        skills: list[str],
        language: str,
        context: QueueContext | None = None,
    ) -> None:
        self.queue_contexts.append(context)
        self._enter("enqueue", queue, priority, tuple(skills), language)
        await self._hand_off(self.queue, f"queue {queue}: FULL")

    async def transfer(self, target: str) -> None:
        self._enter("transfer", target)
        await self._hand_off(self.transfer_result, f"transfer to {target}: BUSY")

    async def record(self, *, mailbox: str, max_seconds: int, beep: bool) -> str:
        self._enter("record", mailbox, max_seconds, beep)
        return f"recordings/{mailbox}-1"

    async def hangup(self) -> None:
        self._enter("hangup")
        self.gone = True

    # --- helpers ----------------------------------------------------------------------------------

    def _enter(self, name: str, *arguments: object) -> None:
        self.calls.append((name, *arguments))
        if self.gone:
            raise CallerGone(f"{name}: the caller is gone")
        if self.hang_up_during is not None:
            command, nth = self.hang_up_during
            if name == command and self.commands().count(command) == nth:
                self._hang_up()
        failure = self.failures.pop(name, None)
        if failure is not None:
            raise failure
        if self._pending and isinstance(self._pending[0], HangUp):
            self._hang_up()

    def _take_barge(self) -> Barge:
        move = self._pending.popleft()
        assert isinstance(move, Barge)
        return move

    def _hang_up(self) -> None:
        self.gone = True
        raise CallerGone("the caller hung up")

    async def _hand_off(self, result: HandoffResult, refusal: str) -> None:
        if self.hold is not None:
            await self.hold.wait()
        if result == "refused":
            raise ActionNotDone(refusal)
        # Answered: the conversation happens, then the caller hangs up, as Asterisk reports it.
        self._hang_up()
