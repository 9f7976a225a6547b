"""Estimated wait time (EWT) of a caller in a queue, from the queue's live state (pure).

The model: every agent who can take the queue's calls is a server that becomes free at a known
moment (ready agents now; agents on a call when their call is expected to end plus the queue's
wrap-up; agents in wrap-up when it ends; agents being rung after a whole handle time) and, after
each call, again one average handle time (talk + wrap-up) later. The caller at position p is
answered when the p-th server frees up: the callers ahead take the first p - 1.

    2 agents ready, AHT 200 s, position 3 -> servers free at 0, 0; the 3rd caller waits 200 s

Paused agents are not counted (nobody knows when they come back). When no agent is logged in, or
every logged-in agent is paused, there is no estimate (`seconds` is None): the wait is unbounded.

It is deliberately simple: agents shared with other queues count fully here, and higher-priority
calls in those queues are not seen, so shared agents make the estimate optimistic.

`estimate` also says whether the IVR should offer overflow (callback, SMS/WhatsApp, voicemail):
no agent logged in, the queue full (a caller about to join when `max_length` calls already wait),
or the estimate above the queue's overflow threshold (`overflow_wait_seconds`, else `max_wait_seconds`:
a caller who would reach the max wait anyway is better offered the alternatives at once).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

OverflowReason = Literal["no_agents", "queue_full", "long_wait"]

DEFAULT_TALK_SECONDS = 180.0  # until the queue has handled calls in the window
DEFAULT_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class HandledCall:
    ended_at: datetime  # when wrap-up ended (or the call, with no wrap-up)
    talk_s: float
    wrap_up_s: float


@dataclass(frozen=True, slots=True)
class HandleTimes:
    talk_s: float
    wrap_up_s: float
    samples: int  # how many calls it comes from (0: the defaults)

    @property
    def handle_s(self) -> float:
        return self.talk_s + self.wrap_up_s


def recent_handle_times(
    handled: Iterable[HandledCall],
    now: datetime,
    *,
    window: timedelta = DEFAULT_WINDOW,
    default_talk_s: float = DEFAULT_TALK_SECONDS,
    default_wrap_up_s: float = 0.0,
) -> HandleTimes:
    """Average talk and wrap-up of the calls that ended within `window` before `now`."""
    recent = [h for h in handled if now - window <= h.ended_at <= now]
    if not recent:
        return HandleTimes(default_talk_s, default_wrap_up_s, 0)
    count = len(recent)
    return HandleTimes(sum(h.talk_s for h in recent) / count, sum(h.wrap_up_s for h in recent) / count, count)


def expected_free_in(
    *,
    handle: HandleTimes,
    talking_for_s: float | None = None,
    wrap_up_s: float = 0.0,
    wrap_up_left_s: float | None = None,
    ringing: bool = False,
) -> float:
    """Seconds until a busy agent is expected to be free.

    On a call for `talking_for_s`: the average talk left, then `wrap_up_s`. A call already longer
    than average is still expected to take a quarter of the average more, not to end this instant.
    In wrap-up: what is left of it. Being rung: a whole call (average talk, then `wrap_up_s`).
    """
    if wrap_up_left_s is not None:
        return max(0.0, wrap_up_left_s)
    if ringing:
        return handle.talk_s + wrap_up_s
    elapsed = talking_for_s or 0.0
    return max(handle.talk_s - elapsed, handle.talk_s / 4) + wrap_up_s


@dataclass(frozen=True, slots=True)
class QueueLoad:
    waiting: int  # calls waiting in the queue (not offered yet)
    position: int | None  # the asking call's 1-based place; None: a caller about to join (waiting + 1)
    logged_in: int  # agents who can take the queue's calls, in any logged-in state
    ready: int
    busy_free_in_s: Sequence[float]  # per busy agent (offered, on call, wrap-up): expected_free_in
    handle: HandleTimes
    max_length: int | None = None
    overflow_wait_s: float | None = None
    max_wait_s: float | None = None


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    position: int
    seconds: float | None  # None: unknown, unbounded (nobody serving)
    overflow: bool
    reason: OverflowReason | None

    @property
    def announce_minutes(self) -> int | None:
        """Whole minutes for the IVR to say, rounded up; None when there is no estimate."""
        if self.seconds is None:
            return None
        return int(-(-self.seconds // 60))


def estimate(load: QueueLoad) -> WaitEstimate:
    position = load.position if load.position is not None else load.waiting + 1
    if position < 1:
        raise ValueError("a position in the queue starts at 1")
    joining = load.position is None
    if load.logged_in == 0:
        return WaitEstimate(position, None, True, "no_agents")
    if joining and load.max_length is not None and load.waiting >= load.max_length:
        seconds = _seconds(position, load)
        return WaitEstimate(position, seconds, True, "queue_full")
    seconds = _seconds(position, load)
    if seconds is None:  # logged in, but all paused
        return WaitEstimate(position, None, True, "no_agents")
    threshold = load.overflow_wait_s if load.overflow_wait_s is not None else load.max_wait_s
    if threshold is not None and seconds > threshold:
        return WaitEstimate(position, seconds, True, "long_wait")
    return WaitEstimate(position, seconds, False, None)


def _seconds(position: int, load: QueueLoad) -> float | None:
    free_at = [0.0] * load.ready + [max(0.0, s) for s in load.busy_free_in_s]
    if not free_at:
        return None
    handle = max(0.0, load.handle.handle_s)
    heapq.heapify(free_at)
    moment = 0.0
    for _ in range(position):
        moment = heapq.heappop(free_at)
        heapq.heappush(free_at, moment + handle)
    return moment
