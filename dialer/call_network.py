"""The call network port: what the campaign runner needs from whatever places its calls.

Two networks implement it: `dialer.ari_network.AriCallNetwork` (real calls: ARI originate on Asterisk's
trunks) and `dialer.simulated_network.SimulatedCallNetwork` (answers, busies, no-answers and answering
machines drawn with the timings of the pacing benchmark), so that a campaign can be demonstrated and
tested end to end without a PBX.

A placed call reports what happens to it through the `CallObserver` given to `place`, in this order:
`answered` (at most once), then `greeting_ended` with the answering-machine verdict (only for answered
calls; with AMD off, at once with `unsure`), then `ended` (exactly once, whatever happened). The runner
answers `answered`/`greeting_ended` by `connect(call, agent)` (bridge to the agent reserved for it),
`play_and_hang_up(call, message)` (the abandoned-call message, or a message left on a machine) or
`hang_up(call)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class AmdVerdict(StrEnum):
    HUMAN = "human"
    MACHINE = "machine"
    UNSURE = "unsure"  # also: AMD off


class CallEnd(StrEnum):
    """How a placed call ended, as the network saw it."""

    COMPLETED = "completed"  # answered and later hung up (by either side)
    NO_ANSWER = "no_answer"  # rang until the ring timeout
    BUSY = "busy"
    FAILED = "failed"  # congestion, invalid number, unreachable trunk


@dataclass(frozen=True, slots=True)
class CallRequest:
    """One call to place."""

    attempt_id: int  # the dial attempt row: names the call in the network's events
    phone: str  # E.164
    caller_id: str
    ring_timeout_s: int  # at least 15: the compliance rules refuse less
    amd: bool
    campaign_id: int


@dataclass(frozen=True, slots=True)
class PlacedCall:
    attempt_id: int
    call_ref: str  # the network's id for the call (ARI channel id)


class CallObserver(Protocol):
    async def answered(self, call: PlacedCall, at: datetime) -> None: ...

    async def greeting_ended(self, call: PlacedCall, at: datetime, verdict: AmdVerdict) -> None: ...

    async def ended(self, call: PlacedCall, at: datetime, how: CallEnd, cause: str) -> None: ...


class NetworkUnavailable(Exception):
    """The network cannot place calls now (the PBX is unreachable): the campaign pauses itself."""


class CallNetwork(Protocol):
    async def place(self, request: CallRequest, observer: CallObserver) -> PlacedCall:
        """Start the call; returns once the network took it (ringing). Raises NetworkUnavailable."""
        ...

    async def connect(self, call: PlacedCall, agent: str) -> None:
        """Bridge the answered call to `agent` (an agent's endpoint, e.g. PJSIP/1001)."""
        ...

    async def play_and_hang_up(self, call: PlacedCall, message: str) -> None:
        """Play `message` (a prompt file name, see voice.prompts) and hang up."""
        ...

    async def hang_up(self, call: PlacedCall) -> None: ...
