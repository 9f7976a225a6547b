"""Reconnect delays: exponential back-off with jitter, pure (the random source is passed in).

    Backoff().delays(random.random)  ->  0.25-0.5, 0.5-1, 1-2, 2-4, ... 15-30, 15-30, ... seconds

The jitter spreads the reconnects of many clients after an Asterisk restart; it only ever shortens a
delay (by up to `jitter` of it), so `maximum` is a true upper bound. Used by the ARI event stream and the
AMI client alike, with `pause`, the wait between attempts that a stop cuts short.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float = 0.5  # seconds before the first retry (before jitter)
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.5  # 0: no jitter; 0.5: each delay is drawn from [delay/2, delay]

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.maximum) or self.factor < 1 or not (0 <= self.jitter <= 1):
            raise ValueError(f"not a usable back-off: {self}")

    def delay(self, attempt: int, random: float) -> float:
        """The delay before retry number `attempt` (0 = the first), for a `random` draw in [0, 1)."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        # Capped before it can overflow: factor ** attempt grows without bound, the cap does not.
        base = self.initial
        for _ in range(attempt):
            base *= self.factor
            if base >= self.maximum:
                break
        base = min(base, self.maximum)
        return base * (1.0 - self.jitter * random)

    def delays(self, random: Callable[[], float]) -> Iterator[float]:
        """An endless schedule of delays; start a new one after each successful connection."""
        attempt = 0
        while True:
            yield self.delay(attempt, random())
            attempt += 1


async def pause(sleep: Callable[[float], Awaitable[None]], seconds: float, stop: asyncio.Event) -> None:
    """Waits `seconds` through `sleep` (injected, so tests need not wait), or until `stop` is set."""
    sleeper = asyncio.ensure_future(sleep(seconds))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sleeper, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
