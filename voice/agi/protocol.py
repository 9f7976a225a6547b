"""The FastAGI wire format, pure: no sockets, no clocks.

Asterisk connects, sends `agi_key: value` lines ending with a blank line, then answers each command line
we send with one reply:

    200 result=<value>[ (<data>)][ endpos=<n>]     the command ran (GET DATA: `result=` may be empty)
    510 Invalid or unknown command
    511 Command Not Permitted on a dead channel or intercept routine
    520-Invalid command syntax.  Proper usage follows:
    <usage text, any number of lines>
    520 End of proper usage.

and, once the channel has hung up, a single `HANGUP` line before the next reply (res_agi sends it as soon
as it notices, so it can also arrive while no command is running).

`AgiReader` turns bytes into those events incrementally (feed any chunking, get the same events), and only
ever raises `AgiProtocolError`. `format_command` builds command lines quoted the way res_agi's
`parse_args()` reads them and refuses what would break the framing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from voice.agi.errors import AgiArgumentError, AgiProtocolError
from voice.line_framing import LineReader

DEFAULT_PORT = 4573
# res_agi reads a command line into an 8 KiB buffer (AGI_BUF_LEN 8192, Asterisk 13+); a longer line is
# cut and its tail runs as a second command, so longer ones are refused rather than sent.
MAX_COMMAND_BYTES = 8191
# parse_args() keeps at most MAX_ARGS - 1 = 127 words (command words included) and drops the rest.
MAX_COMMAND_WORDS = 127
# Limits on what we accept, so a broken or hostile peer cannot make us buffer without end.
MAX_LINE_BYTES = 65536
MAX_ENVIRONMENT_LINES = 1024
MAX_USAGE_LINES = 1024

_ENV_KEY = re.compile(r"agi_[A-Za-z0-9_]+")
_STATUS = re.compile(r"(\d{3})([ -])(.*)", re.DOTALL)
_RESULT = re.compile(r"result=(\S*)(?: \((.*)\))?(?: endpos=(-?\d+))?", re.DOTALL)
# Nearly every reply: `200 result=...` in one match instead of three (_STATUS, _RESULT, _STATUS again).
_OK = re.compile(r"200 result=(\S*)(?: \((.*)\))?(?: endpos=(-?\d+))?", re.DOTALL)
_INTEGER = re.compile(r"-?\d+")
_ARG_INDEX = re.compile(r"agi_arg_(\d+)")
_VERB = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
# Inside a word these make parse_args() split, start a quote, or escape: the word must be quoted.
_NEEDS_QUOTES = frozenset(' \t"\\')
# These would end the command line early (newline, CR before it) or truncate it in C (NUL).
_FORBIDDEN = frozenset("\n\r\0")
# What Asterisk writes for "no value" in agi_callerid, agi_calleridname, agi_dnid and agi_rdnis.
_UNKNOWN = "unknown"


class AgiEnvironment(BaseModel):
    """The `agi_*` block Asterisk sends first. `variables` keeps every line as sent."""

    model_config = ConfigDict(frozen=True)

    request: str  # agi://127.0.0.1:4573/ivr
    network_script: str  # the part of the URL after host[:port]/, e.g. "ivr"
    channel: str
    uniqueid: str
    linkedid: str | None = None
    callerid: str | None = None  # None when Asterisk says `unknown`
    calleridname: str | None = None
    dnid: str | None = None
    rdnis: str | None = None
    context: str = ""
    extension: str = ""
    priority: str = ""
    language: str = ""
    channel_type: str = ""  # agi_type: PJSIP, Local, ...
    accountcode: str = ""
    version: str = ""
    arguments: tuple[str, ...] = ()  # agi_arg_1, agi_arg_2, ... in order
    variables: dict[str, str] = {}

    @property
    def flow(self) -> str:
        """The flow to run: the URL path without query string and surrounding slashes."""
        return self.network_script.split("?", 1)[0].strip("/")


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One reply line (or block, for `520-`). For 200, `result` is the number when `result=` holds one."""

    code: int
    result: int | None = None
    result_text: str = ""  # as sent: GET DATA digits keep leading zeros, `*`, or are empty
    data: str | None = None  # the text in parentheses: a variable's value, `timeout`, `dtmf`, ...
    endpos: int | None = None
    message: str = ""  # for non-200 replies: the text after the code
    usage: str = ""  # for a `520-` block: the usage lines between the first and the last

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"


