"""Time for the campaign runner and the simulated network: the real clock, or a faster one.

A campaign on the simulated network can run many times faster than real time (a demo of a shift in
minutes, a test of a campaign in a second): both the runner's waits (the 2-second abandonment window,
ring time-outs, retry delays) and the network's ring and talk times go through the same `Clock`, so the
scale changes nothing but the speed.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ScaledClock:
    """Runs `speed` times faster than real time, starting at `start` (default: now)."""

    def __init__(self, speed: float, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start = start or datetime.now(UTC)
        if self._start.tzinfo is None:
            raise ValueError("start must carry a time zone")
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.monotonic() - self._origin) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)
