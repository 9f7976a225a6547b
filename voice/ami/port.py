"""`AmiPort`: what the dialer (and later queues/agents) ask of AMI. `AmiClient` is the real one,
`FakeAmi` the fake. Code above the adapter takes an `AmiPort`, never a socket."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from voice.ami.dispatch import Handler
from voice.ami.events import CoreShowChannel, OriginateResponse
from voice.ami.protocol import AmiMessage, Fields
from voice.subscription import Subscription


class AmiPort(Protocol):
    def subscribe(self, handler: Handler, *, events: Iterable[str] | None = None) -> Subscription: ...

    async def send_action(
        self, action: str, fields: Fields = (), *, action_id: str | None = None, timeout: float | None = None
    ) -> AmiMessage: ...

    async def originate(
        self,
        channel: str,
        *,
        context: str | None = None,
        exten: str | None = None,
        priority: int | None = None,
        application: str | None = None,
        data: str | None = None,
        caller_id: str | None = None,
        timeout: float | None = 30.0,
        variables: Mapping[str, str] | None = None,
        account: str | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        action_id: str | None = None,
        response_timeout: float | None = None,
    ) -> OriginateResponse: ...

    async def hangup(self, channel: str, cause: int | None = None) -> None: ...

    async def get_var(self, variable: str, channel: str | None = None) -> str | None: ...

    async def set_var(self, variable: str, value: str, channel: str | None = None) -> None: ...

    async def core_show_channels(self, *, timeout: float | None = None) -> list[CoreShowChannel]: ...