@dataclass(frozen=True, slots=True)
class HangupNotice:
    """The bare `HANGUP` line: the channel is gone; the next command still gets its own reply."""


AgiEvent = AgiEnvironment | AgiReply | HangupNotice


@dataclass(frozen=True, slots=True)
class Quoted:
    """An argument always written in double quotes, e.g. escape digits (`"#"`, `""`) as Asterisk documents."""

    value: str


Argument = str | int | Quoted


# --- the environment ---------------------------------------------------------------------------------


def parse_environment_line(line: str) -> tuple[str, str]:
    key, colon, value = line.partition(":")
    if not colon or not _ENV_KEY.fullmatch(key):
        raise AgiProtocolError(f"not an agi_* environment line: {line[:80]!r}")
    return key, value.removeprefix(" ")


def parse_environment(lines: Iterable[str]) -> AgiEnvironment:
    """Build the environment from its lines (without the blank line that ends the block)."""
    variables: dict[str, str] = {}
    for line in lines:
        key, value = parse_environment_line(line)
        variables[key] = value
    return environment_from_variables(variables)


def environment_from_variables(variables: Mapping[str, str]) -> AgiEnvironment:
    missing = [key for key in ("agi_request", "agi_channel", "agi_uniqueid") if key not in variables]
    if missing:
        raise AgiProtocolError(f"AGI environment without {', '.join(missing)}")
    request = variables["agi_request"]
    script = variables.get("agi_network_script")
    if script is None:  # as res_agi computes it: everything after the first "/" following the host
        script = request.partition("://")[2].partition("/")[2]
    numbered = sorted(
        (int(match.group(1)), value)
        for key, value in variables.items()
        if (match := _ARG_INDEX.fullmatch(key)) is not None
    )
    return AgiEnvironment(
        request=request,
        network_script=script,
        channel=variables["agi_channel"],
        uniqueid=variables["agi_uniqueid"],
        linkedid=variables.get("agi_linkedid") or None,
        callerid=_known(variables.get("agi_callerid")),
        calleridname=_known(variables.get("agi_calleridname")),
        dnid=_known(variables.get("agi_dnid")),
        rdnis=_known(variables.get("agi_rdnis")),
        context=variables.get("agi_context", ""),
        extension=variables.get("agi_extension", ""),
        priority=variables.get("agi_priority", ""),
        language=variables.get("agi_language", ""),
        channel_type=variables.get("agi_type", ""),
        accountcode=variables.get("agi_accountcode", ""),
        version=variables.get("agi_version", ""),
        arguments=tuple(value for _, value in numbered),
        variables=dict(variables),
    )


def _known(value: str | None) -> str | None:
    return None if value is None or value in ("", _UNKNOWN) else value


# --- replies -----------------------------------------------------------------------------------------


def parse_reply_line(line: str) -> AgiReply | HangupNotice:
    """Parse a one-line reply. A `NNN-` line starts a block: use `AgiReader` for those."""
    if line == "HANGUP":
        return HangupNotice()
    ok = _OK.fullmatch(line)
    if ok is not None:
        return _ok_reply(ok)
    return _status_reply(line, _STATUS.fullmatch(line))


def _ok_reply(result: re.Match[str]) -> AgiReply:
    text, data, endpos = result.group(1), result.group(2), result.group(3)
    return AgiReply(
        code=200,
        result=int(text) if _INTEGER.fullmatch(text) else None,
        result_text=text,
        data=data,
        endpos=int(endpos) if endpos is not None else None,
    )


def _status_reply(line: str, status: re.Match[str] | None) -> AgiReply:
    if status is None:
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    code, separator, rest = int(status.group(1)), status.group(2), status.group(3)
    if separator == "-":
        raise AgiProtocolError(f"{code}- starts a multi-line reply; it cannot be parsed alone")
    if code != 200:
        return AgiReply(code=code, message=rest)
    result = _RESULT.fullmatch(rest)
    if result is None:
        raise AgiProtocolError(f"200 reply without a valid result=: {line[:80]!r}")
    return _ok_reply(result)


@dataclass(slots=True)
class _Block:
    code: int
    message: str
    lines: list[str]


