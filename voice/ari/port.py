"""`AriPort`: the ARI calls the IVR and the dialer make. `AriClient` is the real one, `FakeAri` the fake.

Code above the adapter takes an `AriPort` and an `AriRouter` (for the events), never httpx or websockets.
Every method raises the errors of `voice.ari.errors`: `AriNotFound` when the channel is already gone is
the one to expect in normal operation (a caller hangs up at any moment).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from voice.ari.events import Bridge, Channel, LiveRecording, Playback


class AriPort(Protocol):
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
    ) -> Channel: ...

    async def get_channel(self, channel_id: str) -> Channel: ...

    async def answer(self, channel_id: str) -> None: ...

    async def hangup(self, channel_id: str, reason: str | None = None) -> None: ...

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None: ...

    async def get_variable(self, channel_id: str, variable: str) -> str: ...

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None: ...

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
        offsetms: int | None = None,
        skipms: int | None = None,
    ) -> Playback: ...

    async def stop_playback(self, playback_id: str) -> None: ...

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None: ...

    async def stop_moh(self, channel_id: str) -> None: ...

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
    ) -> LiveRecording: ...

    async def stop_recording(self, name: str) -> None: ...

    async def snoop(
        self,
        channel_id: str,
        app: str,
        *,
        spy: str | None = None,
        whisper: str | None = None,
        app_args: str | Sequence[str] | None = None,
        snoop_id: str | None = None,
    ) -> Channel: ...

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
    ) -> Channel: ...

    async def create_bridge(
        self, type: str | Sequence[str] = "mixing", *, bridge_id: str | None = None, name: str | None = None
    ) -> Bridge: ...

    async def destroy_bridge(self, bridge_id: str) -> None: ...

    async def add_channel(
        self, bridge_id: str, channel_ids: str | Sequence[str], *, role: str | None = None
    ) -> None: ...

    async def remove_channel(self, bridge_id: str, channel_ids: str | Sequence[str]) -> None: ...
