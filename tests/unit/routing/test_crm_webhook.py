"""The screen-pop webhook: retried with back-off on failures worth retrying, never blocking the bus."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from core.events import Event, InProcessEventBus
from routing.crm_webhook import ScreenPopWebhook
from routing.recorder import CALL_OFFERED

POP = Event(CALL_OFFERED, {"agent_id": 3, "call_id": "c1", "lookup": {"customer": {"name": "Ana"}}})


def webhook(
    answers: list[int | Exception], sleeps: list[float]
) -> tuple[ScreenPopWebhook, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        outcome = answers.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return httpx.Response(outcome)

    hook = ScreenPopWebhook(
        "https://crm.example.com/pop", transport=httpx.MockTransport(answer), sleep=sleeps.append, attempts=4
    )
    return hook, seen


@pytest.mark.parametrize(
    ("answers", "delivered", "posts", "sleeps"),
    [
        ([200], True, 1, []),
        ([503, httpx.ConnectError("refused"), 204], True, 3, [0.5, 1.0]),
        ([500, 500, 429, 500], False, 4, [0.5, 1.0, 2.0]),
        ([404], False, 1, []),  # the same body again would be refused again
    ],
)
def test_posts_are_retried_with_doubling_back_off(
    answers: list[int | Exception], delivered: bool, posts: int, sleeps: list[float]
) -> None:
    slept: list[float] = []
    hook, seen = webhook(list(answers), slept)
    try:
        assert hook.post(POP) is delivered
    finally:
        hook.close()
    assert len(seen) == posts and slept == sleeps
    body = json.loads(seen[0].content)
    assert body["topic"] == CALL_OFFERED and body["payload"]["lookup"]["customer"]["name"] == "Ana"
    assert seen[0].headers["X-Centralita-Event"] == CALL_OFFERED


def test_the_bus_hands_the_pop_over_without_waiting_for_the_crm() -> None:
    release = threading.Event()
    posted = threading.Event()

    def slow_crm(request: httpx.Request) -> httpx.Response:
        release.wait(5)
        posted.set()
        return httpx.Response(200)

    hook = ScreenPopWebhook("https://crm.example.com/pop", transport=httpx.MockTransport(slow_crm))
    bus = InProcessEventBus()
    hook.subscribe(bus)
    try:
        bus.publish(POP)  # returns while the CRM still thinks
        assert not posted.is_set()
        release.set()
        assert posted.wait(5)
    finally:
        hook.close()
