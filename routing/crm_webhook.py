"""POSTs each screen pop to an external CRM (CENTRALITA_SCREEN_POP_WEBHOOK_URL), over httpx.

Off the call's path: the bus hands the event over and returns; a small thread pool of its own posts
it, retrying a failed post (a network error or a 5xx/429 answer) with doubling back-off, then logs
and drops it. A 4xx answer is not retried: sending the same body again would not change it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from core.events import Event, EventBus, Subscription
from routing.recorder import CALL_OFFERED

log = logging.getLogger(__name__)


class ScreenPopWebhook:
    def __init__(
        self,
        url: str,
        *,
        attempts: int = 4,
        first_backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self._attempts = attempts
        self._backoff = first_backoff_s
        self._sleep = sleep
        self._client = httpx.Client(timeout=timeout_s, transport=transport)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="screen-pop-webhook")
        self._subscription: Subscription | None = None

    def subscribe(self, bus: EventBus) -> None:
        self._subscription = bus.subscribe(CALL_OFFERED, self._on_event)

    def close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
        self._pool.shutdown(wait=True)
        self._client.close()

    def _on_event(self, event: Event) -> None:
        self._pool.submit(self.post, event)

    def post(self, event: Event) -> bool:
        """Posts one event; True once the CRM took it (2xx)."""
        body = event.to_dict()
        delay = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._client.post(self.url, json=body, headers={"X-Centralita-Event": event.topic})
                if response.is_success:
                    return True
                if response.status_code < 500 and response.status_code != 429:
                    log.warning(
                        "screen-pop webhook refused event %s: HTTP %s", event.id, response.status_code
                    )
                    return False
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < self._attempts:
                log.info(
                    "screen-pop webhook attempt %d for %s failed (%s); retrying", attempt, event.id, problem
                )
                self._sleep(delay)
                delay *= 2
            else:
                log.error(
                    "screen-pop webhook gave up on event %s after %d attempts: %s", event.id, attempt, problem
                )
        return False
