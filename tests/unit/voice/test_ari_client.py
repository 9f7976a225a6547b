"""AriClient against httpx.MockTransport: the requests of the calls the recording does not cover, error
mapping, and replies that are not what ARI sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from voice.ari.client import AriClient
from voice.ari.errors import (
    AriBadRequest,
    AriConflict,
    AriConnectionError,
    AriHttpError,
    AriNotFound,
    AriPreconditionFailed,
    AriProtocolError,
    AriServerError,
    AriUnauthorized,
    AriUnprocessable,
    AriVariableNotFound,
    error_for_status,
)
from voice.ari.events_stream import events_url

T = TypeVar("T")
CHANNEL = {"id": "snoop-1", "name": "Snoop/PJSIP/100-00000001", "state": "Up"}


def call(
    step: Callable[[AriClient], Awaitable[T]],
    *,
    status: int = 200,
    body: Any = None,
    content: bytes | None = None,
    reason: str | None = None,
) -> tuple[T, httpx.Request]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        extensions = {"reason_phrase": reason.encode()} if reason else {}
        if content is not None:
            return httpx.Response(status, content=content, extensions=extensions)
        if body is None:
            return httpx.Response(status if status != 200 else 204, extensions=extensions)
        return httpx.Response(status, json=body, extensions=extensions)

    async def main() -> T:
        async with AriClient("http://pbx:8088/", "u", "p", transport=httpx.MockTransport(answer)) as ari:
            return await step(ari)

    result = asyncio.run(main())
    [request] = seen
    return result, request


def sent(request: httpx.Request) -> tuple[str, str, Any]:
    return request.method, str(request.url), json.loads(request.content) if request.content else None


@pytest.mark.parametrize(
    ("step", "reply", "expected"),
    [
        (
            lambda a: a.snoop(
                "PJSIP/100-1", "ccapp", spy="in", whisper="none", app_args=["spy", "7"], snoop_id="snoop-1"
            ),
            CHANNEL,
            (
                "POST",
                "http://pbx:8088/ari/channels/PJSIP%2F100-1/snoop?spy=in&whisper=none&app=ccapp&appArgs=spy%2C7&snoopId=snoop-1",
                None,
            ),
        ),
        (
            lambda a: a.record(
                "c1", "msg-1", max_duration_seconds=60, max_silence_seconds=3, beep=True, terminate_on="#"
            ),
            {"name": "msg-1", "format": "wav", "state": "queued", "target_uri": "channel:c1"},
            (
                "POST",
                "http://pbx:8088/ari/channels/c1/record?name=msg-1&format=wav&maxDurationSeconds=60"
                "&maxSilenceSeconds=3&beep=true&terminateOn=%23",
                None,
            ),
        ),
        (
            lambda a: a.external_media("ccapp", "127.0.0.1:9000", channel_id="em-1", variables={"CALL": "1"}),
            {**CHANNEL, "id": "em-1"},
            (
                "POST",
                "http://pbx:8088/ari/channels/externalMedia?channelId=em-1&app=ccapp&external_host=127.0.0.1%3A9000"
                "&format=ulaw",
                {"variables": {"CALL": "1"}},
            ),
        ),
        (
            lambda a: a.continue_in_dialplan("c1", context="queues", extension="sales", priority=1),
            None,
            (
                "POST",
                "http://pbx:8088/ari/channels/c1/continue?context=queues&extension=sales&priority=1",
                None,
            ),
        ),
        (lambda a: a.stop_playback("pb-1"), None, ("DELETE", "http://pbx:8088/ari/playbacks/pb-1", None)),
        (
            lambda a: a.control_playback("pb-1", "pause"),
            None,
            ("POST", "http://pbx:8088/ari/playbacks/pb-1/control?operation=pause", None),
        ),
        (
            lambda a: a.stop_recording("msg-1"),
            None,
            ("POST", "http://pbx:8088/ari/recordings/live/msg-1/stop", None),
        ),
        (
            lambda a: a.remove_channel("b-1", "c1"),
            None,
            ("POST", "http://pbx:8088/ari/bridges/b-1/removeChannel?channel=c1", None),
        ),
        (
            lambda a: a.play("c1", ["sound:hello", "digits:42"], lang="es"),
            {"id": "generated", "state": "queued", "target_uri": "channel:c1"},
            ("POST", "http://pbx:8088/ari/channels/c1/play?media=sound%3Ahello%2Cdigits%3A42&lang=es", None),
        ),
    ],
)
def test_calls_send_asterisk_22_paths_and_parameters(
    step: Callable[[AriClient], Awaitable[object]], reply: Any, expected: tuple[str, str, Any]
) -> None:
    _, request = call(step, body=reply)
    assert sent(request) == expected


def test_ids_that_are_not_path_safe_are_escaped_and_empty_ids_refused() -> None:
    _, request = call(lambda a: a.answer("a/b?c#d e;2"))
    assert request.url.raw_path == b"/ari/channels/a%2Fb%3Fc%23d%20e;2/answer"
    with pytest.raises(ValueError):
        call(lambda a: a.answer(""))


@pytest.mark.parametrize(
    ("status", "reason", "kind"),
    [
        (400, "Bad Request", AriBadRequest),
        (401, "Unauthorized", AriUnauthorized),
        (403, "Forbidden", AriHttpError),
        (404, "Not Found", AriNotFound),
        (404, "Variable Not Found", AriVariableNotFound),
        (409, "Conflict", AriConflict),
        (412, "Precondition Failed", AriPreconditionFailed),
        (422, "Unprocessable Entity", AriUnprocessable),
        (500, "Internal Server Error", AriServerError),
        (503, "Service Unavailable", AriServerError),
    ],
)
def test_each_error_status_raises_its_type_with_asterisks_message(
    status: int, reason: str, kind: type[AriHttpError]
) -> None:
    with pytest.raises(AriHttpError) as raised:
        call(
            lambda a: a.hangup("c1"),
            status=status,
            body={"message": "Channel not in Stasis application"},
            reason=reason,
        )
    error = raised.value
    assert type(error) is kind
    assert (error.status, error.message, error.method, error.path, error.reason) == (
        status,
        "Channel not in Stasis application",
        "DELETE",
        "/channels/c1",
        reason,
    )


def test_a_variable_404_is_told_apart_by_its_message_even_without_the_reason_phrase() -> None:
    error = error_for_status(404, "Provided variable was not found")
    assert type(error) is AriVariableNotFound
    assert type(error_for_status(404, "Channel not found")) is AriNotFound


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"error":"Allocation failed"}', "Allocation failed"),
        (b"<html>proxy says no</html>", "<html>proxy says no</html>"),
        (b'["odd"]', '["odd"]'),
    ],
)
def test_the_message_comes_from_message_or_error_or_the_raw_body(content: bytes, message: str) -> None:
    with pytest.raises(AriServerError) as raised:
        call(lambda a: a.list_channels(), status=500, content=content)
    assert raised.value.message == message


def test_replies_that_are_not_what_ari_sends_raise_protocol_errors() -> None:
    with pytest.raises(AriProtocolError):
        call(lambda a: a.get_channel("c1"), content=b"not json")
    with pytest.raises(AriProtocolError):
        call(lambda a: a.get_channel("c1"), body={"name": "no id"})
    with pytest.raises(AriProtocolError):
        call(lambda a: a.list_channels(), body={"not": "a list"})
    with pytest.raises(AriProtocolError):
        call(lambda a: a.get_variable("c1", "X"), body={"value": 3})


def test_an_unreachable_asterisk_raises_a_connection_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async def main() -> None:
        async with AriClient("http://pbx:8088", "u", "p", transport=httpx.MockTransport(refuse)) as ari:
            await ari.answer("c1")

    with pytest.raises(AriConnectionError, match="connection refused"):
        asyncio.run(main())


@pytest.mark.parametrize(
    ("base", "apps", "options", "url"),
    [
        ("http://127.0.0.1:8088", ["ccapp"], {}, "ws://127.0.0.1:8088/ari/events?app=ccapp"),
        (
            "https://pbx/asterisk/",
            ["a", "b"],
            {"subscribe_all": True},
            "wss://pbx/asterisk/ari/events?app=a,b&subscribeAll=true",
        ),
        (
            "http://127.0.0.1:8088",
            ["ccapp"],
            {"api_key": "centralita:secret"},
            "ws://127.0.0.1:8088/ari/events?app=ccapp&api_key=centralita:secret",
        ),
    ],
)
def test_the_event_stream_url(base: str, apps: list[str], options: dict[str, Any], url: str) -> None:
    assert events_url(base, apps, **options) == url


def test_the_event_stream_url_needs_an_app_and_an_http_url() -> None:
    with pytest.raises(ValueError):
        events_url("http://pbx", [])
    with pytest.raises(ValueError):
        events_url("ftp://pbx", ["ccapp"])
