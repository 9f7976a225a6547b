"""The IVR engine: a pure state machine over a validated flow.

`step(flow, state, event) -> (state, actions)` reads nothing but its arguments: no I/O, no clock
(time comes with CallStarted), no randomness. Start a call with `step(flow, State(), CallStarted(...))`.

The runner's side of it:

1. Execute the actions in order. A Play with barge_in may be cut short by a key press, which then
   counts as input for the CollectDigits after it.
2. If an action fails: a failed RecordStep or OfferCallback, or a failed Play that is not the last
   action, is logged and skipped (better silence than a stuck caller); any other failure ends the
   step: skip the rest and report ActionFailed(reason, action=<the failed action's type>).
3. Otherwise report the event the new state awaits (`state.awaiting`):
   - PROMPT: PromptFinished when the last Play or Record ends (DigitsReceived if a key ended it);
   - INPUT: DigitsReceived, SpeechRecognised, NoInput or NoMatch;
   - LOOKUP: LookupResult;
   - ESTIMATE: QueueWaitEstimated (the ACD's estimated wait for a queue node that announces it or
     may overflow: the node then overflows, or announces the wait and hands the call to the queue);
   - HANDOFF: nothing: the call is with a queue or transferred, unless that failed (ActionFailed);
   - NOTHING: the call is over.
4. CallerHungUp whenever the caller hangs up.

An event the state does not await changes nothing (same state, no actions), so a late or
repeated event cannot derail a call. Every node entered and every input taken yields a RecordStep,
for the customer timeline.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from voice.ivr.actions import (
    Action,
    CollectDigits,
    EnqueueCall,
    EstimateWait,
    Hangup,
    Listen,
    LookupCustomer,
    OfferCallback,
    Play,
    Record,
    RecordStep,
    SendLink,
    Transfer,
)
from voice.ivr.events import (
    ActionFailed,
    CallerHungUp,
    CallStarted,
    CustomerInfo,
    DigitsReceived,
    Event,
    LookupResult,
    NoInput,
    NoMatch,
    PromptFinished,
    QueueWaitEstimated,
    SpeechRecognised,
)
from voice.ivr.hours import is_holiday, is_open
from voice.ivr.matching import best_match, date_ddmmyyyy_ok, luhn_ok, yes_no_phrases, yes_or_no
from voice.ivr.schema import (
    AskNode,
    CallbackOfferNode,
    CollectNode,
    ConditionNode,
    DigitsCheck,
    Flow,
    HangupNode,
    LookupBy,
    LookupNode,
    MenuNode,
    Node,
    PlayNode,
    PromptVariant,
    QueueNode,
    RecordNode,
    Rule,
    SendLinkNode,
    SetLanguageNode,
    TransferNode,
)
from voice.ivr.wait_announcement import wait_text


class Awaiting(StrEnum):
    NOTHING = "nothing"
    PROMPT = "prompt"
    INPUT = "input"
    LOOKUP = "lookup"
    ESTIMATE = "estimate"
    HANDOFF = "handoff"


class State(BaseModel):
    """One call's place in its flow. Immutable: `step` returns a new one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flow: str = ""
    version: str = Field(default="", description="the flow version the call started on")
    node: str | None = Field(default=None, description="None until CallStarted")
    language: str = ""
    caller: str = ""
    called: str = ""
    started_at: AwareDatetime | None = None
    retries: int = Field(default=0, description="re-asks used at the current node")
    confirming: str | None = Field(default=None, description="menu option key awaiting a yes/no")
    variables: dict[str, str] = Field(default_factory=dict, description="collected digits by name")
    customer: CustomerInfo | None = None
    overflowed: tuple[str, ...] = Field(default=(), description="queue nodes whose overflow was taken")
    finished: bool = Field(default=False, description="hung up, or handed to a queue or a transfer")
    awaiting: Awaiting = Awaiting.NOTHING


