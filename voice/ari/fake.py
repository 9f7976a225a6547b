"""A fake Asterisk behind `AriPort`, for tests of the IVR and the dialer: records every call, answers with
plausible objects, and pushes events through a real `AriRouter`.

    ari = FakeAri()
    ari.router.subscribe(app.on_event, application="ccapp")
    await ari.push(stasis_start("chan-1", "inbound", "5551234"))
    await ari.press("chan-1", "12#")
    assert ari.called("play")[0].args["media"] == "sound:hello-world"
    ari.fail_next("answer", AriNotFound(404, "Channel not found"))   # the caller hung up meanwhile

It keeps a little state, as Asterisk would: channels it originated (or was told about), variables, bridges,
the channels with music on hold. `get_channel` and `get_variable` raise `AriNotFound` /
`AriVariableNotFound` for what it does not know. A channel originated into the application answers with
`answer_originated` (its StasisStart, with the originate's appArgs) and ends with `originated_ends`.
An external-media channel enters the application at once (StasisStart, no arguments), as Asterisk's does;
with encapsulation audiosocket it is named as chan_audiosocket names it (`AudioSocket/<host>-<uuid>`).
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voice.ari.errors import AriError, AriNotFound, AriVariableNotFound
from voice.ari.events import (
    AriEvent,
    Bridge,
    CallerID,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    ChannelTalkingFinished,
    ChannelTalkingStarted,
    DialplanCEP,
    LiveRecording,
    Playback,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
    parse_event,
)
from voice.ari.router import AriRouter

if TYPE_CHECKING:
    from voice.ari.client import AriClient
    from voice.ari.port import AriPort

APPLICATION = "ccapp"
_CALLER_ID = re.compile(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*')


# --- building objects and events, as Asterisk 22 sends them -------------------------------------------


def channel(
    channel_id: str,
    *,
    state: str = "Up",
    caller_number: str = "",
    caller_name: str = "",
    name: str | None = None,
    context: str = "",
    exten: str = "s",
    app_data: str = "",
) -> Channel:
    return Channel(
        id=channel_id,
        name=name or f"PJSIP/{channel_id}",
        state=state,
        caller=CallerID(name=caller_name, number=caller_number),
        connected=CallerID(name=caller_name, number=caller_number),
        dialplan=DialplanCEP(context=context, exten=exten, priority=1, app_name="Stasis", app_data=app_data),
        language="en",
    )


def _channel(value: str | Channel) -> Channel:
    return value if isinstance(value, Channel) else channel(value)


def stasis_start(call: str | Channel, *args: str, application: str = APPLICATION) -> StasisStart:
    return StasisStart(args=args, channel=_channel(call), application=application)


def stasis_end(call: str | Channel, *, application: str = APPLICATION) -> StasisEnd:
    return StasisEnd(channel=_channel(call), application=application)


def dtmf(call: str | Channel, digit: str, *, application: str = APPLICATION) -> ChannelDtmfReceived:
    return ChannelDtmfReceived(digit=digit, duration_ms=100, channel=_channel(call), application=application)


def hangup_request(
    call: str | Channel, *, cause: int = 16, soft: bool = False, application: str = APPLICATION
) -> ChannelHangupRequest:
    return ChannelHangupRequest(cause=cause, soft=soft, channel=_channel(call), application=application)


def channel_destroyed(
    call: str | Channel,
    *,
    cause: int = 16,
    cause_txt: str = "Normal Clearing",
    application: str = APPLICATION,
) -> ChannelDestroyed:
    return ChannelDestroyed(cause=cause, cause_txt=cause_txt, channel=_channel(call), application=application)


def playback_started(playback: Playback, *, application: str = APPLICATION) -> PlaybackStarted:
    return PlaybackStarted(playback=playback.model_copy(update={"state": "playing"}), application=application)


def playback_finished(
    playback: Playback, *, state: str = "done", application: str = APPLICATION
) -> PlaybackFinished:
    """`state="failed"` is what Asterisk sends for a sound file it does not have."""
    return PlaybackFinished(playback=playback.model_copy(update={"state": state}), application=application)


def talking_started(call: str | Channel, *, application: str = APPLICATION) -> ChannelTalkingStarted:
    return ChannelTalkingStarted(channel=_channel(call), application=application)


def talking_finished(
    call: str | Channel, duration_ms: int, *, application: str = APPLICATION
) -> ChannelTalkingFinished:
    return ChannelTalkingFinished(channel=_channel(call), duration=duration_ms, application=application)


# --- the fake port -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AriCall:
    method: str
    args: dict[str, Any]


class FakeAri:
    def __init__(self, router: AriRouter | None = None, *, application: str = APPLICATION) -> None:
        self.router = router if router is not None else AriRouter()
        self.application = application
        self.calls: list[AriCall] = []
        self.channels: dict[str, Channel] = {}
        self.variables: dict[tuple[str, str], str] = {}  # (channel id, name) -> value
        self.bridges: dict[str, Bridge] = {}
        self.playbacks: dict[str, Playback] = {}
        self.moh: dict[str, str | None] = {}  # channels with music on hold -> its class
        self._errors: dict[str, deque[AriError]] = {}
        self._in_app: set[str] = set()  # originated channels that answered (entered the application)
        self._ids = itertools.count(1)

    # --- what tests use ---------------------------------------------------------------------------

    def fail_next(self, method: str, error: AriError) -> None:
        """The next call of `method` raises `error` (after being recorded). Queue several for several."""
        self._errors.setdefault(method, deque()).append(error)

    def called(self, method: str) -> list[AriCall]:
        return [call for call in self.calls if call.method == method]

    @property
    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    async def push(self, *events: AriEvent | Mapping[str, Any]) -> None:
        """Deliver events (models, or dicts as Asterisk sends them) through the router, in order."""
        for event in events:
            await self.router.dispatch(event if not isinstance(event, Mapping) else parse_event(event))

    async def start_call(self, call: str | Channel, *args: str) -> Channel:
        """A call entering the application: remembered as a live channel, then StasisStart."""
        started = _channel(call)
        self.channels[started.id] = started
        await self.push(stasis_start(started, *args, application=self.application))
        return started

    async def press(self, channel_id: str, digits: str) -> None:
        """One ChannelDtmfReceived per digit."""
        for digit in digits:
            await self.push(
                dtmf(self.channels.get(channel_id) or channel_id, digit, application=self.application)
            )

    async def finish_playback(self, playback_id: str, state: str = "done") -> None:
        """PlaybackStarted and PlaybackFinished of a playback this fake started."""
        playback = self.playbacks[playback_id]
        await self.push(
            playback_started(playback, application=self.application),
            playback_finished(playback, state=state, application=self.application),
        )

    async def answer_originated(self, channel_id: str) -> None:
        """An originated channel answers: it enters the application (StasisStart with the appArgs the
        originate gave), as Asterisk does for `originate(app=...)`."""
        made = next(c for c in reversed(self.called("originate")) if c.args["channel_id"] == channel_id)
        args = made.args["app_args"] or ()
        answered = self.channels[channel_id].model_copy(update={"state": "Up"})
        self.channels[channel_id] = answered
        self._in_app.add(channel_id)
        await self.push(
            stasis_start(
                answered,
                *(args.split(",") if isinstance(args, str) else args),
                application=made.args["app"] or self.application,
            )
        )

    async def originated_ends(
        self, channel_id: str, *, cause: int = 16, cause_txt: str = "Normal Clearing"
    ) -> None:
        """An originated channel ends: a phone that never answered (busy: 17, no answer: 19) gets only
        ChannelDestroyed; one that answered hangs up (ChannelHangupRequest, StasisEnd, ChannelDestroyed)."""
        gone = self.channels.pop(channel_id, None) or channel(channel_id)
        if channel_id in self._in_app:
            self._in_app.discard(channel_id)
            await self.push(
                hangup_request(gone, cause=cause, application=self.application),
                stasis_end(gone, application=self.application),
            )
        await self.push(
            channel_destroyed(gone, cause=cause, cause_txt=cause_txt, application=self.application)
        )

    async def caller_hangs_up(self, channel_id: str) -> None:
        """What Asterisk sends when the far end of a call from the dialplan hangs up."""
        gone = self.channels.pop(channel_id, None) or channel(channel_id)
        await self.push(
            hangup_request(gone, application=self.application),
            stasis_end(gone, application=self.application),
        )

    def _record(self, method: str, **args: Any) -> None:
        self.calls.append(AriCall(method, args))
        errors = self._errors.get(method)
        if errors:
            raise errors.popleft()

    def _next_id(self, kind: str) -> str:
        return f"fake-{kind}-{next(self._ids)}"

    # --- AriPort ----------------------------------------------------------------------------------

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
        self._record(
            "originate",
            endpoint=endpoint,
            app=app,
            app_args=app_args,
            context=context,
            extension=extension,
            priority=priority,
            label=label,
            caller_id=caller_id,
            timeout=timeout,
            channel_id=channel_id,
            other_channel_id=other_channel_id,
            originator=originator,
            formats=formats,
            variables=dict(variables) if variables is not None else None,
        )
        number, name = "", ""
        if caller_id and (match := _CALLER_ID.fullmatch(caller_id)):
            name, number = match.group(1), match.group(2)
        elif caller_id:
            number = caller_id
        created = channel(
            channel_id or self._next_id("channel"),
            state="Down",
            caller_number=number,
            caller_name=name,
            name=f"{endpoint}-fake",
            context=context or "",
        )
        self.channels[created.id] = created
        for key, value in (variables or {}).items():
            self.variables[(created.id, key)] = value
        return created

    async def get_channel(self, channel_id: str) -> Channel:
        self._record("get_channel", channel_id=channel_id)
        try:
            return self.channels[channel_id]
        except KeyError:
            raise AriNotFound(
                404, "Channel not found", method="GET", path=f"/channels/{channel_id}"
            ) from None

    async def answer(self, channel_id: str) -> None:
        self._record("answer", channel_id=channel_id)
        if channel_id in self.channels:
            self.channels[channel_id] = self.channels[channel_id].model_copy(update={"state": "Up"})

    async def hangup(self, channel_id: str, reason: str | None = None) -> None:
        self._record("hangup", channel_id=channel_id, reason=reason)
        self.channels.pop(channel_id, None)

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        self._record(
            "continue_in_dialplan",
            channel_id=channel_id,
            context=context,
            extension=extension,
            priority=priority,
            label=label,
        )

    async def get_variable(self, channel_id: str, variable: str) -> str:
        self._record("get_variable", channel_id=channel_id, variable=variable)
        try:
            return self.variables[(channel_id, variable)]
        except KeyError:
            raise AriVariableNotFound(
                404,
                "Provided variable was not found",
                method="GET",
                path=f"/channels/{channel_id}/variable",
                reason="Variable Not Found",
            ) from None

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        self._record("set_variable", channel_id=channel_id, variable=variable, value=value)
        self.variables[(channel_id, variable)] = value

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
        media_uri = media if isinstance(media, str) else ",".join(media)
        self._record(
            "play",
            channel_id=channel_id,
            media=media_uri,
            playback_id=playback_id,
            lang=lang,
            offsetms=offsetms,
            skipms=skipms,
        )
        playback = Playback(
            id=playback_id or self._next_id("playback"),
            media_uri=media_uri,
            target_uri=f"channel:{channel_id}",
            language=lang or "en",
            state="queued",
        )
        self.playbacks[playback.id] = playback
        return playback

    async def stop_playback(self, playback_id: str) -> None:
        self._record("stop_playback", playback_id=playback_id)

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        self._record("start_moh", channel_id=channel_id, moh_class=moh_class)
        if channel_id not in self.channels:
            raise AriNotFound(404, "Channel not found", method="POST", path=f"/channels/{channel_id}/moh")
        self.moh[channel_id] = moh_class

    async def stop_moh(self, channel_id: str) -> None:
        self._record("stop_moh", channel_id=channel_id)
        if channel_id not in self.channels:
            raise AriNotFound(404, "Channel not found", method="DELETE", path=f"/channels/{channel_id}/moh")
        self.moh.pop(channel_id, None)

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
        self._record(
            "record",
            channel_id=channel_id,
            name=name,
            format=format,
            max_duration_seconds=max_duration_seconds,
            max_silence_seconds=max_silence_seconds,
            if_exists=if_exists,
            beep=beep,
            terminate_on=terminate_on,
        )
        return LiveRecording(name=name, format=format, state="queued", target_uri=f"channel:{channel_id}")

    async def stop_recording(self, name: str) -> None:
        self._record("stop_recording", name=name)

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
        self._record(
            "snoop",
            channel_id=channel_id,
            app=app,
            spy=spy,
            whisper=whisper,
            app_args=app_args,
            snoop_id=snoop_id,
        )
        snooper = channel(snoop_id or self._next_id("snoop"), name=f"Snoop/{channel_id}-fake")
        self.channels[snooper.id] = snooper
        return snooper

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
        self._record(
            "external_media",
            app=app,
            external_host=external_host,
            format=format,
            channel_id=channel_id,
            encapsulation=encapsulation,
            transport=transport,
            connection_type=connection_type,
            direction=direction,
            data=data,
            variables=dict(variables) if variables is not None else None,
        )
        technology = "AudioSocket" if encapsulation == "audiosocket" else "UnicastRTP"
        media = channel(
            channel_id or self._next_id("media"), name=f"{technology}/{external_host}-{data or 'fake'}"
        )
        self.channels[media.id] = media
        self._in_app.add(media.id)
        await self.push(stasis_start(media, application=app))
        return media

    async def create_bridge(
        self, type: str | Sequence[str] = "mixing", *, bridge_id: str | None = None, name: str | None = None
    ) -> Bridge:
        kind = type if isinstance(type, str) else ",".join(type)
        self._record("create_bridge", type=kind, bridge_id=bridge_id, name=name)
        bridge = Bridge(
            id=bridge_id or self._next_id("bridge"),
            technology="simple_bridge",
            bridge_type=kind,
            bridge_class="stasis",
            creator="Stasis",
            name=name or "",
        )
        self.bridges[bridge.id] = bridge
        return bridge

    async def destroy_bridge(self, bridge_id: str) -> None:
        self._record("destroy_bridge", bridge_id=bridge_id)
        self.bridges.pop(bridge_id, None)

    async def add_channel(
        self, bridge_id: str, channel_ids: str | Sequence[str], *, role: str | None = None
    ) -> None:
        ids = (channel_ids,) if isinstance(channel_ids, str) else tuple(channel_ids)
        self._record("add_channel", bridge_id=bridge_id, channel_ids=ids, role=role)
        bridge = self.bridges.get(bridge_id)
        if bridge is not None:
            members = bridge.channels + tuple(i for i in ids if i not in bridge.channels)
            self.bridges[bridge_id] = bridge.model_copy(update={"channels": members})

    async def remove_channel(self, bridge_id: str, channel_ids: str | Sequence[str]) -> None:
        ids = (channel_ids,) if isinstance(channel_ids, str) else tuple(channel_ids)
        self._record("remove_channel", bridge_id=bridge_id, channel_ids=ids)
        bridge = self.bridges.get(bridge_id)
        if bridge is not None:
            members = tuple(i for i in bridge.channels if i not in ids)
            self.bridges[bridge_id] = bridge.model_copy(update={"channels": members})


if TYPE_CHECKING:  # both implement the port (checked by mypy, costs nothing at run time)

    def _implements_port(real: AriClient, fake: FakeAri) -> tuple[AriPort, AriPort]:
        return real, fake
