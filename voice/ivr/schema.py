"""IVR flows as data: the pydantic model of one `ivr_flows/*.yaml` file.

The model checks each field on its own. `voice.ivr.checks` checks the flow as a whole (references,
reachability, loops, languages) and `voice.ivr.loader` puts the file name in front of every error.

A prompt is a mapping language -> text to speak, or language -> {text, audio} (an audio file name,
played instead of the text when the runner has it):

    prompt:
      es: "Bienvenido a Banco Meridiano."
      en: {text: "Welcome to Banco Meridiano.", audio: "meridiano/en/welcome.wav"}
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.customers.schemas import Language

NodeId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
# Queue, skill, mailbox, link and schedule names.
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Variable = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
DtmfKey = Annotated[str, Field(pattern=r"^[0-9*#]$")]
Phrase = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# YAML's folded text (">") ends in a newline: stripped.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_AUDIO_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$")
_HOURS = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


class NodeKind(StrEnum):
    PLAY = "play"
    MENU = "menu"
    COLLECT = "collect"
    LOOKUP = "lookup"
    CONDITION = "condition"
    SET_LANGUAGE = "set_language"
    QUEUE = "queue"
    CALLBACK_OFFER = "callback_offer"
    SEND_LINK = "send_link"
    RECORD = "record"
    TRANSFER = "transfer"
    HANGUP = "hangup"


# Where a call leaves the IVR: every loop must be able to reach one of these.
TERMINAL_KINDS = frozenset({NodeKind.HANGUP, NodeKind.QUEUE, NodeKind.TRANSFER})
# Nodes that move on without waiting for the caller or the runner.
INSTANT_KINDS = frozenset({NodeKind.CONDITION, NodeKind.SET_LANGUAGE})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptVariant(_Strict):
    """What to say in one language: text for TTS and/or a recorded audio file."""

    text: Text | None = None
    audio: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _text_alone(cls, value: Any) -> Any:
        return {"text": value} if isinstance(value, str) else value

    @field_validator("audio")
    @classmethod
    def _relative_file_name(cls, value: str | None) -> str | None:
        if value is not None and (not _AUDIO_NAME.match(value) or ".." in value.split("/")):
            raise ValueError("an audio file name is a relative path of letters, digits, '_', '-', '.', '/'")
        return value

    @model_validator(mode="after")
    def _says_something(self) -> PromptVariant:
        if self.text is None and self.audio is None:
            raise ValueError("a prompt needs a text, an audio file or both")
        return self


Prompt = Annotated[dict[Language, PromptVariant], Field(min_length=1)]
PerLanguageText = Annotated[
    dict[Language, Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=640)]],
    Field(min_length=1),
]
PerLanguagePhrases = dict[Language, list[Phrase]]


class _Node(_Strict):
    description: str | None = Field(default=None, max_length=500, description="for people reading the file")

    def edges(self) -> list[tuple[str, str]]:
        """(field, node id) for every node this one can go to."""
        return []

    def prompts(self) -> list[tuple[str, dict[str, PromptVariant]]]:
        """(field, prompt) for every prompt of this node."""
        return []

    def texts(self) -> list[tuple[str, dict[str, Any]]]:
        """(field, per-language mapping) that must cover every language of the flow, prompts included."""
        return list(self.prompts())


class _Ask(_Node):
    """A node that plays a prompt and waits for the caller, re-asking on silence or a wrong answer."""

    prompt: Prompt
    no_input_prompt: Prompt = Field(description="played instead of `prompt` after silence")
    no_match_prompt: Prompt = Field(description="played instead of `prompt` after a wrong answer")
    retries: int = Field(default=2, ge=0, le=5, description="re-asks after the first attempt")
    timeout_ms: int = Field(default=5000, ge=1000, le=60_000)
    on_failure: NodeId = Field(description="where to go once the retries are used up")

    def edges(self) -> list[tuple[str, str]]:
        return [("on_failure", self.on_failure)]

    def prompts(self) -> list[tuple[str, dict[str, PromptVariant]]]:
        return [
            ("prompt", self.prompt),
            ("no_input_prompt", self.no_input_prompt),
            ("no_match_prompt", self.no_match_prompt),
        ]


class PlayNode(_Node):
    kind: Literal[NodeKind.PLAY]
    prompt: Prompt
    barge_in: bool = Field(default=False, description="a key press skips the rest of the prompt")
    next: NodeId

    def edges(self) -> list[tuple[str, str]]:
        return [("next", self.next)]

    def prompts(self) -> list[tuple[str, dict[str, PromptVariant]]]:
        return [("prompt", self.prompt)]


class MenuOption(_Strict):
    next: NodeId
    # The first phrase of a language names the option when the engine asks "did you say …?".
    phrases: PerLanguagePhrases = Field(default_factory=dict)
    synonyms: PerLanguagePhrases = Field(default_factory=dict)

    def said(self, language: str) -> list[str]:
        return [*self.phrases.get(language, []), *self.synonyms.get(language, [])]


class MenuNode(_Ask):
    kind: Literal[NodeKind.MENU]
    options: dict[DtmfKey, MenuOption] = Field(min_length=1)
    confidence_threshold: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="speech below it is confirmed (or refused without confirm_prompt)",
    )
    confirm_prompt: Prompt | None = Field(
        default=None, description="'Did you say {option}? Press 1 for yes, 2 for no.'; {option} is filled in"
    )

    @field_validator("options", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        # YAML reads `1:` as an integer.
        return {str(key): option for key, option in value.items()} if isinstance(value, dict) else value

    def edges(self) -> list[tuple[str, str]]:
        found = [(f"options.{key}.next", option.next) for key, option in self.options.items()]
        return [*found, *super().edges()]

    def prompts(self) -> list[tuple[str, dict[str, PromptVariant]]]:
        found = super().prompts()
        if self.confirm_prompt is not None:
            found.append(("confirm_prompt", self.confirm_prompt))
        return found

    def texts(self) -> list[tuple[str, dict[str, Any]]]:
        found = super().texts()
        found.extend(
            (f"options.{key}.phrases", option.phrases)
            for key, option in self.options.items()
            if option.phrases
        )
        return found


class DigitsCheck(StrEnum):
    NONE = "none"
    LUHN = "luhn"  # card and account numbers
    DATE_DDMMYYYY = "date_ddmmyyyy"  # e.g. a date of birth: 31121980


class CollectNode(_Ask):
    kind: Literal[NodeKind.COLLECT]
    variable: Variable = Field(description="name the digits are kept under, e.g. for a lookup")
    min_length: int = Field(default=1, ge=1, le=32)
    max_length: int = Field(ge=1, le=32)
    terminator: Literal["#", "*"] | None = "#"
    validation: DigitsCheck = DigitsCheck.NONE
    sensitive: bool = Field(default=False, description="only the last 4 digits reach the timeline")
    next: NodeId

    @field_validator("max_length")
    @classmethod
    def _not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_length")
        if low is not None and value < low:
            raise ValueError(f"must be at least min_length ({low})")
        return value

    @field_validator("validation")
    @classmethod
    def _fits_lengths(cls, value: DigitsCheck, info: ValidationInfo) -> DigitsCheck:
        low, high = info.data.get("min_length"), info.data.get("max_length")
        if low is None or high is None:
            return value
        if value is DigitsCheck.DATE_DDMMYYYY and not low <= 8 <= high:
            raise ValueError("a DDMMYYYY date has 8 digits: min_length and max_length must allow 8")
        if value is DigitsCheck.LUHN and high < 2:
            raise ValueError("a Luhn number has at least 2 digits")
        return value

    def edges(self) -> list[tuple[str, str]]:
        return [("next", self.next), *super().edges()]


class LookupBy(StrEnum):
    CALLER = "caller"
    DIGITS = "digits"


class LookupNode(_Node):
    kind: Literal[NodeKind.LOOKUP]
    by: LookupBy
    variable: Variable | None = Field(
        default=None, validate_default=True, description="the collected digits to look up (by: digits)"
    )
    found: NodeId
    not_found: NodeId

    @field_validator("variable")
    @classmethod
    def _needed_for_digits(cls, value: str | None, info: ValidationInfo) -> str | None:
        by = info.data.get("by")
        if by is LookupBy.DIGITS and value is None:
            raise ValueError("required when by is 'digits'")
        if by is LookupBy.CALLER and value is not None:
            raise ValueError("only used when by is 'digits'")
        return value

    def edges(self) -> list[tuple[str, str]]:
        return [("found", self.found), ("not_found", self.not_found)]


class Rule(_Strict):
    """Matches when every test it sets holds."""

    customer_found: bool | None = None
    vip: bool | None = None
    open_case: bool | None = Field(default=None, description="the customer has at least one open case")
    customer_language: Language | None = None
    language: Language | None = Field(default=None, description="the language the call is in now")
    business_hours: Name | None = Field(default=None, description="a schedule: open now")
    after_hours: Name | None = Field(default=None, description="a schedule: closed now (holidays included)")
    holiday: Name | None = Field(default=None, description="a schedule: today is one of its holidays")
    next: NodeId

    @model_validator(mode="after")
    def _tests_something(self) -> Rule:
        if not self.model_fields_set - {"next"}:
            raise ValueError(
                "a rule needs a test: customer_found, vip, open_case, customer_language, language, "
                "business_hours, after_hours or holiday"
            )
        return self

    def schedules(self) -> list[tuple[str, str]]:
        return [
            (name, value)
            for name, value in (
                ("business_hours", self.business_hours),
                ("after_hours", self.after_hours),
                ("holiday", self.holiday),
            )
            if value is not None
        ]


class ConditionNode(_Node):
    kind: Literal[NodeKind.CONDITION]
    rules: list[Rule] = Field(min_length=1, description="the first rule that holds picks the next node")
    default: NodeId

    def edges(self) -> list[tuple[str, str]]:
        return [
            *((f"rules.{i}.next", rule.next) for i, rule in enumerate(self.rules)),
            ("default", self.default),
        ]


class SetLanguageNode(_Node):
    kind: Literal[NodeKind.SET_LANGUAGE]
    # A language of the flow, or "customer": the looked-up customer's, if the flow has it.
    language: Annotated[str, Field(pattern=r"^([a-z]{2,3}(-[A-Z]{2})?|customer)$")]
    next: NodeId

    def edges(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


class QueueNode(_Node):
    """Hands the call to an agent queue: Centralita's own ACD when it has a queue of that name, else
    Asterisk's Queue() (see voice.agi.ivr_port).

    With `announce_wait` or `overflow` the estimated wait is asked for first (Centralita's queues
    only): `overflow` is where the call goes instead of joining when the ACD advises it (the wait is
    above the queue's threshold, the queue is full, nobody who could answer is logged in), e.g. a
    callback offer; a caller who comes back to this node from there (declined the offer) joins.
    `announce_wait` says "your estimated wait is about N minutes" (voice.ivr.wait_announcement)
    after `prompt`, before joining."""

    kind: Literal[NodeKind.QUEUE]
    queue: Name
    priority: int = Field(default=0, ge=0, le=10, description="higher is answered first")
    skills: list[Name] = Field(default_factory=list)
    prompt: Prompt | None = None
    announce_wait: bool = Field(default=False, description="say the estimated wait before joining")
    overflow: NodeId | None = Field(
        default=None, description="where to go instead of joining when the ACD advises overflow"
    )
    on_failure: NodeId | None = Field(default=None, description="if the queue refuses the call; else hang up")

    @property
    def estimates(self) -> bool:
        """Whether the engine asks for the estimated wait before joining."""
        return self.announce_wait or self.overflow is not None

    def edges(self) -> list[tuple[str, str]]:
        found = [("on_failure", self.on_failure)] if self.on_failure else []
        if self.overflow:
            found.append(("overflow", self.overflow))
        return found

    def prompts(self) -> list[tuple[str, dict[str, PromptVariant]]]:
        return [("prompt", self.prompt)] if self.prompt else []


class CallbackOfferNode(_Ask):
    """ "Press 1 to be called back instead of waiting, 2 to hold" (speech: yes / no)."""

    kind: Literal[NodeKind.CALLBACK_OFFER]
    queue: Name = Field(description="the queue whose agents call back")
    number_variable: Variable | None = Field(default=None, description="collected number; else the caller's")
    accepted: NodeId
    declined: NodeId

    def edges(self) -> list[tuple[str, str]]:
        return [("accepted", self.accepted), ("declined", self.declined), *super().edges()]


class LinkChannel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"


class SendLinkNode(_Node):
    """Continues the call in writing: sends an SMS/WhatsApp message carrying a link."""

    kind: Literal[NodeKind.SEND_LINK]
    channel: LinkChannel
    link: Name = Field(description="which continuation the runner links to, e.g. 'balance', 'case_status'")
    template: PerLanguageText = Field(description="the message; the runner replaces {link} with the URL")
    number_variable: Variable | None = Field(default=None, description="collected number; else the caller's")
    prompt: Prompt = Field(description="tells the caller the message is on its way")
    next: NodeId
    on_failure: NodeId | None = Field(default=None, description="if the message cannot be sent; else next")

    def edges(self) -> list[tuple[str, str]]:
        found = [("next", self.next)]
        if self.on_failure:
            found.append(("on_failure", self.on_failure))
        return found

    def prompts(self) -> list[tuple[str, dict[str, PromptVariant]]]:
        return [("prompt", self.prompt)]

    def texts(self) -> list[tuple[str, dict[str, Any]]]:
        return [*super().texts(), ("template", self.template)]


class RecordNode(_Node):
    """Voicemail: the prompt, a beep, then the recording until silence, '#', or max_seconds."""

    kind: Literal[NodeKind.RECORD]
    prompt: Prompt
    mailbox: Name
    max_seconds: int = Field(default=120, ge=5, le=600)
    beep: bool = True
    next: NodeId

    def edges(self) -> list[tuple[str, str]]:
        return [("next", self.next)]

    def prompts(self) -> list[tuple[str, dict[str, PromptVariant]]]:
        return [("prompt", self.prompt)]


class TransferNode(_Node):
    kind: Literal[NodeKind.TRANSFER]
    target: Annotated[str, Field(pattern=r"^[A-Za-z0-9+_@./:-]{1,100}$")] = Field(
        description="an extension, a number or a dial string the runner understands"
    )
    prompt: Prompt | None = None
    on_failure: NodeId | None = Field(default=None, description="if the transfer fails; else hang up")

    def edges(self) -> list[tuple[str, str]]:
        return [("on_failure", self.on_failure)] if self.on_failure else []

    def prompts(self) -> list[tuple[str, dict[str, PromptVariant]]]:
        return [("prompt", self.prompt)] if self.prompt else []


class HangupNode(_Node):
    kind: Literal[NodeKind.HANGUP]
    prompt: Prompt | None = Field(default=None, description="a goodbye played before hanging up")

    def prompts(self) -> list[tuple[str, dict[str, PromptVariant]]]:
        return [("prompt", self.prompt)] if self.prompt else []


Node = Annotated[
    PlayNode
    | MenuNode
    | CollectNode
    | LookupNode
    | ConditionNode
    | SetLanguageNode
    | QueueNode
    | CallbackOfferNode
    | SendLinkNode
    | RecordNode
    | TransferNode
    | HangupNode,
    Field(discriminator="kind"),
]
AskNode = MenuNode | CollectNode | CallbackOfferNode


class Hours(_Strict):
    """Open from `start` to `end` (minutes after midnight, local time); written "08:30-14:00"."""

    start: int = Field(ge=0, le=24 * 60)
    end: int = Field(ge=0, le=24 * 60)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = _HOURS.match(value.strip())
        if not found:
            raise ValueError(f"hours are written 'HH:MM-HH:MM', e.g. '08:00-20:00', not {value!r}")
        h1, m1, h2, m2 = (int(part) for part in found.groups())
        if m1 > 59 or m2 > 59 or h1 > 23 or h2 > 24 or (h2 == 24 and m2):
            raise ValueError(f"{value!r} is not a time range within one day")
        return {"start": h1 * 60 + m1, "end": h2 * 60 + m2}

    @model_validator(mode="after")
    def _ordered(self) -> Hours:
        if self.end <= self.start:
            raise ValueError("hours must end after they start (split a range that crosses midnight)")
        return self


class Schedule(_Strict):
    """Weekly opening hours in a time zone, closed on the listed holidays."""

    time_zone: str = Field(examples=["Europe/Madrid"])
    weekly: dict[Weekday, list[Hours]] = Field(min_length=1)
    holidays: list[date] = Field(default_factory=list)
    _zone: ZoneInfo = PrivateAttr()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as 'Europe/Madrid')"
            ) from None
        return value

    @model_validator(mode="after")
    def _load_zone(self) -> Schedule:
        # Read the zone once here, so that the engine never touches the disk.
        self._zone = ZoneInfo(self.time_zone)
        return self

    @property
    def zone(self) -> ZoneInfo:
        return self._zone


class Flow(_Strict):
    name: Name
    version: str = Field(default="", description="set by the loader: sha256 of the file, first 12 hex digits")
    description: str | None = Field(default=None, max_length=1000)
    languages: list[Language] = Field(min_length=1)
    default_language: Language
    start: NodeId
    schedules: dict[Name, Schedule] = Field(default_factory=dict)
    nodes: dict[NodeId, Node] = Field(min_length=1)
