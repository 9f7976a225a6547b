"""AMI event parsing: the modelled events, as Asterisk 22.10 wrote them in the recording."""

from __future__ import annotations

from typing import Any

import pytest

from voice.ami.errors import AmiProtocolError
from voice.ami.events import (
    MODELLED,
    AGIExecEnd,
    AGIExecStart,
    CoreShowChannel,
    CoreShowChannelsComplete,
    DialBegin,
    DialEnd,
    FullyBooted,
    Hangup,
    HangupRequest,
    Newchannel,
    Newexten,
    Newstate,
    OriginateReason,
    OriginateResponse,
    SoftHangupRequest,
    UnknownAmiEvent,
    VarSet,
    parse_event,
)
from voice.ami.protocol import AmiMessage

CHANNEL = {
    "Privilege": "call,all",
    "Channel": "Local/s@caller-00000005;1",
    "ChannelState": "6",
    "ChannelStateDesc": "Up",
    "CallerIDNum": "5551234",
    "CallerIDName": "Alice",
    "ConnectedLineNum": "<unknown>",
    "ConnectedLineName": "<unknown>",
    "Language": "en",
    "AccountCode": "",
    "Context": "ivr-test",
    "Exten": "s",
    "Priority": "2",
    "Uniqueid": "1795537883.10",
    "Linkedid": "1795537883.10",
}


def message(name: str, **fields: str) -> AmiMessage:
    return AmiMessage((("Event", name), *fields.items()))


CASES: list[tuple[AmiMessage, type, str, Any]] = [
    (message("FullyBooted", Status="Fully Booted", Uptime="76"), FullyBooted, "status", "Fully Booted"),
    (message("Newchannel", **CHANNEL), Newchannel, "channel_state", 6),
    (message("Newstate", **CHANNEL), Newstate, "channel_state_desc", "Up"),
    (
        message("Newexten", **CHANNEL, Application="AGI", AppData="agi://127.0.0.1:4573/ivr"),
        Newexten,
        "app_data",
        "agi://127.0.0.1:4573/ivr",
    ),
    (message("VarSet", **CHANNEL, Variable="APP_CALLID", Value="abc123"), VarSet, "value", "abc123"),
    (
        message("Hangup", **CHANNEL, Cause="16", **{"Cause-txt": "Normal Clearing"}),
        Hangup,
        "cause_txt",
        "Normal Clearing",
    ),
    (message("HangupRequest", **CHANNEL, Cause="0"), HangupRequest, "cause", 0),
    (message("SoftHangupRequest", **CHANNEL, Cause="32"), SoftHangupRequest, "cause", 32),
    (
        message("DialBegin", DestChannel="Local/s@caller-00000005;1", DialString="s@caller"),
        DialBegin,
        "dial_string",
        "s@caller",
    ),
    (message("DialEnd", DestUniqueid="1795537883.10", DialStatus="ANSWER"), DialEnd, "dial_status", "ANSWER"),
    (
        message("AGIExecStart", **CHANNEL, CommandId="685859475", Command="ANSWER"),
        AGIExecStart,
        "command",
        "ANSWER",
    ),
    (
        message("AGIExecEnd", **CHANNEL, Command="ANSWER", ResultCode="511", Result="Command Not Permitted"),
        AGIExecEnd,
        "result_code",
        511,
    ),
    (
        message("OriginateResponse", ActionID="o1", Response="Success", Reason="4", Uniqueid="1.1"),
        OriginateResponse,
        "reason",
        4,
    ),
    (
        message("CoreShowChannel", **CHANNEL, Application="AGI", Duration="00:00:07"),
        CoreShowChannel,
        "duration",
        "00:00:07",
    ),
    (
        message("CoreShowChannelsComplete", ActionID="c1", EventList="Complete", ListItems="2"),
        CoreShowChannelsComplete,
        "list_items",
        2,
    ),
]