def step(flow: Flow, state: State, event: Event) -> tuple[State, list[Action]]:
    """The next state of the call and what the runner must do, in order."""
    out: list[Action] = []
    if isinstance(event, CallStarted):
        if state.node is not None:
            return state, []
        fresh = State(
            flow=flow.name,
            version=flow.version,
            language=flow.default_language,
            caller=event.caller_number,
            called=event.called_number,
            started_at=event.now,
        )
        return _enter(flow, fresh, flow.start, out), out
    if state.node is None or (state.finished and state.awaiting is Awaiting.NOTHING):
        return state, []
    node = flow.nodes.get(state.node)
    if node is None:  # the flow changed under a running call: end it rather than guess
        out.append(Hangup())
        return state.model_copy(update={"finished": True, "awaiting": Awaiting.NOTHING}), out
    if isinstance(event, CallerHungUp):
        if state.finished:  # the call had left the IVR already
            return state.model_copy(update={"awaiting": Awaiting.NOTHING}), []
        out.append(_step(state, node, input="hangup"))
        return state.model_copy(update={"finished": True, "awaiting": Awaiting.NOTHING}), out
    if state.finished:
        if isinstance(event, ActionFailed) and isinstance(node, QueueNode | TransferNode):
            return _handoff_failed(flow, state, node, event, out), out
        return state, []
    new = _on_event(flow, state, node, event, out)
    return new, out


def _on_event(flow: Flow, state: State, node: Node, event: Event, out: list[Action]) -> State:
    if isinstance(node, MenuNode | CollectNode | CallbackOfferNode):
        if isinstance(event, NoInput):
            return _retry(flow, state, node, "no-input", out)
        if isinstance(event, NoMatch):
            return _retry(flow, state, node, "no-match", out)
        if isinstance(event, ActionFailed):
            return _retry(flow, state, node, "no-input", out, result=f"failed: {event.reason}")
        if isinstance(event, DigitsReceived) and not event.digits:
            return _retry(flow, state, node, "no-input", out)
        if not isinstance(event, DigitsReceived | SpeechRecognised):
            return state
        if isinstance(node, MenuNode):
            return _on_menu(flow, state, node, event, out)
        if isinstance(node, CollectNode):
            return _on_collect(flow, state, node, event, out)
        return _on_callback(flow, state, node, event, out)
    if isinstance(node, PlayNode):
        if isinstance(event, PromptFinished):
            return _enter(flow, state, node.next, out)
        if isinstance(event, DigitsReceived) and node.barge_in:
            out.append(_step(state, node, input=event.digits, result="barge-in"))
            return _enter(flow, state, node.next, out)
        if isinstance(event, ActionFailed):
            out.append(_step(state, node, result=f"failed: {event.reason}"))
            return _enter(flow, state, node.next, out)
        return state
    if isinstance(node, RecordNode):
        if isinstance(event, PromptFinished | DigitsReceived):
            out.append(_step(state, node, input="recorded", result=node.mailbox))
            return _enter(flow, state, node.next, out)
        if isinstance(event, ActionFailed):
            out.append(_step(state, node, result=f"failed: {event.reason}"))
            return _enter(flow, state, node.next, out)
        return state
    if isinstance(node, SendLinkNode):
        if isinstance(event, PromptFinished) or (isinstance(event, ActionFailed) and event.action == "play"):
            return _enter(flow, state, node.next, out)
        if isinstance(event, ActionFailed):
            out.append(_step(state, node, result=f"failed: {event.reason}"))
            return _enter(flow, state, node.on_failure or node.next, out)
        return state
    if isinstance(node, QueueNode):
        if isinstance(event, QueueWaitEstimated):
            return _on_estimate(flow, state, node, event, out)
        if isinstance(event, ActionFailed):
            out.append(_step(state, node, result=f"no estimate: {event.reason}"))
            return _hand_off(flow, state, node, out, with_prompt=True)
        return state
    if isinstance(node, LookupNode):
        if isinstance(event, LookupResult):
            found = event.customer is not None
            out.append(
                _step(
                    state,
                    node,
                    input=node.by.value,
                    text=str(event.customer.customer_id) if event.customer else None,
                    result="found" if found else "not found",
                )
            )
            state = state.model_copy(update={"customer": event.customer})
            return _enter(flow, state, node.found if found else node.not_found, out)
        if isinstance(event, ActionFailed):
            out.append(_step(state, node, result=f"failed: {event.reason}"))
            return _enter(flow, state, node.not_found, out)
        return state
    return state  # instant and final nodes never wait: nothing to do


