"""What can go wrong on a FastAGI connection, one type per thing the code above must handle differently.

AgiError
├── AgiProtocolError      Asterisk (or whatever connected) sent bytes that are not AGI
├── AgiArgumentError      a command argument we refuse to send (newline: command injection)
├── AgiCommandError       Asterisk refused the command: 510 unknown, 520 bad usage (with the text)
│   └── AgiApplicationNotFound   EXEC of an application Asterisk does not have (result=-2)
├── AgiCommandFailed      the command ran and failed: result=-1 (hang-up or a missing prompt)
├── AgiChannelGone        the caller is gone: 511, or a `HANGUP` line we did not expect
│   └── AgiConnectionLost the socket closed or the session is no longer usable
└── AgiTimeout            no reply within the command's time limit (also a TimeoutError)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voice.agi.protocol import AgiReply


class AgiError(Exception):
    """Base of every error of the AGI adapter."""


class AgiProtocolError(AgiError):
    """A line that is not valid AGI: the peer is not Asterisk, or the stream lost its framing."""


class AgiArgumentError(AgiError, ValueError):
    """A command we will not send, e.g. an argument with a newline that would start a second command."""


class AgiCommandError(AgiError):
    """Asterisk did not run the command: 510 (unknown command) or 520 (wrong usage, text in `usage`)."""

    def __init__(self, command: str, reply: AgiReply) -> None:
        detail = reply.message or f"result={reply.result_text}"
        super().__init__(f"{command!r}: {reply.code} {detail}")
        self.command = command
        self.reply = reply

    @property
    def code(self) -> int:
        return self.reply.code

    @property
    def usage(self) -> str:
        return self.reply.usage


class AgiApplicationNotFound(AgiCommandError):
    """EXEC named a dialplan application this Asterisk does not have (`200 result=-2`)."""


class AgiCommandFailed(AgiError):
    """The command ran and answered `result=-1`: the channel hung up, or e.g. the prompt file is missing."""

    def __init__(self, command: str, reply: AgiReply, why: str = "") -> None:
        super().__init__(f"{command!r} failed: result={reply.result_text}" + (f" ({why})" if why else ""))
        self.command = command
        self.reply = reply


class AgiChannelGone(AgiError):
    """The channel is hung up. `reply` is the reply that came with the news, if there was one."""

    def __init__(self, message: str, reply: AgiReply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class AgiConnectionLost(AgiChannelGone):
    """The FastAGI socket closed (or broke, or timed out earlier): no more commands can be sent."""


class AgiTimeout(AgiError, TimeoutError):
    """No (complete) reply within the time limit; the session cannot be trusted any more."""