class AgiReader(LineReader[AgiEvent]):
    """Bytes in, events out: `AgiEnvironment` once, then `AgiReply` and `HangupNotice` in order.

    Raises only `AgiProtocolError`; after one, the reader stays failed (the stream has lost its framing).
    Blank lines between replies are ignored. Bytes that are not UTF-8 are replaced, not fatal.
    """

    error = AgiProtocolError

    def __init__(self, *, expect_environment: bool = True, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._environment: dict[str, str] | None = {} if expect_environment else None
        self._block: _Block | None = None
        super().__init__(max_line_bytes=max_line_bytes)

    def feed_eof(self) -> None:
        """The peer closed the stream: fine between replies, a protocol error in the middle of one."""
        if self._failure is not None:
            return
        if self._buffer:
            self._fail("connection closed in the middle of a line")
        if self._environment is not None:
            self._fail("connection closed before the end of the AGI environment")
        if self._block is not None:
            self._fail(f"connection closed in the middle of a {self._block.code}- reply")

    @property
    def in_environment(self) -> bool:
        return self._environment is not None

    def _line(self, line: str) -> AgiEvent | None:
        if self._environment is not None:
            return self._environment_line(self._environment, line)
        if self._block is not None:
            return self._block_line(self._block, line)
        if line == "":
            return None
        ok = _OK.fullmatch(line)
        if ok is not None:
            return _ok_reply(ok)
        if line == "HANGUP":
            return HangupNotice()
        status = _STATUS.fullmatch(line)
        if status is not None and status.group(2) == "-":
            self._block = _Block(code=int(status.group(1)), message=status.group(3), lines=[])
            return None
        return _status_reply(line, status)

    def _environment_line(self, variables: dict[str, str], line: str) -> AgiEnvironment | None:
        if line == "":
            self._environment = None
            return environment_from_variables(variables)
        if len(variables) >= MAX_ENVIRONMENT_LINES:
            self._fail(f"AGI environment longer than {MAX_ENVIRONMENT_LINES} lines")
        # Each line is checked as it comes, so a peer that is not Asterisk is refused at its first line.
        key, value = parse_environment_line(line)
        variables[key] = value
        return None

    def _block_line(self, block: _Block, line: str) -> AgiReply | None:
        if line.startswith(f"{block.code} "):
            self._block = None
            return AgiReply(code=block.code, message=block.message, usage="\n".join(block.lines))
        if len(block.lines) >= MAX_USAGE_LINES:
            self._fail(f"{block.code}- reply longer than {MAX_USAGE_LINES} lines")
        block.lines.append(line)
        return None


# --- commands ----------------------------------------------------------------------------------------


def quote(value: str) -> str:
    """Double-quote a word for res_agi: inside quotes, backslash escapes `"` and `\\`."""
    _refuse_forbidden(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_argument(argument: Argument) -> str:
    if isinstance(argument, Quoted):
        return quote(argument.value)
    if isinstance(argument, bool):
        raise AgiArgumentError("a bool is not an AGI argument; pass the text Asterisk expects")
    if isinstance(argument, int):
        return str(argument)
    _refuse_forbidden(argument)
    if argument == "" or any(char in _NEEDS_QUOTES for char in argument):
        return quote(argument)
    return argument


def format_command(verb: str, *arguments: Argument) -> bytes:
    """`format_command("STREAM FILE", "hello-world", Quoted("#"))` -> b'STREAM FILE hello-world "#"\\n'."""
    if not _VERB.fullmatch(verb):
        raise AgiArgumentError(f"not an AGI command name: {verb!r}")
    if verb[:7].lower() == "failure":
        # res_agi ends the whole AGI session on a line starting with "failure".
        raise AgiArgumentError(f"{verb!r} would end the AGI session")
    words = len(verb.split(" ")) + len(arguments)
    if words > MAX_COMMAND_WORDS:
        raise AgiArgumentError(f"{words} words; Asterisk keeps only {MAX_COMMAND_WORDS}")
    line = " ".join([verb, *(format_argument(argument) for argument in arguments)]).encode() + b"\n"
    if len(line) > MAX_COMMAND_BYTES:
        raise AgiArgumentError(f"command of {len(line)} bytes; Asterisk reads at most {MAX_COMMAND_BYTES}")
    return line


def _refuse_forbidden(value: str) -> None:
    bad = _FORBIDDEN.intersection(value)
    if bad:
        names = ", ".join(sorted(repr(char) for char in bad))
        raise AgiArgumentError(f"argument contains {names}, which would break the command line")
    try:
        value.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from bytes decoded with surrogateescape
        raise AgiArgumentError(f"argument is not valid Unicode text: {exc.reason}") from None
