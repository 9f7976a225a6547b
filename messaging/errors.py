"""Why a message did not leave, in the same words whichever provider (Twilio, SMTP) refused it.

The adapters translate their provider's codes into these; the API turns them into statuses (an
invalid address is the caller's mistake, a refused credential the operator's, a network failure
nobody's and worth retrying) and the IVR into its flow's failure path.
"""

from __future__ import annotations

from core.errors import DomainError


class MessageNotSent(DomainError):
    """A message was not accepted for delivery. `code`: the provider's own code, when it gave one."""

    retryable = False

    def __init__(self, message: str, *, code: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code


class InvalidAddress(MessageNotSent):
    """The recipient's number or address cannot receive this kind of message."""


class RecipientOptedOut(MessageNotSent):
    """The recipient told the provider to stop (an SMS "STOP"): nothing more until they opt back in."""


class OutsideMessagingWindow(MessageNotSent):
    """WhatsApp takes free-form messages only within 24 hours of the customer's last message."""


class ChannelNotConfigured(MessageNotSent):
    """This service has no sender for the channel (settings missing)."""


class ProviderRejected(MessageNotSent):
    """The provider refused the account, the sender or the request: the operator must fix settings."""


class ProviderUnavailable(MessageNotSent):
    """The provider could not be reached or is failing; the same message may go through later."""

    retryable = True