def _enter(flow: Flow, state: State, node_id: str, out: list[Action]) -> State:
    """Moves to `node_id` and on through nodes that need no waiting, until one waits or ends the call."""
    for _ in range(len(flow.nodes) + 1):
        node = flow.nodes[node_id]
        state = state.model_copy(
            update={"node": node_id, "retries": 0, "confirming": None, "awaiting": Awaiting.NOTHING}
        )
        following: str
        if isinstance(node, PlayNode):
            out += [_step(state, node), _play(flow, state, node.prompt, barge_in=node.barge_in)]
            return _awaiting(state, Awaiting.PROMPT)
        if isinstance(node, MenuNode | CollectNode):
            out += [_step(state, node), _play(flow, state, node.prompt, barge_in=True), *_ask(state, node)]
            return _awaiting(state, Awaiting.INPUT)
        if isinstance(node, CallbackOfferNode):
            if _number(state, node.number_variable) is None:
                out.append(_step(state, node, result="no number to call back"))
                following = node.declined
            else:
                out += [
                    _step(state, node),
                    _play(flow, state, node.prompt, barge_in=True),
                    *_ask(state, node),
                ]
                return _awaiting(state, Awaiting.INPUT)
        elif isinstance(node, LookupNode):
            if node.by is LookupBy.CALLER:
                value = _number(state, None)
            else:
                value = state.variables.get(node.variable or "")
            if not value:
                out.append(_step(state, node, input=node.by.value, result="nothing to look up"))
                following = node.not_found
            else:
                out += [_step(state, node), LookupCustomer(by=node.by, value=value)]
                return _awaiting(state, Awaiting.LOOKUP)
        elif isinstance(node, ConditionNode):
            following = _branch(flow, state, node, out)
        elif isinstance(node, SetLanguageNode):
            language = node.language
            if language == "customer":
                wanted = state.customer.language if state.customer else None
                language = wanted if wanted in flow.languages else state.language
            state = state.model_copy(update={"language": language})
            out.append(_step(state, node, result=language))
            following = node.next
        elif isinstance(node, SendLinkNode):
            to = _number(state, node.number_variable)
            if to is None:
                out.append(_step(state, node, result="no number to send to"))
                following = node.on_failure or node.next
            else:
                text = _in_language(flow, state, node.template)
                out += [
                    _step(state, node),
                    SendLink(channel=node.channel, to=to, link=node.link, text=text, language=state.language),
                    _play(flow, state, node.prompt, barge_in=False),
                ]
                return _awaiting(state, Awaiting.PROMPT)
        elif isinstance(node, RecordNode):
            out += [
                _step(state, node),
                _play(flow, state, node.prompt, barge_in=False),
                Record(mailbox=node.mailbox, max_seconds=node.max_seconds, beep=node.beep),
            ]
            return _awaiting(state, Awaiting.PROMPT)
        elif isinstance(node, QueueNode) and node.estimates:
            out += [_step(state, node), EstimateWait(queue=node.queue)]
            return _awaiting(state, Awaiting.ESTIMATE)
        else:
            out.append(_step(state, node))
            return _hand_off(flow, state, node, out, with_prompt=True)
        node_id = following
    # Only reachable through a loop of nodes that never wait, which the checks refuse for conditions
    # and language changes; a lookup or an offer without a number could still close one.
    out += [_step(state, flow.nodes[node_id], result="loop without input: hanging up"), Hangup()]
    return state.model_copy(update={"finished": True, "awaiting": Awaiting.NOTHING})


