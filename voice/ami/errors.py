"""What can go wrong on an AMI connection, one type per thing the code above must handle differently.

AmiError
├── AmiProtocolError     the peer sent something that is not AMI (no banner, a line without "Key: ")
├── AmiArgumentError     an action we refuse to send (a CR/LF in a value would inject a second action)
├── AmiActionError       Asterisk answered `Response: Error` (its `Message:` in `message`)
│   └── AmiLoginFailed   the Login was refused ("Authentication failed"); Asterisk closes the socket
├── AmiConnectionLost    not connected, or the connection closed while an action waited for its answer
└── AmiTimeout           no answer within the time limit (also a TimeoutError)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voice.ami.protocol import AmiMessage


class AmiError(Exception):
    """Base of every error of the AMI adapter."""


class AmiProtocolError(AmiError):
    """Bytes that are not the AMI wire format: the stream cannot be trusted any more."""


class AmiArgumentError(AmiError, ValueError):
    """An action we will not send."""


class AmiActionError(AmiError):
    """`Response: Error` to an action (e.g. Originate of an unknown technology: "Originate failed")."""

    def __init__(self, action: str, message: str, response: AmiMessage | None = None) -> None:
        super().__init__(f"{action}: {message}" if message else f"{action} failed")
        self.action = action
        self.message = message
        self.response = response


class AmiLoginFailed(AmiActionError):
    """Wrong username or secret (or a host not permitted for the user). Retrying will not help."""


class AmiConnectionLost(AmiError):
    """The connection is not there (any more); the action may or may not have been carried out."""


class AmiTimeout(AmiError, TimeoutError):
    """No (complete) answer within the time limit."""
