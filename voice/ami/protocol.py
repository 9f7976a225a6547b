"""The AMI wire format, pure: no sockets, no clocks.

On connect Asterisk sends one banner line (`Asterisk Call Manager/11.0.0`, Asterisk 22 included). After
that both sides exchange messages: `Key: Value` lines ending with CR LF, a blank line ends the message.

    Action: Originate            (we send)          Response: Success        (Asterisk answers)
    ActionID: orig-1                                ActionID: orig-1
    Channel: Local/s@caller                         Message: Originate successfully queued
    Variable: APP_CALLID=abc123
                                                    Event: OriginateResponse (later, same ActionID)

- Values may contain colons (`AppData: agi://127.0.0.1:4573/ivr`): a line splits at its first colon;
  one space after it is dropped, anything else (trailing spaces, empty values) is kept.
- Keys may repeat (`Variable:` on the way in, `Output:` lines of a Command reply on the way out): a
  message keeps every field in order; `get()` gives the first, `get_all()` every one, `output` the
  `Output:` lines joined with newlines. Key look-up ignores case, as Asterisk does.
- Asterisk 13 and older answered Command with `Response: Follows` and raw lines up to `--END COMMAND--`;
  those lines are kept as `Output` fields too.

`AmiReader` turns bytes into the banner and messages incrementally (any chunking gives the same result)
and only ever raises `AmiProtocolError`; `format_action` builds an action and refuses what would break the
framing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from voice.ami.errors import AmiArgumentError, AmiProtocolError
from voice.line_framing import LineReader

DEFAULT_PORT = 5038
MAX_LINE_BYTES = 65536
MAX_FIELDS = 4096
_BANNER = re.compile(r"(.*Call Manager(?: Proxy)?)/(\S+)\s*")
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.()-]*")  # what we send
_KEY_IN = re.compile(r"[^\s:][^:]*")  # what we accept: anything but empty, a colon, a leading blank
_END_COMMAND = "--END COMMAND--"
_FORBIDDEN = frozenset("\r\n\0")


@dataclass(frozen=True, slots=True)
class AmiBanner:
    text: str  # "Asterisk Call Manager/11.0.0"
    version: str  # "11.0.0": the AMI protocol version, not Asterisk's


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One message: its fields in order, as sent."""

    fields: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, *pairs: tuple[str, str], **fields: str) -> AmiMessage:
        """`AmiMessage.of(Event="Hangup", Channel="PJSIP/1-0001")`, or pairs for repeated keys."""
        return cls(tuple(pairs) + tuple(fields.items()))

    def get(self, key: str, default: str | None = None) -> str | None:
        wanted = key.lower()
        for name, value in self.fields:
            if name.lower() == wanted:
                return value
        return default

    def get_all(self, key: str) -> list[str]:
        wanted = key.lower()
        return [value for name, value in self.fields if name.lower() == wanted]

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    @property
    def event(self) -> str | None:
        """The event name, for an event (which may also carry `Response:`, like OriginateResponse)."""
        return self.get("Event")

    @property
    def response(self) -> str | None:
        """Success, Error, Goodbye, ... for the answer to an action (None for an event)."""
        return None if self.event is not None else self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    @property
    def message(self) -> str:
        return self.get("Message") or ""

    @property
    def output(self) -> str:
        return "\n".join(self.get_all("Output"))

    @property
    def is_list_start(self) -> bool:
        return (self.get("EventList") or "").lower() == "start"

    @property
    def is_list_end(self) -> bool:
        return (self.get("EventList") or "").lower() == "complete"

    def as_dict(self) -> dict[str, str]:
        """Each key once, with its first value (use `get_all` for repeated keys)."""
        result: dict[str, str] = {}
        for name, value in self.fields:
            result.setdefault(name, value)
        return result


AmiItem = AmiBanner | AmiMessage