def _hand_off(
    flow: Flow,
    state: State,
    node: QueueNode | TransferNode | HangupNode,
    out: list[Action],
    *,
    with_prompt: bool,
    announce: str | None = None,
) -> State:
    if with_prompt and node.prompt is not None:
        out.append(_play(flow, state, node.prompt, barge_in=False))
    if announce is not None:
        out.append(Play(text=announce, audio=None, language=state.language, barge_in=False))
    if isinstance(node, QueueNode):
        out.append(
            EnqueueCall(
                queue=node.queue, priority=node.priority, skills=list(node.skills), language=state.language
            )
        )
    elif isinstance(node, TransferNode):
        out.append(Transfer(target=node.target))
    else:
        out.append(Hangup())
        return state.model_copy(update={"finished": True, "awaiting": Awaiting.NOTHING})
    return state.model_copy(update={"finished": True, "awaiting": Awaiting.HANDOFF})


def _on_estimate(
    flow: Flow, state: State, node: QueueNode, event: QueueWaitEstimated, out: list[Action]
) -> State:
    """Overflow instead of joining, once per node (a caller back from the overflow chose to hold);
    otherwise join, after the announcement of the wait when the node makes one."""
    if (
        event.routed
        and event.overflow
        and node.overflow is not None
        and state.node is not None
        and state.node not in state.overflowed
    ):
        out.append(_step(state, node, result=f"overflow: {event.reason or 'advised'}"))
        state = state.model_copy(update={"overflowed": (*state.overflowed, state.node)})
        return _enter(flow, state, node.overflow, out)
    announce = None
    if event.routed:  # (Asterisk's own queues have no estimate: nothing to note)
        if event.minutes is None:
            result = "no estimate"
        else:
            result = f"estimated wait {event.minutes} min"
            if node.announce_wait:
                announce = wait_text(state.language, event.minutes)
        out.append(_step(state, node, result=result))
    return _hand_off(flow, state, node, out, with_prompt=True, announce=announce)


def _handoff_failed(
    flow: Flow, state: State, node: QueueNode | TransferNode, event: ActionFailed, out: list[Action]
) -> State:
    if event.action == "play":  # only the announcement failed: hand the call over without it
        return _hand_off(flow, state, node, out, with_prompt=False)
    out.append(_step(state, node, result=f"failed: {event.reason}"))
    state = state.model_copy(update={"finished": False})
    if node.on_failure is None:
        out.append(Hangup())
        return state.model_copy(update={"finished": True, "awaiting": Awaiting.NOTHING})
    return _enter(flow, state, node.on_failure, out)


def _branch(flow: Flow, state: State, node: ConditionNode, out: list[Action]) -> str:
    for i, rule in enumerate(node.rules):
        if _holds(flow, state, rule):
            out.append(_step(state, node, result=f"rule {i + 1}: {rule.next}"))
            return rule.next
    out.append(_step(state, node, result=f"default: {node.default}"))
    return node.default


def _holds(flow: Flow, state: State, rule: Rule) -> bool:
    customer = state.customer
    checks: list[bool] = []
    if rule.customer_found is not None:
        checks.append((customer is not None) == rule.customer_found)
    if rule.vip is not None:
        checks.append((customer is not None and customer.vip) == rule.vip)
    if rule.open_case is not None:
        checks.append((customer is not None and customer.open_case_count > 0) == rule.open_case)
    if rule.customer_language is not None:
        checks.append(customer is not None and customer.language == rule.customer_language)
    if rule.language is not None:
        checks.append(state.language == rule.language)
    now = state.started_at
    for name, wanted in ((rule.business_hours, True), (rule.after_hours, False)):
        if name is not None:
            checks.append(now is not None and is_open(flow.schedules[name], now) == wanted)
    if rule.holiday is not None:
        checks.append(now is not None and is_holiday(flow.schedules[rule.holiday], now))
    return all(checks)


