"""The AMI wire format: framing in both directions, without sockets."""

from __future__ import annotations

import pytest

from voice.ami.errors import AmiArgumentError, AmiProtocolError
from voice.ami.protocol import AmiBanner, AmiItem, AmiMessage, AmiReader, format_action, variables

# As recorded from Asterisk 22.10 (ami_trace.txt): banner, a response, an event with empty values, and
# values with colons.
RECORDED = (
    b"Asterisk Call Manager/11.0.0\r\n"
    b"Response: Success\r\nActionID: ping-1\r\nPing: Pong\r\nTimestamp: 1795537883.151640\r\n\r\n"
    b"Event: Newexten\r\nPrivilege: dialplan,all\r\nChannel: Local/s@caller-00000005;1\r\n"
    b"AccountCode: \r\nExten: s\r\nApplication: AGI\r\nAppData: agi://127.0.0.1:4573/ivr\r\n\r\n"
    b"Event: SuccessfulAuth\r\nEventTV: 2026-11-24T16:31:23.151+0000\r\n"
    b"LocalAddress: IPV4/TCP/127.0.0.1/5038\r\n\r\n"
)


def read_all(data: bytes, **options: bool) -> list[AmiItem]:
    reader = AmiReader(**options)
    items = reader.feed(data)
    reader.feed_eof()
    return items


def test_the_recorded_stream_frames_into_banner_and_messages() -> None:
    banner, ping, newexten, auth = read_all(RECORDED)
    assert banner == AmiBanner("Asterisk Call Manager/11.0.0", "11.0.0")
    assert isinstance(ping, AmiMessage) and isinstance(newexten, AmiMessage) and isinstance(auth, AmiMessage)
    assert (ping.response, ping.action_id, ping["Ping"], ping.event) == ("Success", "ping-1", "Pong", None)
    assert newexten.event == "Newexten" and newexten.response is None
    assert newexten["AppData"] == "agi://127.0.0.1:4573/ivr"  # split at the first colon only
    assert newexten["AccountCode"] == ""  # present, empty
    assert newexten.get("accountcode") == ""  # keys ignore case
    assert auth["EventTV"] == "2026-11-24T16:31:23.151+0000"


def test_any_chunking_gives_the_same_items() -> None:
    whole = read_all(RECORDED)
    for size in (1, 2, 3, 7, 64):
        reader = AmiReader()
        items: list[AmiItem] = []
        for start in range(0, len(RECORDED), size):
            items += reader.feed(RECORDED[start : start + size])
        reader.feed_eof()
        assert items == whole, size


def test_repeated_keys_are_kept_in_order_and_output_lines_join() -> None:
    [message] = read_all(
        b"Response: Success\r\nActionID: 7\r\nMessage: Command output follows\r\n"
        b"Output: Channel              Location   State\r\nOutput:   PJSIP/1: s@default:1   Up\r\n"
        b"Output: \r\n\r\n",
        expect_banner=False,
    )
    assert isinstance(message, AmiMessage)
    assert message.get_all("Output") == [
        "Channel              Location   State",
        "  PJSIP/1: s@default:1   Up",
        "",
    ]
    assert message.output == "Channel              Location   State\n  PJSIP/1: s@default:1   Up\n"
    assert message.message == "Command output follows"
    assert message.as_dict()["Output"] == "Channel              Location   State"


def test_legacy_follows_output_is_read_up_to_end_command() -> None:
    [message, after] = read_all(
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 9\r\n"
        b"Name: value lines: with colons\r\nsecond line\r\n--END COMMAND--\r\n\r\n"
        b"Event: FullyBooted\r\n\r\n",
        expect_banner=False,
    )
    assert isinstance(message, AmiMessage) and isinstance(after, AmiMessage)
    assert (message.response, message.action_id) == ("Follows", "9")
    assert message.output == "Name: value lines: with colons\nsecond line"
    assert after.event == "FullyBooted"


