"""The callback desk: gives due callbacks their virtual positions in the live ACD, and makes the calls.

One per process that dials (the one running the dialer: `Container.dialer` hands it the network).
It runs on the ACD's event loop; the database work goes to one thread of its own, in order.

**When callbacks join the queue: a due-time poll over the callbacks table**, not an APScheduler job
per callback. The table already holds what is due and when (`next_attempt_at`, indexed with
`status`), so it is the one durable schedule: nothing to keep in step with a job store (a cancel
racing a job that fires, a job left behind by a crash), no module-level global for stored jobs to
reach the desk, and the same read that joins scheduled callbacks at their time also rejoins, after a
restart, the "now" callbacks that were waiting in the memory of the process that died. The desk
reads again when a callback is booked or cancelled (bus events), at the next due time, and at least
every `poll_seconds` (changes made by other processes).

**A virtual position** is `callback-<id>` in the callback's queue, at its `place_at` and priority.
When the ACD reserves an agent for it, `dial` (the `VirtualCaller`):
1. checks do-not-call, consent and hours again and records the outbound call (`begin_attempt`);
2. places the call on the `CallNetwork` (the dialer's port: ARI, or the simulated network);
3. answered: bridges the customer to the reserved agent (`connect`) -> "connected"; the end of the
   call completes the callback and starts the agent's wrap-up (`LiveQueues.call_ended`);
4. busy, no answer, failed, the network down: records the attempt and its retry -> "not_reached"
   (the ACD releases the agent); the customer answered but the agent's phone did not ->
   "agent_missed" (the ACD pauses the agent, as for a missed inbound call).
Leaving the queue while the customer's phone rings (a cancel) hangs that call up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from core.db import unit_of_work, utcnow
from core.events import Event, EventBus, Subscription
from dialer.call_network import (
    AmdVerdict,
    CallEnd,
    CallNetwork,
    CallRequest,
    NetworkUnavailable,
    PlacedCall,
)
from routing import callbacks as service
from routing.callback_rules import CallbackRules
from routing.live_queues import CallOffer, InboundCall, Joined, LiveQueues, VirtualResult

log = logging.getLogger(__name__)

T = TypeVar("T")

ENTRY_PREFIX = "callback-"
ANSWER_GRACE_S = 10.0  # on top of the ring time-out, before a network that never reports is given up


def entry_id(callback_id: int) -> str:
    return f"{ENTRY_PREFIX}{callback_id}"


def callback_id_of(entry: str) -> int | None:
    tail = entry.removeprefix(ENTRY_PREFIX)
    return int(tail) if entry.startswith(ENTRY_PREFIX) and tail.isdigit() else None


class CallbackDesk:
    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        bus: EventBus,
        live: LiveQueues,
        rules: CallbackRules,
        network: CallNetwork | None = None,
        clock: Callable[[], datetime] = utcnow,
        poll_seconds: float = 15.0,
        agent_ring_seconds: float = 15.0,
    ) -> None:
        self.rules = rules
        self.network = network
        self.live = live
        self.poll_seconds = poll_seconds
        self.agent_ring_seconds = agent_ring_seconds
        self._sessions = session_factory
        self._bus = bus
        self._clock = clock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="callback-desk")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._syncing: asyncio.Task[None] | None = None
        self._again = False
        self._calls: set[str] = set()  # entries whose call this desk is making (dialing or connected)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._subscriptions: list[Subscription] = []

    @property
    def dialing(self) -> bool:
        """Whether this desk joins and dials callbacks (started, with a network)."""
        return self._loop is not None

    # --- life -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """On the ACD's loop. Customer erasures and merges are followed in every process; callbacks are
        dialed only where there is a network (the process that runs the dialer)."""
        self._subscriptions = [
            self._bus.subscribe("customer.erased", self._on_erased),
            self._bus.subscribe("customer.merged", self._on_merged),
        ]
        if self.network is None:
            log.info("callbacks are booked but not dialed in this process: no call network")
            return
        self._loop = asyncio.get_running_loop()
        recovered = await self._db(lambda db: service.recover_interrupted(db=db, now=self._clock()))
        if recovered:
            log.warning("%d callback(s) interrupted by a restart: waiting again or completed", recovered)
        self._subscriptions += [
            self._bus.subscribe("callback.requested", self._on_change),
            self._bus.subscribe("callback.cancelled", self._on_cancelled),
        ]
        await self.sync()

    async def stop(self) -> None:
        """Stops joining callbacks; calls in progress are left to finish (or to the network's close)."""
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions = []
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._syncing is not None:
            self._syncing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncing
        self._loop = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Started for as long as the block runs (the API server's lifespan)."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    def use_network(self, network: CallNetwork) -> None:
        self.network = network

    # --- the schedule ---------------------------------------------------------------------------------

    async def sync(self) -> None:
        """Reads what is due and gives each waiting callback its virtual position (once)."""
        if self._loop is None:
            return
        due, upcoming = await self._db(lambda db: service.claim_due(db=db, now=self._clock()))
        wanted = {entry_id(callback.id): callback for callback in due}
        present = self.live.virtual_ids()
        for stray in present - wanted.keys() - self._calls:
            self.live.leave(stray)  # cancelled, or finished elsewhere
        for entry, callback in wanted.items():
            if entry in present:
                continue
            joined = self.live.join_virtual(
                InboundCall(
                    call_id=entry,
                    queue=callback.queue,
                    caller=callback.phone,
                    customer_id=callback.customer_id,
                    priority=callback.priority,
                    context={"callback_id": callback.id, "case_id": callback.case_id} | callback.context,
                    interaction_id=callback.interaction_id,
                ),
                entered_at=callback.place_at,
                caller=_CallbackLine(self, callback.id),
            )
            if not isinstance(joined, Joined):
                log.warning(
                    "callback %s cannot wait in queue %r: %s", callback.id, callback.queue, joined.detail
                )
        self._arm(upcoming)

    def wake(self) -> None:
        """Read again soon (from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._run_sync)

    def _run_sync(self) -> None:
        if self._syncing is not None and not self._syncing.done():
            self._again = True  # one more read once this one is over: it may have missed the change
            return
        self._again = False
        self._syncing = asyncio.ensure_future(self._guarded_sync())

    async def _guarded_sync(self) -> None:
        try:
            await self.sync()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reading the due callbacks failed; trying again in %ss", self.poll_seconds)
            self._arm(None)
        if self._again:
            self._again = False
            self._syncing = asyncio.ensure_future(self._guarded_sync())

    def _arm(self, upcoming: datetime | None) -> None:
        loop = self._loop
        if loop is None:
            return
        delay = self.poll_seconds
        if upcoming is not None:
            delay = min(delay, max(0.0, (upcoming - self._clock()).total_seconds()))
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(delay + 0.01, self._run_sync)

    # --- events (any thread) --------------------------------------------------------------------------

    def _on_change(self, _event: Event) -> None:
        self.wake()

    def _on_cancelled(self, event: Event) -> None:
        entry = entry_id(int(event.payload["callback_id"]))
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.live.leave, entry)  # hangs up a call that is ringing

    def _on_erased(self, event: Event) -> None:
        customer_id = int(event.payload["customer_id"])
        self._thread.submit(self._write, lambda db: service.forget_customer(db=db, customer_id=customer_id))
        self.wake()

    def _on_merged(self, event: Event) -> None:
        source, target = int(event.payload["source_id"]), int(event.payload["customer_id"])
        self._thread.submit(
            self._write, lambda db: service.move_customer(db=db, source_id=source, target_id=target)
        )

    # --- the calls ------------------------------------------------------------------------------------

    async def dial(self, callback_id: int, offer: CallOffer) -> VirtualResult:
        network = self.network
        if network is None:
            return "not_reached"
        entry = offer.call.call_id
        rules = self.rules
        begin = asyncio.ensure_future(
            self._db(
                lambda db: service.begin_attempt(
                    db=db, callback_id=callback_id, agent=offer.agent_name, now=self._clock(), rules=rules
                )
            )
        )
        try:
            attempt = await asyncio.shield(begin)
        except asyncio.CancelledError:
            # Left the queue while the attempt was being recorded: record it as not made.
            begin.add_done_callback(self._undo_attempt)
            raise
        if attempt is None:
            return "not_reached"
        self._calls.add(entry)
        observer = _Observer()
        request = CallRequest(
            attempt_id=attempt.interaction_id,
            phone=attempt.phone,
            caller_id=rules.caller_id,
            ring_timeout_s=rules.ring_seconds,
            amd=False,
            campaign_id=0,
        )
        try:
            placed = await network.place(request, observer)
        except NetworkUnavailable as exc:
            await self._failed(attempt, "failed", f"network unavailable: {exc}")
            self._calls.discard(entry)
            return "not_reached"
        connected = False
        try:
            answered = await self._answered(observer, rules.ring_seconds + ANSWER_GRACE_S)
            if not answered:
                how, cause = observer.end or (CallEnd.NO_ANSWER, "no report from the network")
                if observer.end is None:
                    await _hang_up(network, placed)
                # Answered and gone at once: the customer hung up before anyone spoke.
                result = "hung_up" if observer.picked_up.is_set() else how.value
                await self._failed(attempt, result, cause)
                return "not_reached"
            try:
                await network.connect(placed, offer.endpoint)
            except Exception as exc:
                await _hang_up(network, placed)
                if observer.gone.is_set():  # the customer hung up before the agent came
                    await self._failed(attempt, "hung_up", f"the customer hung up: {exc}")
                    return "not_reached"
                await self._failed(attempt, "agent_missed", f"{offer.endpoint} did not answer: {exc}")
                return "agent_missed"
            now = self._clock()
            await self._db(
                lambda db: service.attempt_connected(
                    db=db, attempt=attempt, agent=offer.agent_name, endpoint=offer.endpoint, now=now
                )
            )
            connected = True
            self._spawn(self._until_ended(entry, attempt, observer), f"callback {callback_id} call")
            return "connected"
        except asyncio.CancelledError:
            # The callback left the queue while the customer's phone rang (cancelled, or a reset).
            await asyncio.shield(self._abandon(network, placed, attempt))
            raise
        finally:
            if not connected:
                self._calls.discard(entry)

    def _undo_attempt(self, begun: asyncio.Future[service.Attempt | None]) -> None:
        if begun.cancelled() or begun.exception() is not None:
            return
        attempt = begun.result()
        if attempt is not None:
            self._spawn(self._failed(attempt, "cancelled", "the callback left the queue"), "undo attempt")

    async def _answered(self, observer: _Observer, timeout: float) -> bool:
        waiters = [
            asyncio.ensure_future(observer.picked_up.wait()),
            asyncio.ensure_future(observer.gone.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return observer.picked_up.is_set() and not observer.gone.is_set()

    async def _until_ended(self, entry: str, attempt: service.Attempt, observer: _Observer) -> None:
        try:
            await observer.gone.wait()
            _, cause = observer.end or (CallEnd.COMPLETED, "")
            await self._db(
                lambda db: service.attempt_ended(db=db, attempt=attempt, cause=cause, now=self._clock())
            )
        finally:
            self._calls.discard(entry)
            self.live.call_ended(entry)  # the agent's wrap-up

    async def _failed(self, attempt: service.Attempt, result: str, cause: str) -> None:
        rules = self.rules
        try:
            await self._db(
                lambda db: service.attempt_failed(
                    db=db, attempt=attempt, result=result, cause=cause, now=self._clock(), rules=rules
                )
            )
        except Exception:
            log.exception("callback %s: could not record attempt %s", attempt.callback_id, attempt.attempt)
        self.wake()  # a callback due again at once (e.g. after an interruption) need not wait a poll

    async def _abandon(self, network: CallNetwork, placed: PlacedCall, attempt: service.Attempt) -> None:
        await _hang_up(network, placed)
        await self._failed(attempt, "cancelled", "the callback left the queue while the phone rang")

    # --- plumbing -------------------------------------------------------------------------------------

    async def _db(self, work: Callable[[Session], T]) -> T:
        return await asyncio.wrap_future(self._thread.submit(self._write, work))

    def _write(self, work: Callable[[Session], T]) -> T:
        try:
            with unit_of_work(self._sessions) as db:
                return work(db)
        except Exception:
            log.exception("a callback write failed")
            raise

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _CallbackLine:
    """The `VirtualCaller` of one callback's position."""

    def __init__(self, desk: CallbackDesk, callback_id: int) -> None:
        self._desk = desk
        self._callback_id = callback_id

    @property
    def ring_timeout_s(self) -> float:
        return self._desk.rules.ring_seconds + ANSWER_GRACE_S + self._desk.agent_ring_seconds

    async def dial(self, offer: CallOffer) -> VirtualResult:
        return await self._desk.dial(self._callback_id, offer)


class _Observer:
    """What the network reports of one callback call (`CallObserver`), as events the desk waits on."""

    def __init__(self) -> None:
        self.picked_up = asyncio.Event()
        self.gone = asyncio.Event()
        self.end: tuple[CallEnd, str] | None = None

    async def answered(self, call: PlacedCall, at: datetime) -> None:
        self.picked_up.set()

    async def greeting_ended(self, call: PlacedCall, at: datetime, verdict: AmdVerdict) -> None:
        return None  # no answering-machine detection on callbacks: the customer expects the call

    async def ended(self, call: PlacedCall, at: datetime, how: CallEnd, cause: str) -> None:
        self.end = (how, cause)
        self.gone.set()


async def _hang_up(network: CallNetwork, placed: PlacedCall) -> None:
    try:
        await network.hang_up(placed)
    except Exception as exc:  # already gone: nothing to hang up
        log.debug("hanging up %s: %s", placed.call_ref, exc)