def _on_menu(
    flow: Flow, state: State, node: MenuNode, event: DigitsReceived | SpeechRecognised, out: list[Action]
) -> State:
    heard = _heard(event)
    if state.confirming is not None:
        if isinstance(event, DigitsReceived):
            answer = {"1": True, "2": False}.get(event.digits[:1])
        else:
            answer = yes_or_no(event.text, state.language)
        if answer:
            return _choose(flow, state, node, state.confirming, out, heard, result="confirmed")
        return _retry(flow, state, node, "no-match", out, heard=heard, result="not confirmed")
    if isinstance(event, DigitsReceived):
        key = event.digits[:1]
        if key in node.options:
            return _choose(flow, state, node, key, out, heard)
        return _retry(flow, state, node, "no-match", out, heard=heard)
    choices = {key: option.said(state.language) for key, option in node.options.items()}
    key_said = best_match(event.text, choices)
    if key_said is None:
        return _retry(flow, state, node, "no-match", out, heard=heard)
    if event.confidence >= node.confidence_threshold:
        return _choose(flow, state, node, key_said, out, heard)
    if node.confirm_prompt is None:
        return _retry(flow, state, node, "no-match", out, heard=heard, result=f"unsure of option {key_said}")
    out.append(_step(state, node, *heard, result=f"confirm option {key_said}"))
    state = state.model_copy(update={"confirming": key_said})
    said = node.options[key_said].phrases.get(state.language) or [key_said]
    prompt = _resolve(flow, state, node.confirm_prompt)
    out.append(
        Play(
            text=prompt.text.replace("{option}", said[0]) if prompt.text else None,
            audio=prompt.audio,
            language=state.language,
            barge_in=True,
        )
    )
    out.append(CollectDigits(max_digits=1, min_digits=1, timeout_ms=node.timeout_ms, terminator=None))
    out.append(
        Listen(phrases=yes_no_phrases(state.language), language=state.language, timeout_ms=node.timeout_ms)
    )
    return state


def _choose(
    flow: Flow,
    state: State,
    node: MenuNode,
    key: str,
    out: list[Action],
    heard: tuple[str | None, str | None, float | None],
    result: str = "",
) -> State:
    out.append(_step(state, node, *heard, result=f"option {key}" + (f" ({result})" if result else "")))
    return _enter(flow, state, node.options[key].next, out)


def _on_collect(
    flow: Flow, state: State, node: CollectNode, event: DigitsReceived | SpeechRecognised, out: list[Action]
) -> State:
    if isinstance(event, DigitsReceived):
        digits = event.digits
        if node.terminator and digits.endswith(node.terminator):
            digits = digits[: -len(node.terminator)]
    else:
        digits = "".join(char for char in event.text if char in "0123456789")
    heard = _heard(event)
    if node.sensitive:
        heard = (_mask(digits), None, heard[2])
    problem = _digits_problem(node, digits)
    if problem:
        return _retry(flow, state, node, "no-match", out, heard=heard, result=problem)
    out.append(_step(state, node, *heard, result=f"{node.variable} collected"))
    state = state.model_copy(update={"variables": {**state.variables, node.variable: digits}})
    return _enter(flow, state, node.next, out)


def _digits_problem(node: CollectNode, digits: str) -> str | None:
    if not digits.isascii() or not digits.isdigit():
        return "not digits"
    if not node.min_length <= len(digits) <= node.max_length:
        return f"{len(digits)} digits"
    if node.validation is DigitsCheck.LUHN and not luhn_ok(digits):
        return "fails the Luhn check"
    if node.validation is DigitsCheck.DATE_DDMMYYYY and not date_ddmmyyyy_ok(digits):
        return "not a date"
    return None


def _on_callback(
    flow: Flow,
    state: State,
    node: CallbackOfferNode,
    event: DigitsReceived | SpeechRecognised,
    out: list[Action],
) -> State:
    heard = _heard(event)
    if isinstance(event, DigitsReceived):
        answer = {"1": True, "2": False}.get(event.digits[:1])
    else:
        answer = yes_or_no(event.text, state.language)
    if answer is None:
        return _retry(flow, state, node, "no-match", out, heard=heard)
    number = _number(state, node.number_variable)
    if not answer or number is None:
        out.append(_step(state, node, *heard, result="declined"))
        return _enter(flow, state, node.declined, out)
    out.append(_step(state, node, *heard, result="accepted"))
    out.append(OfferCallback(queue=node.queue, number=number, language=state.language))
    return _enter(flow, state, node.accepted, out)


