"""The FastAGI wire format: environment, every reply kind, and command quoting as res_agi reads it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voice.agi.errors import AgiArgumentError, AgiProtocolError
from voice.agi.fake_asterisk import environment_lines
from voice.agi.protocol import (
    MAX_COMMAND_BYTES,
    AgiEnvironment,
    AgiReader,
    AgiReply,
    HangupNotice,
    Quoted,
    format_command,
    parse_environment,
    parse_reply_line,
    quote,
)


def asterisk_parse_args(line: str) -> list[str]:
    """res_agi.c parse_args(), line by line in Python: how Asterisk 22 splits a command into words."""
    words: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    whitespace = True
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                current = []
                words.append("")
                whitespace = False
            continue
        if char in " \t" and not quoted and not escaped:
            if current is not None:
                words[-1] = "".join(current)
            current = None
            whitespace = True
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            current = []
            words.append("")
            whitespace = False
        assert current is not None
        current.append(char)
        escaped = False
    if current is not None:
        words[-1] = "".join(current)
    return words


def read_all(data: bytes, *, expect_environment: bool = False) -> list[object]:
    return list(AgiReader(expect_environment=expect_environment).feed(data))


# --- environment -------------------------------------------------------------------------------------


def test_environment_block_becomes_a_typed_environment_with_unknown_caller_id_as_none() -> None:
    [env] = read_all(b"".join(environment_lines()), expect_environment=True)
    assert isinstance(env, AgiEnvironment)
    assert env.request == "agi://127.0.0.1:4573/ivr"
    assert env.network_script == "ivr"
    assert env.flow == "ivr"
    assert env.channel == "Local/s@caller-00000000;1"
    assert env.uniqueid == "1795537810.0"
    assert env.callerid is None
    assert env.calleridname is None
    assert env.dnid is None
    assert env.linkedid is None
    assert (env.context, env.extension, env.priority) == ("ivr-test", "s", "2")
    assert (env.language, env.channel_type, env.version) == ("en", "Local", "22.10.1")
    assert env.accountcode == ""
    assert env.variables["agi_callingpres"] == "67"
    assert env.variables["agi_callerid"] == "unknown"
    assert env.arguments == ()


def test_environment_keeps_caller_id_linkedid_and_numbered_arguments_in_order() -> None:
    lines = [
        "agi_request: agi://10.0.0.1/sales/?lang=es",
        "agi_channel: PJSIP/trunk-0001",
        "agi_uniqueid: 1.2",
        "agi_linkedid: 1.1",
        "agi_callerid: 5551234",
        "agi_calleridname: Alice Smith",
        "agi_dnid: 900100200",
        "agi_arg_10: ten",
        "agi_arg_2: two",
        "agi_arg_1: one, with: colons",
    ]
    env = parse_environment(lines)
    assert env.network_script == "sales/?lang=es"  # derived from the URL when agi_network_script is absent
    assert env.flow == "sales"
    assert (env.callerid, env.calleridname, env.dnid, env.linkedid) == (
        "5551234",
        "Alice Smith",
        "900100200",
        "1.1",
    )
    assert env.arguments == ("one, with: colons", "two", "ten")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["GET / HTTP/1.1"], "not an agi_"),
        (["agi_request agi://x/y"], "not an agi_"),
        (["agi_channel: SIP/1", "agi_uniqueid: 1"], "agi_request"),
        (["agi_request: agi://x/y"], "agi_channel, agi_uniqueid"),
    ],
)
def test_environment_without_what_asterisk_always_sends_is_refused(lines: list[str], message: str) -> None:
    with pytest.raises(AgiProtocolError, match=message):
        parse_environment(lines)


def test_a_peer_that_is_not_asterisk_is_refused_at_its_first_line() -> None:
    reader = AgiReader()
    with pytest.raises(AgiProtocolError):
        reader.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(AgiProtocolError, match="already failed"):
        reader.feed(b"agi_request: x\n")


# --- replies -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("200 result=0", AgiReply(200, result=0, result_text="0")),
        ("200 result=1 ()", AgiReply(200, result=1, result_text="1", data="")),
        ("200 result=1 (bar)", AgiReply(200, result=1, result_text="1", data="bar")),
        (
            "200 result=1 (Local/s@caller-00000000;1)",
            AgiReply(200, result=1, result_text="1", data="Local/s@caller-00000000;1"),
        ),
        ("200 result=1 (a (b) c)", AgiReply(200, result=1, result_text="1", data="a (b) c")),
        ("200 result=0 endpos=11360", AgiReply(200, result=0, result_text="0", endpos=11360)),
        ("200 result=57 endpos=19360", AgiReply(200, result=57, result_text="57", endpos=19360)),
        ("200 result=-1 endpos=0", AgiReply(200, result=-1, result_text="-1", endpos=0)),
        ("200 result= (timeout)", AgiReply(200, result=None, result_text="", data="timeout")),
        ("200 result=12 (timeout)", AgiReply(200, result=12, result_text="12", data="timeout")),
        ("200 result=0123", AgiReply(200, result=123, result_text="0123")),
        ("200 result=*9", AgiReply(200, result=None, result_text="*9")),
        ("200 result=-2", AgiReply(200, result=-2, result_text="-2")),
        ("200 result=49 (dtmf) endpos=8000", AgiReply(200, 49, "49", "dtmf", 8000)),
        ("200 result=-1 (writefile)", AgiReply(200, -1, "-1", "writefile")),
        ("510 Invalid or unknown command", AgiReply(510, message="Invalid or unknown command")),
        (
            "511 Command Not Permitted on a dead channel or intercept routine",
            AgiReply(511, message="Command Not Permitted on a dead channel or intercept routine"),
        ),
        (
            "520 Invalid command syntax.  Proper usage not available.",
            AgiReply(520, message="Invalid command syntax.  Proper usage not available."),
        ),
        ("HANGUP", HangupNotice()),
    ],
)
def test_each_reply_line_parses_to_its_typed_value(line: str, expected: AgiReply | HangupNotice) -> None:
    assert parse_reply_line(line) == expected
    assert read_all(line.encode() + b"\n") == [expected]


def test_timeout_flag_is_the_timeout_data() -> None:
    assert AgiReply(200, result_text="", data="timeout").timed_out
    assert not AgiReply(200, result=23, result_text="23").timed_out


@pytest.mark.parametrize(
    "line",
    [
        "200",
        "200 ok",
        "200 result=1 bar",
        "200 result=1 (bar",
        "200 result=0 endpos=",
        "200 result=0  endpos=5",
        "20 result=0",
        "hangup",
        "HANGUP now",
        "agi_request: x",
        "\x00\xff",
    ],
)
def test_malformed_reply_lines_raise_protocol_error(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply_line(line)
    with pytest.raises(AgiProtocolError):
        read_all(line.encode("utf-8", "surrogateescape") + b"\n")


def test_520_usage_block_becomes_one_reply_with_the_usage_text() -> None:
    data = (
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        b"\n"
        b"200 result=0 is just text here\n"
        b"Returns the digits received from the channel at the other end.\n"
        b"520 End of proper usage.\n"
        b"200 result=0\n"
    )
    events = read_all(data)
    assert events == [
        AgiReply(
            520,
            message="Invalid command syntax.  Proper usage follows:",
            usage=(
                "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
                "\n"
                "200 result=0 is just text here\n"
                "Returns the digits received from the channel at the other end."
            ),
        ),
        AgiReply(200, result=0, result_text="0"),
    ]
    with pytest.raises(AgiProtocolError, match="multi-line"):
        parse_reply_line("520-Invalid command syntax.  Proper usage follows:")


def test_hangup_line_arrives_before_the_reply_it_precedes() -> None:
    assert read_all(b"HANGUP\n200 result=1 (bar)\n") == [
        HangupNotice(),
        AgiReply(200, result=1, result_text="1", data="bar"),
    ]


def test_events_do_not_depend_on_how_the_bytes_are_chunked() -> None:
    data = (
        b"".join(environment_lines()) + b"200 result=0\r\n\nHANGUP\n520-x\ny\n520 z\n200 result= (timeout)\n"
    )
    whole = AgiReader().feed(data)
    reader = AgiReader()
    one_by_one = [event for index in range(len(data)) for event in reader.feed(data[index : index + 1])]
    assert one_by_one == whole
    assert len(whole) == 5


def test_an_endless_line_is_refused_instead_of_buffered() -> None:
    reader = AgiReader(expect_environment=False, max_line_bytes=100)
    reader.feed(b"2" * 100)
    with pytest.raises(AgiProtocolError, match="longer than 100"):
        reader.feed(b"0")


def test_eof_in_the_middle_of_a_reply_is_a_protocol_error_and_between_replies_is_not() -> None:
    reader = AgiReader(expect_environment=False)
    reader.feed(b"200 result=0\n")
    reader.feed_eof()
    for data in (b"200 res", b"520-Invalid\nusage\n", b""):
        partial = AgiReader(expect_environment=data == b"")
        partial.feed(data)
        with pytest.raises(AgiProtocolError, match="connection closed"):
            partial.feed_eof()


# --- commands ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "arguments", "line"),
    [
        ("ANSWER", (), b"ANSWER\n"),
        ("GET VARIABLE", ("CALLERID(num)",), b"GET VARIABLE CALLERID(num)\n"),
        ("STREAM FILE", ("hello-world", Quoted("#")), b'STREAM FILE hello-world "#"\n'),
        ("GET DATA", ("beep", 2000, 4), b"GET DATA beep 2000 4\n"),
        ("SAY DIGITS", ("123", Quoted("")), b'SAY DIGITS 123 ""\n'),
        ("GET FULL VARIABLE", ("${FOO}-${CALLERID(num)}",), b"GET FULL VARIABLE ${FOO}-${CALLERID(num)}\n"),
        ("EXEC", ("Dial", "PJSIP/100,30,tT"), b"EXEC Dial PJSIP/100,30,tT\n"),
        ("SET VARIABLE", ("GREETING", "hola mundo"), b'SET VARIABLE GREETING "hola mundo"\n'),
        ("SET VARIABLE", ("X", ""), b'SET VARIABLE X ""\n'),
        ("VERBOSE", ('say "hi"', 1), b'VERBOSE "say \\"hi\\"" 1\n'),
        ("SET VARIABLE", ("PATH", "C:\\temp"), b'SET VARIABLE PATH "C:\\\\temp"\n'),
        ("SET VARIABLE", ("T", "a\tb"), b'SET VARIABLE T "a\tb"\n'),
        ("SET VARIABLE", ("NAME", "José"), "SET VARIABLE NAME José\n".encode()),
    ],
)
def test_commands_are_formatted_and_quoted_as_res_agi_reads_them(
    verb: str, arguments: tuple[str | int | Quoted, ...], line: bytes
) -> None:
    assert format_command(verb, *arguments) == line
    words = [str(a.value) if isinstance(a, Quoted) else str(a) for a in arguments]
    assert asterisk_parse_args(line.decode().rstrip("\n")) == [*verb.split(" "), *words]


@pytest.mark.parametrize("bad", ["x\nHANGUP", "x\r", "\n", "a\x00b", "lone \udcff surrogate"])
def test_arguments_that_would_break_the_command_line_are_refused(bad: str) -> None:
    with pytest.raises(AgiArgumentError):
        format_command("SET VARIABLE", "X", bad)
    with pytest.raises(AgiArgumentError):
        format_command("STREAM FILE", "x", Quoted(bad))
    with pytest.raises(AgiArgumentError):
        quote(bad)


@pytest.mark.parametrize("verb", ["", "GET  VARIABLE", "ANSWER\nHANGUP", "GET-DATA", " ANSWER", "FAILURE"])
def test_command_names_are_letters_and_single_spaces_only(verb: str) -> None:
    with pytest.raises(AgiArgumentError):
        format_command(verb)


def test_commands_asterisk_would_cut_or_truncate_are_refused() -> None:
    format_command("SET VARIABLE", "X", "v" * (MAX_COMMAND_BYTES - len("SET VARIABLE X \n")))
    with pytest.raises(AgiArgumentError, match="bytes"):
        format_command("SET VARIABLE", "X", "v" * MAX_COMMAND_BYTES)
    with pytest.raises(AgiArgumentError, match="words"):
        format_command("EXEC", *(["x"] * 127))
    with pytest.raises(AgiArgumentError, match="bool"):
        format_command("SET MUSIC", True)  # a bool is an int to Python, not to Asterisk


def test_the_parse_args_oracle_matches_asterisk_on_its_corner_cases() -> None:
    assert asterisk_parse_args('SAY DIGITS 123 ""') == ["SAY", "DIGITS", "123", ""]
    assert asterisk_parse_args('a "b c"d e') == ["a", "b cd", "e"]
    assert asterisk_parse_args("a\\ b c") == ["a b", "c"]
    assert asterisk_parse_args('x "q\\"uote"') == ["x", 'q"uote']
    assert asterisk_parse_args("a   b\t c") == ["a", "b", "c"]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(max_size=12), st.text(max_size=12).map(Quoted), st.integers(-(10**6), 10**6)),
        max_size=6,
    )
)
def test_any_arguments_reach_asterisk_as_the_same_words_or_are_refused(
    arguments: list[str | int | Quoted],
) -> None:
    texts = [str(a.value) if isinstance(a, Quoted) else str(a) for a in arguments]
    try:
        line = format_command("SET VARIABLE", *arguments)
    except AgiArgumentError:
        assert any(set(text) & set("\n\r\0") for text in texts)
        return
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert asterisk_parse_args(line.decode().rstrip("\n")) == ["SET", "VARIABLE", *texts]
