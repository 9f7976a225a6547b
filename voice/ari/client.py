"""ARI REST calls over httpx, with typed replies and typed errors.

    async with AriClient("http://127.0.0.1:8088", "centralita", "secret") as ari:
        await ari.answer(channel_id)
        playback = await ari.play(channel_id, "sound:hello-world")

Paths and parameters are Asterisk 22's (`/ari/channels/{id}/play?media=...&playbackId=...`); parameters
left as None are not sent. Error replies become `AriHttpError` subclasses carrying Asterisk's `message`
(its JSON `message`, or `error` as in the 500 "Allocation failed" for an unknown technology). Pass
`transport=httpx.MockTransport(...)` to answer from a test.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from voice.ari.errors import AriConnectionError, AriProtocolError, error_for_status
from voice.ari.events import Bridge, Channel, LiveRecording, Playback

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Params = Mapping[str, str | int | bool | None]


def _segment(value: str) -> str:
    """One path segment: channel ids like "scenA-caller;2" are sent as they are, "/" and "?" escaped."""
    if not value:
        raise ValueError("an ARI id cannot be empty")
    return quote(value, safe=";,:@=+$!*'()-._~")


def _list(value: str | Sequence[str]) -> str:
    return value if isinstance(value, str) else ",".join(value)


def _variables(variables: Mapping[str, str] | None) -> dict[str, Any] | None:
    return None if variables is None else {"variables": dict(variables)}


class AriClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`base_url` is Asterisk's HTTP server, e.g. "http://127.0.0.1:8088" (the /ari prefix is added)."""
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/ari/",
            auth=httpx.BasicAuth(username, password),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- the generic call -------------------------------------------------------------------------

    async def request(self, method: str, path: str, *, params: Params | None = None, json: Any = None) -> Any:
        """Any ARI call: the decoded JSON reply, or None for 204. Raises the typed errors."""
        query = {key: _param(value) for key, value in (params or {}).items() if value is not None}
        try:
            response = await self._http.request(method, path.lstrip("/"), params=query or None, json=json)
        except httpx.TransportError as exc:  # connect errors, timeouts, broken connections
            raise AriConnectionError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise error_for_status(
                response.status_code,
                _error_message(response),
                method=method,
                path=path,
                reason=response.reason_phrase,
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AriProtocolError(f"{method} {path}: reply is not JSON: {response.text[:200]!r}") from None

    async def _model(self, model: type[M], method: str, path: str, **options: Any) -> M:
        data = await self.request(method, path, **options)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise AriProtocolError(f"{method} {path}: not a {model.__name__}: {exc}") from None

    # --- Asterisk ---------------------------------------------------------------------------------

    async def asterisk_info(self, only: Sequence[str] | None = None) -> dict[str, Any]:
        info = await self.request(
            "GET", "/asterisk/info", params={"only": None if only is None else _list(only)}
        )
        return dict(info or {})

    async def get_application(self, name: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"/applications/{_segment(name)}") or {})

    # --- channels ---------------------------------------------------------------------------------

    async def list_channels(self) -> list[Channel]:
        data = await self.request("GET", "/channels")
        if not isinstance(data, list):
            raise AriProtocolError(f"GET /channels: expected a list, got {type(data).__name__}")
        try:
            return [Channel.model_validate(item) for item in data]
        except ValidationError as exc:
            raise AriProtocolError(f"GET /channels: not a list of channels: {exc}") from None

    async def get_channel(self, channel_id: str) -> Channel:
        return await self._model(Channel, "GET", f"/channels/{_segment(channel_id)}")

    async def originate(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        caller_id: str | None = None,
        timeout: int | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        formats: str | Sequence[str] | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """Create a channel to `endpoint` ("PJSIP/100", "Local/s@ctx") that, once answered, enters the app
        `app` (StasisStart with `app_args`) or the dialplan at context/extension/priority. `timeout` is in
        seconds. Returns at once (state "Down"); the outcome arrives as events."""
        return await self._model(
            Channel,
            "POST",
            "/channels",
            params={
                "endpoint": endpoint,
                "context": context,
                "extension": extension,
                "priority": priority,
                "label": label,
                "app": app,
                "appArgs": None if app_args is None else _list(app_args),
                "callerId": caller_id,
                "timeout": timeout,
                "channelId": channel_id,
                "otherChannelId": other_channel_id,
                "originator": originator,
                "formats": None if formats is None else _list(formats),
            },
            json=_variables(variables),
        )

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_segment(channel_id)}/answer")

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_segment(channel_id)}/ring")

    async def hangup(self, channel_id: str, reason: str | None = None) -> None:
        """`reason`: normal, busy, congestion, no_answer, timeout, rejected, unallocated, ..."""
        await self.request("DELETE", f"/channels/{_segment(channel_id)}", params={"reason": reason})

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        """Leave the application (StasisEnd) and go on in the dialplan (by default: the next priority)."""
        await self.request(
            "POST",
            f"/channels/{_segment(channel_id)}/continue",
            params={"context": context, "extension": extension, "priority": priority, "label": label},
        )

    async def send_dtmf(
        self,
        channel_id: str,
        dtmf: str,
        *,
        before: int | None = None,
        between: int | None = None,
        duration: int | None = None,
        after: int | None = None,
    ) -> None:
        """Times in milliseconds."""
        await self.request(
            "POST",
            f"/channels/{_segment(channel_id)}/dtmf",
            params={"dtmf": dtmf, "before": before, "between": between, "duration": duration, "after": after},
        )

    async def get_variable(self, channel_id: str, variable: str) -> str:
        """Raises `AriVariableNotFound` for a variable that is not set, `AriNotFound` for a gone channel."""
        data = await self.request(
            "GET", f"/channels/{_segment(channel_id)}/variable", params={"variable": variable}
        )
        value = data.get("value") if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise AriProtocolError(f"variable reply without a value: {data!r}")
        return value

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self.request(
            "POST",
            f"/channels/{_segment(channel_id)}/variable",
            params={"variable": variable, "value": value},
        )

    # --- media ------------------------------------------------------------------------------------

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
        offsetms: int | None = None,
        skipms: int | None = None,
    ) -> Playback:
        """Queue media ("sound:hello-world", "recording:x", "digits:123", "tone:ring"). Asterisk answers
        201 with state "queued" even for a sound it does not have: that shows as PlaybackFinished with
        state "failed". `playback.id` is the id to stop it with and to match its events."""
        return await self._model(
            Playback,
            "POST",
            f"/channels/{_segment(channel_id)}/play",
            params={
                "media": _list(media),
                "lang": lang,
                "offsetms": offsetms,
                "skipms": skipms,
                "playbackId": playback_id,
            },
        )

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{_segment(playback_id)}")

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        """Music on hold on the channel (`moh_class` from musiconhold.conf; None: the channel's own)
        until `stop_moh`."""
        await self.request("POST", f"/channels/{_segment(channel_id)}/moh", params={"mohClass": moh_class})

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{_segment(channel_id)}/moh")

    async def control_playback(self, playback_id: str, operation: str) -> None:
        """`operation`: restart, pause, unpause, reverse, forward."""
        await self.request(
            "POST", f"/playbacks/{_segment(playback_id)}/control", params={"operation": operation}
        )

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        format: str = "wav",
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: str | None = None,
        beep: bool | None = None,
        terminate_on: str | None = None,
    ) -> LiveRecording:
        """Record the channel to `name`.`format`; RecordingFinished / RecordingFailed tell the end.
        `if_exists`: fail, overwrite, append; `terminate_on`: none, any, *, #."""
        return await self._model(
            LiveRecording,
            "POST",
            f"/channels/{_segment(channel_id)}/record",
            params={
                "name": name,
                "format": format,
                "maxDurationSeconds": max_duration_seconds,
                "maxSilenceSeconds": max_silence_seconds,
                "ifExists": if_exists,
                "beep": beep,
                "terminateOn": terminate_on,
            },
        )

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{_segment(name)}/stop")

    async def snoop(
        self,
        channel_id: str,
        app: str,
        *,
        spy: str | None = None,
        whisper: str | None = None,
        app_args: str | Sequence[str] | None = None,
        snoop_id: str | None = None,
    ) -> Channel:
        """A channel that hears (`spy`) and/or talks into (`whisper`) this one: none, both, out, in."""
        return await self._model(
            Channel,
            "POST",
            f"/channels/{_segment(channel_id)}/snoop",
            params={
                "spy": spy,
                "whisper": whisper,
                "app": app,
                "appArgs": None if app_args is None else _list(app_args),
                "snoopId": snoop_id,
            },
        )

    async def external_media(
        self,
        app: str,
        external_host: str,
        format: str = "ulaw",
        *,
        channel_id: str | None = None,
        encapsulation: str | None = None,
        transport: str | None = None,
        connection_type: str | None = None,
        direction: str | None = None,
        data: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        """A channel that streams the call's audio to `external_host` ("host:port"), e.g. for speech
        recognition; `encapsulation` rtp or audiosocket, `transport` udp or tcp."""
        return await self._model(
            Channel,
            "POST",
            "/channels/externalMedia",
            params={
                "channelId": channel_id,
                "app": app,
                "external_host": external_host,
                "encapsulation": encapsulation,
                "transport": transport,
                "connection_type": connection_type,
                "format": format,
                "direction": direction,
                "data": data,
            },
            json=_variables(variables),
        )

    # --- bridges ----------------------------------------------------------------------------------

    async def create_bridge(
        self, type: str | Sequence[str] = "mixing", *, bridge_id: str | None = None, name: str | None = None
    ) -> Bridge:
        """`type`: mixing, holding, dtmf_events, proxy_media, video_sfu, ... (a list is joined with ",")."""
        return await self._model(
            Bridge,
            "POST",
            "/bridges",
            params={"type": _list(type), "name": name, "bridgeId": bridge_id},
        )

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return await self._model(Bridge, "GET", f"/bridges/{_segment(bridge_id)}")

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{_segment(bridge_id)}")

    async def add_channel(
        self, bridge_id: str, channel_ids: str | Sequence[str], *, role: str | None = None
    ) -> None:
        await self.request(
            "POST",
            f"/bridges/{_segment(bridge_id)}/addChannel",
            params={"channel": _list(channel_ids), "role": role},
        )

    async def remove_channel(self, bridge_id: str, channel_ids: str | Sequence[str]) -> None:
        await self.request(
            "POST", f"/bridges/{_segment(bridge_id)}/removeChannel", params={"channel": _list(channel_ids)}
        )


def _param(value: str | int | bool) -> str | int:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500]
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return response.text.strip()[:500]