def _retry(
    flow: Flow,
    state: State,
    node: AskNode,
    reason: str,
    out: list[Action],
    *,
    heard: tuple[str | None, str | None, float | None] = (None, None, None),
    result: str = "",
) -> State:
    """Re-asks with the node's no-input or no-match prompt, or gives up once the retries are used."""
    said, text, confidence = heard
    detail = f"{reason}: {result}" if result else reason
    if state.retries >= node.retries:
        out.append(_step(state, node, said or reason, text, confidence, result=f"{detail}; giving up"))
        return _enter(flow, state, node.on_failure, out)
    out.append(_step(state, node, said or reason, text, confidence, result=f"{detail}; asking again"))
    state = state.model_copy(update={"retries": state.retries + 1, "confirming": None})
    prompt = node.no_input_prompt if reason == "no-input" else node.no_match_prompt
    out.append(_play(flow, state, prompt, barge_in=True))
    out.extend(_ask(state, node))
    return state


def _ask(state: State, node: AskNode) -> list[Action]:
    """What listens for the answer (the prompt has been played)."""
    if isinstance(node, CollectNode):
        return [
            CollectDigits(
                max_digits=node.max_length,
                min_digits=node.min_length,
                timeout_ms=node.timeout_ms,
                terminator=node.terminator,
            )
        ]
    found: list[Action] = [
        CollectDigits(max_digits=1, min_digits=1, timeout_ms=node.timeout_ms, terminator=None)
    ]
    if isinstance(node, MenuNode):
        phrases = {key: said for key, option in node.options.items() if (said := option.said(state.language))}
    else:
        phrases = yes_no_phrases(state.language)
    if phrases:
        found.append(Listen(phrases=phrases, language=state.language, timeout_ms=node.timeout_ms))
    return found


def _heard(event: DigitsReceived | SpeechRecognised) -> tuple[str | None, str | None, float | None]:
    if isinstance(event, DigitsReceived):
        return event.digits, None, None
    return "speech", event.text, event.confidence


def masked(digits: str) -> str:
    """A sensitive number as the timeline (and an agent's screen) may show it: the last 4 digits."""
    return "*" * max(len(digits) - 4, 0) + digits[-4:] if len(digits) > 4 else "*" * len(digits)


_mask = masked


def _number(state: State, variable: str | None) -> str | None:
    """A number to call or text: a collected variable, or the caller's own unless withheld."""
    number = state.variables.get(variable) if variable else state.caller.strip()
    if not number:
        return None
    digits = number.removeprefix("+")
    return number if digits.isascii() and digits.isdigit() and len(digits) >= 3 else None


def _step(
    state: State,
    node: Node,
    input: str | None = None,
    text: str | None = None,
    confidence: float | None = None,
    *,
    result: str | None = None,
) -> RecordStep:
    return RecordStep(
        node=state.node or "", kind=node.kind, input=input, text=text, confidence=confidence, result=result
    )


def _awaiting(state: State, awaiting: Awaiting) -> State:
    return state.model_copy(update={"awaiting": awaiting})


def _resolve(flow: Flow, state: State, prompt: dict[str, PromptVariant]) -> PromptVariant:
    return prompt.get(state.language) or prompt.get(flow.default_language) or next(iter(prompt.values()))


def _in_language(flow: Flow, state: State, texts: dict[str, str]) -> str:
    return texts.get(state.language) or texts.get(flow.default_language) or next(iter(texts.values()))


def _play(flow: Flow, state: State, prompt: dict[str, PromptVariant], *, barge_in: bool) -> Play:
    variant = _resolve(flow, state, prompt)
    return Play(text=variant.text, audio=variant.audio, language=state.language, barge_in=barge_in)
