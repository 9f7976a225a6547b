"""A fake AMI behind `AmiPort`, for tests of the dialer: records every action, answers from a script (or
with success), and pushes events to the subscribers through the real `AmiSubscribers`.

    ami = FakeAmi()
    ami.script_originate(OriginateReason.BUSY)               # the next originate is busy
    ami.script("Hangup", AmiActionError("Hangup", "No such channel"))
    result = await dialer_under_test(ami)
    await ami.push(event("Hangup", Channel="PJSIP/100-00000001", Uniqueid="1.1", Cause="16"))
    assert ami.sent("Originate")[0].get("Channel") == "PJSIP/100"

Events are built from wire fields and go through the real `parse_event`, so a test cannot build an event
the real client would not produce. Like Asterisk, an originate's OriginateResponse is also broadcast.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voice.ami.dispatch import AmiSubscribers, Handler
from voice.ami.errors import AmiActionError, AmiError
from voice.ami.events import AmiEvent, CoreShowChannel, OriginateReason, OriginateResponse, parse_event
from voice.ami.protocol import AmiMessage, Fields, FieldValue, variables
from voice.subscription import Subscription

if TYPE_CHECKING:
    from voice.ami.client import AmiClient
    from voice.ami.port import AmiPort


def event(name: str, *pairs: tuple[str, str], **fields: str) -> AmiEvent:
    """`event("Hangup", Channel="PJSIP/1-01", Uniqueid="1.1", Cause="16")`, parsed as the client would."""
    return parse_event(AmiMessage.of(("Event", name), *pairs, **fields))


def originate_response(
    action_id: str,
    reason: OriginateReason | int = OriginateReason.ANSWERED,
    *,
    channel: str = "",
    uniqueid: str = "<unknown>",
) -> OriginateResponse:
    answered = int(reason) == OriginateReason.ANSWERED
    result = event(
        "OriginateResponse",
        Privilege="call,all",
        ActionID=action_id,
        Response="Success" if answered else "Failure",
        Channel=channel,
        Reason=str(int(reason)),
        Uniqueid=uniqueid,
        CallerIDNum="<unknown>",
        CallerIDName="<unknown>",
    )
    assert isinstance(result, OriginateResponse)
    return result


@dataclass(frozen=True, slots=True)
class SentAction:
    action: str
    action_id: str
    fields: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str | None:
        return AmiMessage(self.fields).get(key)

    def get_all(self, key: str) -> list[str]:
        return AmiMessage(self.fields).get_all(key)


class FakeAmi:
    def __init__(self) -> None:
        self.subscribers = AmiSubscribers()
        self.actions: list[SentAction] = []
        self.variables: dict[tuple[str | None, str], str] = {}  # (channel or None, name) -> value
        self.channels: list[CoreShowChannel] = []  # what core_show_channels() answers
        self._originates: deque[OriginateReason | int | AmiError] = deque()
        self._scripts: dict[str, deque[AmiMessage | AmiError]] = {}
        self._ids = itertools.count(1)

    # --- what tests use ---------------------------------------------------------------------------

    def script(self, action: str, reply: AmiMessage | AmiError) -> None:
        """The next `action` (any case) answers `reply`, or raises it. Queue several for several."""
        self._scripts.setdefault(action.lower(), deque()).append(reply)

    def script_originate(self, outcome: OriginateReason | int | AmiError) -> None:
        """What the next originate gives: an OriginateResponse with this reason, or the error raised."""
        self._originates.append(outcome)

    def sent(self, action: str) -> list[SentAction]:
        return [sent for sent in self.actions if sent.action.lower() == action.lower()]

    async def push(self, *events: AmiEvent | AmiMessage) -> None:
        for item in events:
            await self.subscribers.dispatch(item if isinstance(item, AmiEvent) else parse_event(item))

    def _record(self, action: str, fields: Fields, action_id: str | None) -> SentAction:
        pairs: list[tuple[str, str]] = []
        items = fields.items() if isinstance(fields, Mapping) else fields
        for key, value in items:
            if value is None:
                continue
            if isinstance(value, bool):
                pairs.append((key, "true" if value else "false"))
            elif isinstance(value, int | str):
                pairs.append((key, str(value)))
            else:
                pairs.extend((key, item) for item in value)
        sent = SentAction(action, action_id or f"fake-{next(self._ids)}", tuple(pairs))
        self.actions.append(sent)
        return sent

    def _scripted(self, sent: SentAction) -> AmiMessage:
        queue = self._scripts.get(sent.action.lower())
        reply = queue.popleft() if queue else AmiMessage.of(Response="Success", ActionID=sent.action_id)
        if isinstance(reply, AmiError):
            raise reply
        if (reply.response or "").lower() == "error":
            raise AmiActionError(sent.action, reply.message, reply)
        return reply

    # --- AmiPort ----------------------------------------------------------------------------------

    def subscribe(self, handler: Handler, *, events: Iterable[str] | None = None) -> Subscription:
        return self.subscribers.subscribe(handler, events=events)

    async def send_action(
        self, action: str, fields: Fields = (), *, action_id: str | None = None, timeout: float | None = None
    ) -> AmiMessage:
        return self._scripted(self._record(action, fields, action_id))

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
    ) -> OriginateResponse:
        fields: list[tuple[str, FieldValue | None]] = [
            ("Channel", channel),
            ("Context", context),
            ("Exten", exten),
            ("Priority", priority),
            ("Application", application),
            ("Data", data),
            ("CallerID", caller_id),
            ("Timeout", None if timeout is None else round(timeout * 1000)),
            ("Account", account),
            ("ChannelId", channel_id),
            ("OtherChannelId", other_channel_id),
            ("Async", True),
            ("Variable", _variables(variables)),
        ]
        sent = self._record("Originate", fields, action_id)
        outcome = self._originates.popleft() if self._originates else OriginateReason.ANSWERED
        if isinstance(outcome, AmiError):
            raise outcome
        answered = int(outcome) == OriginateReason.ANSWERED
        result = originate_response(
            sent.action_id,
            outcome,
            channel=f"{channel}-fake;1" if answered else channel,
            uniqueid=f"fake.{next(self._ids)}" if answered else "<unknown>",
        )
        await self.push(result)
        return result

    async def hangup(self, channel: str, cause: int | None = None) -> None:
        self._scripted(self._record("Hangup", {"Channel": channel, "Cause": cause}, None))

    async def get_var(self, variable: str, channel: str | None = None) -> str | None:
        self._scripted(self._record("Getvar", {"Channel": channel, "Variable": variable}, None))
        return self.variables.get((channel, variable))

    async def set_var(self, variable: str, value: str, channel: str | None = None) -> None:
        self._scripted(
            self._record("Setvar", {"Channel": channel, "Variable": variable, "Value": value}, None)
        )
        self.variables[(channel, variable)] = value

    async def core_show_channels(self, *, timeout: float | None = None) -> list[CoreShowChannel]:
        self._scripted(self._record("CoreShowChannels", (), None))
        return list(self.channels)


def _variables(values: Mapping[str, str] | None) -> list[str]:
    return variables(values or {})


if TYPE_CHECKING:  # both implement the port (checked by mypy, costs nothing at run time)

    def _implements_port(real: AmiClient, fake: FakeAmi) -> tuple[AmiPort, AmiPort]:
        return real, fake