def test_bare_newlines_and_extra_blank_lines_are_accepted() -> None:
    items = read_all(b"\r\n\nEvent: A\nKey: v\n\n\n\r\nEvent: B\r\n\r\n", expect_banner=False)
    assert [item.event for item in items if isinstance(item, AmiMessage)] == ["A", "B"]


def test_an_event_with_a_response_field_is_an_event() -> None:
    [message] = read_all(
        b"Event: OriginateResponse\r\nActionID: o1\r\nResponse: Failure\r\n\r\n", expect_banner=False
    )
    assert isinstance(message, AmiMessage)
    assert (message.event, message.response, message.get("Response")) == (
        "OriginateResponse",
        None,
        "Failure",
    )


def test_list_markers() -> None:
    start = AmiMessage.of(Response="Success", EventList="start")
    end = AmiMessage.of(Event="CoreShowChannelsComplete", EventList="Complete")
    assert start.is_list_start and not start.is_list_end
    assert end.is_list_end and not end.is_list_start


@pytest.mark.parametrize(
    ("data", "options"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n", {}),  # not Asterisk
        (b"Response: Success\r\nno colon here\r\n\r\n", {"expect_banner": False}),
        (b": empty key\r\n\r\n", {"expect_banner": False}),
        (b"Event: X\r\n" + b"A" * 70000, {"expect_banner": False}),  # a line without end
    ],
)
def test_what_is_not_ami_is_a_protocol_error_and_the_reader_stays_failed(
    data: bytes, options: dict[str, bool]
) -> None:
    reader = AmiReader(**options)
    with pytest.raises(AmiProtocolError):
        reader.feed(data)
    with pytest.raises(AmiProtocolError):
        reader.feed(b"Event: Y\r\n\r\n")


def test_eof_inside_a_message_is_an_error_between_messages_it_is_not() -> None:
    reader = AmiReader(expect_banner=False)
    reader.feed(b"Event: A\r\n\r\n")
    reader.feed_eof()
    reader = AmiReader(expect_banner=False)
    reader.feed(b"Event: A\r\nKey: v\r\n")
    with pytest.raises(AmiProtocolError):
        reader.feed_eof()


def test_too_many_fields_are_refused() -> None:
    reader = AmiReader(expect_banner=False, max_fields=3)
    with pytest.raises(AmiProtocolError):
        reader.feed(b"A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n")


def test_an_action_is_formatted_as_asterisk_expects() -> None:
    data = format_action(
        "Originate",
        "orig-1",
        [
            ("Channel", "Local/s@caller"),
            ("Context", "ivr-test"),
            ("Priority", 1),
            ("CallerID", '"Alice" <5551234>'),
            ("Application", None),  # left out
            ("Async", True),
            ("Variable", variables({"APP_CALLID": "abc123", "LANG": "es"})),
        ],
    )
    assert data == (
        b"Action: Originate\r\nActionID: orig-1\r\nChannel: Local/s@caller\r\nContext: ivr-test\r\n"
        b'Priority: 1\r\nCallerID: "Alice" <5551234>\r\nAsync: true\r\n'
        b"Variable: APP_CALLID=abc123\r\nVariable: LANG=es\r\n\r\n"
    )
    assert format_action("Ping", "p1", {}) == b"Action: Ping\r\nActionID: p1\r\n\r\n"
    assert format_action("Login", "l1", {"Events": False}).endswith(b"Events: false\r\n\r\n")


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("Setvar", {"Value": "x\r\nAction: Hangup"}),  # would inject a second action
        ("Setvar", {"Value": "x\n"}),
        ("Setvar", {"Bad Key": "x"}),
        ("Setvar", {"ActionID": "mine"}),
        ("Bad\r\nAction", {}),
        ("Setvar", {"Value": 1.5}),
    ],
)
def test_actions_that_would_break_the_framing_are_refused(action: str, fields: dict[str, object]) -> None:
    with pytest.raises(AmiArgumentError):
        format_action(action, "a1", fields)  # type: ignore[arg-type]


def test_variable_names_with_an_equals_sign_are_refused() -> None:
    with pytest.raises(AmiArgumentError):
        variables({"A=B": "c"})