class AmiReader(LineReader[AmiItem]):
    """Bytes in, items out: the banner first (if `expect_banner`), then one `AmiMessage` per blank line.

    Raises only `AmiProtocolError`; after one, the reader stays failed. CR LF and bare LF both end a line;
    extra blank lines between messages are ignored. Bytes that are not UTF-8 are replaced, not fatal.
    """

    error = AmiProtocolError

    def __init__(
        self,
        *,
        expect_banner: bool = True,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_fields: int = MAX_FIELDS,
    ) -> None:
        self._expect_banner = expect_banner
        self._fields: list[tuple[str, str]] = []
        self._raw_output = False  # inside a legacy `Response: Follows` body
        self._max_fields = max_fields
        super().__init__(max_line_bytes=max_line_bytes)

    @property
    def in_message(self) -> bool:
        return bool(self._fields)

    def feed_eof(self) -> None:
        """The peer closed: fine between messages, a protocol error inside one."""
        if self._failure is not None:
            return
        if self._buffer or self._fields:
            self._fail("connection closed in the middle of a message")

    def _line(self, line: str) -> AmiItem | None:
        if self._expect_banner:
            self._expect_banner = False
            match = _BANNER.fullmatch(line)
            if match is None:
                self._fail(f"not an AMI banner: {line[:80]!r}")
            assert match is not None
            return AmiBanner(text=line.rstrip(), version=match.group(2))
        if self._raw_output:
            return self._raw_output_line(line)
        if line == "":
            if not self._fields:
                return None
            message = AmiMessage(tuple(self._fields))
            self._fields = []
            return message
        key, colon, value = line.partition(":")
        if not colon or not _KEY_IN.fullmatch(key):
            self._fail(f"not an AMI 'Key: Value' line: {line[:80]!r}")
        self._add(key, value.removeprefix(" "))
        if key.lower() == "response" and value.strip().lower() == "follows":
            self._raw_output = True
        return None

    def _raw_output_line(self, line: str) -> AmiItem | None:
        # Legacy Command output: a few more `Key: Value` header lines (Privilege, ActionID) may come first,
        # then the raw text, ending with a line that ends with --END COMMAND--.
        if line.endswith(_END_COMMAND):
            self._raw_output = False
            rest = line.removesuffix(_END_COMMAND).rstrip("\n")
            if rest:
                self._add("Output", rest)
            return None
        key, colon, value = line.partition(":")
        if colon and key in ("Privilege", "ActionID", "Message") and not self._output_started():
            self._add(key, value.removeprefix(" "))
        else:
            self._add("Output", line)
        return None

    def _output_started(self) -> bool:
        return any(name == "Output" for name, _ in self._fields)

    def _add(self, key: str, value: str) -> None:
        if len(self._fields) >= self._max_fields:
            self._fail(f"message with more than {self._max_fields} fields")
        self._fields.append((key, value))


# --- actions -----------------------------------------------------------------------------------------

FieldValue = str | int | bool | Sequence[str]
Fields = Mapping[str, FieldValue | None] | Iterable[tuple[str, FieldValue | None]]


def format_action(action: str, action_id: str, fields: Fields = ()) -> bytes:
    """`Action:` and `ActionID:` first, then the fields in order. A None value is left out, a bool is
    true/false, a sequence repeats the key (`Variable: a=1`, `Variable: b=2`)."""
    lines = [_line("Action", action), _line("ActionID", action_id)]
    pairs = fields.items() if isinstance(fields, Mapping) else fields
    for key, value in pairs:
        if value is None:
            continue
        if key.lower() in ("action", "actionid"):
            raise AmiArgumentError(f"{key!r} is set by format_action itself")
        if isinstance(value, bool):
            lines.append(_line(key, "true" if value else "false"))
        elif isinstance(value, int | str):
            lines.append(_line(key, str(value)))
        elif isinstance(value, Sequence):
            lines.extend(_line(key, item) for item in value)
        else:
            raise AmiArgumentError(f"{key}: not a value AMI can carry: {type(value).__name__}")
    return "".join(lines).encode() + b"\r\n"


def _line(key: str, value: str) -> str:
    if not _KEY.fullmatch(key):
        raise AmiArgumentError(f"not an AMI field name: {key!r}")
    if not isinstance(value, str):
        raise AmiArgumentError(f"{key}: a value must be text, not {type(value).__name__}")
    bad = _FORBIDDEN.intersection(value)
    if bad:
        names = ", ".join(sorted(repr(char) for char in bad))
        raise AmiArgumentError(f"{key}: value contains {names}, which would break the message")
    return f"{key}: {value}\r\n"


def variables(values: Mapping[str, str]) -> list[str]:
    """Originate's `Variable:` lines: {"APP_CALLID": "abc123"} -> ["APP_CALLID=abc123"]."""
    for name in values:
        if not name or "=" in name:
            raise AmiArgumentError(f"not a channel variable name: {name!r}")
    return [f"{name}={value}" for name, value in values.items()]
