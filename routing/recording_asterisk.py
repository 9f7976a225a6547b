"""How Centralita tells Asterisk to record, beyond FastAGI's own `EXEC MixMonitor` (voice.agi.ivr_port):

- `ChannelRecorder.mix_monitor(channel, file)`: an on-demand recording of a live call, started from the
  API while the call sits in another process's FastAGI session: AMI's `MixMonitor` action on the
  caller's channel (`Options: b`: only while bridged to the agent). `AmiMixMonitor` opens one short
  AMI connection per request: on-demand recordings are rare, and a connection held for them would be one
  more thing to keep alive in every worker.
- `BridgeRecorder`: a campaign call's bridge over ARI (`POST /bridges/{id}/play` for the notice,
  `POST /bridges/{id}/record`), which `voice.ari.client.AriClient` has no methods for yet: they go
  through its generic `request`, here, until they join the client.

Each has a fake beside it. Both raise `RecordingRefused` (Asterisk answered no: the channel or bridge
is gone, a file of that name exists...) or `RecordingUnavailable` (Asterisk could not be reached).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

from voice.ami.client import AmiClient
from voice.ami.errors import AmiActionError, AmiError, AmiLoginFailed
from voice.ami.protocol import AmiMessage, Fields
from voice.ari.client import AriClient
from voice.ari.errors import AriConnectionError, AriError, AriProtocolError, AriUnauthorized


class RecordingRefused(Exception):
    """Asterisk said no; `str()` says why."""


class RecordingUnavailable(Exception):
    """Asterisk could not be asked (not configured, unreachable, wrong credentials)."""


class ChannelRecorder(Protocol):
    async def mix_monitor(self, channel: str, file: str, *, options: str = "b") -> None:
        """Start MixMonitor on the live `channel`, writing `file` (Asterisk's path, with extension)."""
        ...


class BridgeRecorder(Protocol):
    async def play(self, bridge_id: str, media: str, *, playback_id: str) -> None:
        """Play `media` ("sound:centralita/es/…") to everyone in the bridge."""
        ...

    async def record(self, bridge_id: str, name: str, *, format: str = "wav") -> None:
        """Record the bridge's mix to `name` (relative to Asterisk's recording directory, no extension)."""
        ...


# --- AMI ---------------------------------------------------------------------------------------------


class AmiSession(Protocol):
    """What `AmiMixMonitor` needs of a connection (`AmiClient`)."""

    async def connect(self) -> None: ...

    async def send_action(
        self, action: str, fields: Fields = (), *, action_id: str | None = None, timeout: float | None = None
    ) -> AmiMessage: ...

    async def logoff(self) -> None: ...


class AmiMixMonitor:
    """`ChannelRecorder` over AMI: log in, `MixMonitor`, log off."""

    def __init__(self, connect: Callable[[], AmiSession]) -> None:
        self._connect = connect

    @classmethod
    def to(cls, host: str, port: int, *, username: str, secret: str, timeout: float = 5.0) -> AmiMixMonitor:
        def client() -> AmiSession:
            return AmiClient(
                host,
                port,
                username=username,
                secret=secret,
                events="off",
                action_timeout=timeout,
                connect_timeout=timeout,
                ping_interval=None,
            )

        return cls(client)

    async def mix_monitor(self, channel: str, file: str, *, options: str = "b") -> None:
        session = self._connect()
        try:
            await session.connect()
        except AmiLoginFailed as exc:
            raise RecordingUnavailable(f"AMI refused the login: {exc}") from exc
        except (AmiError, OSError) as exc:
            raise RecordingUnavailable(f"AMI: {exc}") from exc
        try:
            await session.send_action("MixMonitor", {"Channel": channel, "File": file, "Options": options})
        except AmiActionError as exc:  # "No such channel": the call has ended
            raise RecordingRefused(f"Asterisk refused MixMonitor on {channel}: {exc.message or exc}") from exc
        except AmiError as exc:
            raise RecordingUnavailable(f"AMI: {exc}") from exc
        finally:
            await session.logoff()


@dataclass
class FakeChannelRecorder:
    """Records what it was asked; `refuse`/`unavailable`: the next call raises that, with that text."""

    started: list[tuple[str, str, str]] = field(default_factory=list)
    refuse: str | None = None
    unavailable: str | None = None

    async def mix_monitor(self, channel: str, file: str, *, options: str = "b") -> None:
        if self.unavailable is not None:
            raise RecordingUnavailable(self.unavailable)
        if self.refuse is not None:
            raise RecordingRefused(self.refuse)
        self.started.append((channel, file, options))


# --- ARI ---------------------------------------------------------------------------------------------


def _segment(value: str) -> str:
    if not value:
        raise ValueError("an ARI id cannot be empty")
    return quote(value, safe=";,:@=+$!*'()-._~")


class AriBridgeRecorder:
    """`BridgeRecorder` on `AriClient.request`."""

    def __init__(self, client: AriClient) -> None:
        self._client = client

    async def play(self, bridge_id: str, media: str, *, playback_id: str) -> None:
        await self._call(f"/bridges/{_segment(bridge_id)}/play", {"media": media, "playbackId": playback_id})

    async def record(self, bridge_id: str, name: str, *, format: str = "wav") -> None:
        await self._call(
            f"/bridges/{_segment(bridge_id)}/record", {"name": name, "format": format, "ifExists": "fail"}
        )

    async def _call(self, path: str, params: dict[str, str]) -> None:
        try:
            await self._client.request("POST", path, params=params)
        except (AriConnectionError, AriUnauthorized, AriProtocolError) as exc:
            raise RecordingUnavailable(f"ARI: {exc}") from exc
        except AriError as exc:
            raise RecordingRefused(f"ARI: {exc}") from exc


@dataclass
class FakeBridgeRecorder:
    """Records the plays and recordings asked for; `refuse`: every call raises RecordingRefused."""

    plays: list[tuple[str, str]] = field(default_factory=list)
    records: list[tuple[str, str, str]] = field(default_factory=list)
    refuse: str | None = None

    async def play(self, bridge_id: str, media: str, *, playback_id: str) -> None:
        if self.refuse is not None:
            raise RecordingRefused(self.refuse)
        self.plays.append((bridge_id, media))

    async def record(self, bridge_id: str, name: str, *, format: str = "wav") -> None:
        if self.refuse is not None:
            raise RecordingRefused(self.refuse)
        self.records.append((bridge_id, name, format))