@pytest.mark.parametrize(
    ("raw", "model", "field", "value"), CASES, ids=[case[0].event or "" for case in CASES]
)
def test_each_modelled_event_parses_to_its_model(
    raw: AmiMessage, model: type, field: str, value: Any
) -> None:
    event = parse_event(raw)
    assert type(event) is model
    assert getattr(event, field) == value
    assert event.raw is raw and event.event == raw.event


def test_the_table_covers_every_modelled_event() -> None:
    assert {(case[0].event or "").lower() for case in CASES} == set(MODELLED)


def test_channel_fields_are_typed_and_unknown_caller_ids_are_none() -> None:
    event = parse_event(message("Newexten", **CHANNEL, Extension="s", Application="NoOp", AppData=""))
    assert isinstance(event, Newexten)
    assert (event.channel, event.uniqueid, event.linkedid, event.priority) == (
        "Local/s@caller-00000005;1",
        "1795537883.10",
        "1795537883.10",
        2,
    )
    assert (event.caller_id_num, event.caller_id_name) == ("5551234", "Alice")
    assert (event.connected_line_num, event.connected_line_name) == (None, None)
    assert event.privilege == "call,all" and event.account_code == ""


def test_originate_outcomes_as_recorded() -> None:
    answered = parse_event(
        message(
            "OriginateResponse",
            ActionID="orig-1",
            Response="Success",
            Channel="Local/s@caller-00000005;1",
            Context="ivr-test",
            Exten="s",
            Reason="4",
            Uniqueid="1795537883.10",
            CallerIDNum="5551234",
            CallerIDName="Alice",
        )
    )
    failed = parse_event(
        message(
            "OriginateResponse",
            ActionID="orig-fail",
            Response="Failure",
            Channel="Local/s@no-such-context",
            Application="Wait",
            Data="1",
            Reason="0",
            Uniqueid="<unknown>",
            CallerIDNum="<unknown>",
            CallerIDName="<unknown>",
        )
    )
    odd = parse_event(message("OriginateResponse", Response="Failure", Reason="99"))
    assert isinstance(answered, OriginateResponse) and isinstance(failed, OriginateResponse)
    assert isinstance(odd, OriginateResponse)
    assert (answered.success, answered.outcome, answered.action_id) == (
        True,
        OriginateReason.ANSWERED,
        "orig-1",
    )
    assert (failed.success, failed.outcome, failed.uniqueid, failed.caller_id_num) == (
        False,
        OriginateReason.FAILED,
        None,
        None,
    )
    assert odd.outcome is None and odd.reason == 99


def test_fields_asterisk_adds_are_kept_under_their_wire_names() -> None:
    event = parse_event(message("Hangup", **CHANNEL, Cause="16", TenantID="t-1"))
    assert event.model_extra == {"TenantID": "t-1"}


def test_names_are_matched_without_case_and_unknown_events_keep_everything() -> None:
    assert type(parse_event(message("hangup", Cause="16"))) is Hangup
    raw = message("QueueMemberStatus", Queue="sales", Interface="PJSIP/1001", Status="1")
    event = parse_event(raw)
    assert isinstance(event, UnknownAmiEvent)
    assert event.raw is raw and event.model_extra == {
        "Queue": "sales",
        "Interface": "PJSIP/1001",
        "Status": "1",
    }


def test_repeated_keys_stay_on_the_raw_message() -> None:
    raw = AmiMessage((("Event", "Newchannel"), ("ChanVariable", "A=1"), ("ChanVariable", "B=2")))
    event = parse_event(raw)
    assert event.raw is not None and event.raw.get_all("ChanVariable") == ["A=1", "B=2"]


@pytest.mark.parametrize(
    "raw",
    [
        AmiMessage.of(Response="Success", ActionID="1"),  # a response, not an event
        message("Hangup", Cause="sixteen"),
        message("OriginateResponse", Reason="4"),  # no Response
    ],
)
def test_what_cannot_be_read_is_a_protocol_error(raw: AmiMessage) -> None:
    with pytest.raises(AmiProtocolError):
        parse_event(raw)
