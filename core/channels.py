"""Names shared by every channel adapter: where a contact happened and which way it went."""

from enum import StrEnum


class Channel(StrEnum):
    VOICE = "voice"
    IVR = "ivr"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    EMAIL = "email"
    CHAT = "chat"
    WEB = "web"
    STORE = "store"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class ConsentChannel(StrEnum):
    """What a customer may be contacted by: the dialer and senders check these before contacting."""

    CALLS = "calls"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    EMAIL = "email"
