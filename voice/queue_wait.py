"""What a voice port's wait in one of Centralita's own queues is, whatever carries the call: the state
both the FastAGI and the ARI port keep, the progress they report to the runner, and how the wait ends
(the call leaves the queue, or its agent goes to wrap-up)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from routing.ivr_queues import CallLine, IvrQueues
from routing.live_queues import InboundCall, Joined, Refused
from routing.recording_calls import QueuePlan
from voice.ivr.voice_port import ActionNotDone, CallerGone, QueueContext, QueueProgress
from voice.prompts import PromptAudio

logger = logging.getLogger(__name__)


def inbound_call(
    call_id: str, caller: str | None, queue: str, priority: int, skills: list[str], context: QueueContext
) -> InboundCall:
    """The call as the ACD takes it: who the customer is and what the IVR collected, for the screen pop."""
    return InboundCall(
        call_id=call_id,
        queue=queue,
        caller=caller,
        customer_id=context.customer_id,
        priority=priority,
        skills=tuple(skills),
        context=dict(context.collected),
        interaction_id=context.interaction_id,
    )


async def join_queue(queues: IvrQueues, call: InboundCall) -> Joined:
    """The call joins the live ACD (preferred to the agent of the customer's open case, raised by the
    queue's open-case boost); ActionNotDone when the queue refuses it (full, nobody logged in...)."""
    joined = await queues.join(call)
    if isinstance(joined, Refused):
        raise ActionNotDone(f"queue {call.queue}: {joined.reason} ({joined.detail})")
    logger.info(
        "call %s joined queue %s at position %d (about %s s)",
        call.call_id,
        call.queue,
        joined.position,
        joined.estimate.seconds,
    )
    return joined


async def recording_notice(
    play: Callable[[PromptAudio], Awaitable[Any]],
    queues: IvrQueues,
    queue: str,
    language: str,
    context: QueueContext,
    call_id: str,
) -> QueuePlan | None:
    """The queue's recording plan, after the caller heard the notice it needs; None: no recording."""
    if queues.recording is None:
        return None
    plan = await queues.recording.plan(queue, language)
    if plan.consent is None:
        return plan
    try:
        await play(plan.consent)
    except CallerGone:
        if context.progress is not None:  # hung up on the way into the queue: abandoned there
            context.progress(QueueProgress("left", queue, 0.0, result="caller hung up"))
        raise
    except ActionNotDone as exc:  # an untold caller is not recorded
        logger.warning("call %s: recording notice not played (%s): not recorded", call_id, exc)
        return None
    return plan


class QueueWait:
    def __init__(self, queues: IvrQueues, line: CallLine, call: InboundCall, context: QueueContext) -> None:
        self.queues = queues
        self.line = line
        self.call = call
        self.context = context
        self.started = time.monotonic()
        self.connected: str | None = None  # the agent who answered, once one has
        self.joined: Joined | None = None  # how the ACD took the call (its priority), once it did

    def report(self, progress: QueueProgress) -> None:
        joined = self.joined
        if joined is not None:
            progress = replace(
                progress, priority=joined.priority, open_case_raised_from=joined.open_case_raised_from
            )
        if self.context.progress is not None:
            try:
                self.context.progress(progress)
            except Exception:  # the timeline's trouble must not drop the caller
                logger.exception("call %s: queue progress not reported", self.call.call_id)

    def waited(self) -> float:
        return time.monotonic() - self.started

    def caller_hung_up(self) -> None:
        if self.connected is None:
            self.report(QueueProgress("left", self.call.queue, self.waited(), result="caller hung up"))

    def end(self, *pending: asyncio.Future[Any] | None) -> None:
        """Cancel what the wait still awaits; then the call leaves the queue (hung up, lost, refused, out
        of time: an offer is withdrawn; after max wait it has left already) or its agent goes to wrap-up
        (already done when the conversation ended normally)."""
        for task in pending:
            if task is not None and not task.done():
                task.cancel()
        if self.connected is None:
            self.queues.live.leave(self.call.call_id)
        else:
            self.queues.live.call_ended(self.call.call_id)
