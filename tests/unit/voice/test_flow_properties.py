"""Random event sequences on the shipped flows: the engine never raises, and every call either ends
or sits at a real node waiting for something its node can produce."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from voice.ivr.actions import Action, RecordStep
from voice.ivr.engine import Awaiting, State, step
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
from voice.ivr.loader import load_flows, parse_flow
from voice.ivr.schema import Flow, MenuNode, NodeKind

FLOWS = load_flows(Path(__file__).resolve().parents[3] / "ivr_flows")
AWAITED_AT = {
    Awaiting.PROMPT: {NodeKind.PLAY, NodeKind.RECORD, NodeKind.SEND_LINK},
    Awaiting.INPUT: {NodeKind.MENU, NodeKind.COLLECT, NodeKind.CALLBACK_OFFER},
    Awaiting.LOOKUP: {NodeKind.LOOKUP},
    Awaiting.ESTIMATE: {NodeKind.QUEUE},
}

# Words the flows listen for, so that random speech often means something.
VOCABULARY = sorted(
    {
        phrase
        for flow in FLOWS.values()
        for node in flow.nodes.values()
        if isinstance(node, MenuNode)
        for option in node.options.values()
        for language in flow.languages
        for phrase in option.said(language)
    }
    | {"sí", "no", "yes", "nope", "1234", "05031980", "4539578763621486", "¿qué?"}
)

customers = st.builds(
    CustomerInfo,
    customer_id=st.integers(1, 10**9),
    name=st.none() | st.text(max_size=20),
    language=st.sampled_from([None, "es", "en", "fr"]),
    vip=st.booleans(),
    open_case_count=st.integers(0, 3),
)
events: st.SearchStrategy[Event] = st.one_of(
    st.just(PromptFinished()),
    st.builds(DigitsReceived, digits=st.from_regex(r"[0-9*#]{0,18}", fullmatch=True)),
    st.builds(
        DigitsReceived, digits=st.sampled_from(["1", "2", "3", "9", "0", "4539578763621486#", "05031980"])
    ),
    st.builds(
        SpeechRecognised,
        text=st.sampled_from(VOCABULARY) | st.text(max_size=30),
        confidence=st.floats(0, 1),
    ),
    st.just(NoInput()),
    st.just(NoMatch()),
    st.builds(LookupResult, customer=st.none() | customers),
    st.builds(
        QueueWaitEstimated,
        routed=st.booleans(),
        minutes=st.none() | st.integers(0, 90),
        overflow=st.booleans(),
        reason=st.sampled_from([None, "no_agents", "queue_full", "long_wait"]),
    ),
    st.builds(
        ActionFailed,
        reason=st.text(max_size=20),
        action=st.sampled_from(["", "play", "send_link", "transfer", "estimate_wait"]),
    ),
    st.just(CallerHungUp()),
    st.builds(
        CallStarted, caller_number=st.just("+34600111222"), now=st.just(datetime(2025, 3, 3, 9, tzinfo=UTC))
    ),
)
starts = st.builds(
    CallStarted,
    caller_number=st.sampled_from(["+34600111222", "+447700900123", "", "anonymous"]),
    called_number=st.just("+34910000000"),
    # Mostly working hours in Madrid and London, so that the menus get explored.
    now=st.sampled_from([datetime(2025, 3, 3, 10, tzinfo=UTC), datetime(2026, 6, 9, 15, tzinfo=UTC)])
    | st.datetimes(datetime(2025, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC)),
)
speech = st.builds(SpeechRecognised, text=st.sampled_from(VOCABULARY), confidence=st.floats(0, 1))


def plausible(flow: Flow, state: State) -> st.SearchStrategy[Event]:
    """Mostly an answer to what the call waits for, sometimes anything at all."""
    if state.awaiting is Awaiting.PROMPT:
        fitting: st.SearchStrategy[Event] = st.just(PromptFinished())
    elif state.awaiting is Awaiting.LOOKUP:
        fitting = st.builds(LookupResult, customer=st.none() | customers)
    elif state.awaiting is Awaiting.ESTIMATE:
        fitting = st.builds(
            QueueWaitEstimated,
            routed=st.booleans(),
            minutes=st.none() | st.integers(0, 90),
            overflow=st.booleans(),
            reason=st.just("no_agents"),
        )
    elif state.awaiting is Awaiting.INPUT:
        node = flow.nodes[state.node or ""]
        keys = sorted(node.options) if isinstance(node, MenuNode) else ["1", "2"]
        digits = st.sampled_from([*keys, "4539578763621486#", "05031980", "41234567#"])
        fitting = st.builds(DigitsReceived, digits=digits) | speech | st.just(NoInput())
    else:
        return events
    return st.one_of(fitting, fitting, events)


def check_state(flow: Flow, state: State, actions: list[Action]) -> None:
    assert state.node in flow.nodes
    node = flow.nodes[state.node]
    assert state.language in flow.languages
    assert 0 <= state.retries <= getattr(node, "retries", 0)
    if state.finished:
        assert state.awaiting in (Awaiting.NOTHING, Awaiting.HANDOFF)
    else:
        assert node.kind in AWAITED_AT[state.awaiting], (state.node, state.awaiting)
    if state.confirming is not None:
        assert isinstance(node, MenuNode) and state.confirming in node.options
    for action in actions:
        if isinstance(action, RecordStep):
            assert action.node in flow.nodes and flow.nodes[action.node].kind == action.kind


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(FLOWS)), start=starts, sequence=st.lists(events, max_size=40))
def test_random_events_never_raise_and_keep_the_call_at_a_valid_node(
    name: str, start: CallStarted, sequence: list[Event]
) -> None:
    flow = FLOWS[name]
    state, actions = step(flow, State(), start)
    check_state(flow, state, actions)
    for event in sequence:
        state, actions = step(flow, state, event)
        check_state(flow, state, actions)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(FLOWS)), start=starts, data=st.data())
def test_plausible_callers_never_break_the_engine_either(
    name: str, start: CallStarted, data: st.DataObject
) -> None:
    flow = FLOWS[name]
    state, actions = step(flow, State(), start)
    check_state(flow, state, actions)
    for _ in range(data.draw(st.integers(1, 30), label="length")):
        state, actions = step(flow, state, data.draw(plausible(flow, state)))
        check_state(flow, state, actions)


def silence(state: State) -> Event:
    """What a caller who never answers produces, given what the call waits for."""
    answers: dict[Awaiting, Event] = {
        Awaiting.PROMPT: PromptFinished(),
        Awaiting.INPUT: NoInput(),
        Awaiting.LOOKUP: LookupResult(customer=None),
        # Nobody answers in the queues either: always overflow, which must not loop for ever.
        Awaiting.ESTIMATE: QueueWaitEstimated(routed=True, overflow=True, reason="no_agents"),
    }
    return answers.get(state.awaiting, PromptFinished())


@settings(max_examples=150, deadline=None)
@given(
    name=st.sampled_from(sorted(FLOWS)),
    start=starts,
    prefix=st.lists(events.filter(lambda e: not isinstance(e, CallerHungUp)), max_size=25),
)
def test_a_caller_who_stops_answering_always_leaves_the_ivr(
    name: str, start: CallStarted, prefix: list[Event]
) -> None:
    flow = FLOWS[name]
    state, _ = step(flow, State(), start)
    for event in prefix:
        state, _ = step(flow, state, event)
    for _ in range(200):
        if state.finished:
            break
        state, _ = step(flow, state, silence(state))
    assert state.finished


@settings(max_examples=100, deadline=None)
@given(start=starts, sequence=st.lists(events, max_size=20))
def test_the_same_events_always_give_the_same_call(start: CallStarted, sequence: list[Event]) -> None:
    flow = FLOWS["banco_es"]
    runs = []
    for _ in range(2):
        state, actions = step(flow, State(), start)
        trace = [actions]
        for event in sequence:
            state, actions = step(flow, state, event)
            trace.append(actions)
        runs.append((state, trace))
    assert runs[0] == runs[1]


def test_a_call_start_without_a_time_zone_is_refused() -> None:
    # So that the engine never has to guess which zone a time is in.
    with pytest.raises(ValidationError):
        CallStarted(now=datetime(2025, 1, 1, 9, 0))


SHIPPED_FILES = sorted((Path(__file__).resolve().parents[3] / "ivr_flows").glob("*.yaml"))


@settings(max_examples=150, deadline=None)
@given(
    index=st.integers(0, len(SHIPPED_FILES) - 1),
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.binary(max_size=8)), min_size=1, max_size=4
    ),
)
def test_a_damaged_flow_file_gives_problems_not_exceptions(
    index: int, edits: list[tuple[float, bytes]]
) -> None:
    content = SHIPPED_FILES[index].read_bytes()
    for where, junk in edits:
        cut = int(where * len(content))
        content = content[:cut] + junk + content[cut + len(junk) :]
    flow, problems = parse_flow(content, file="damaged.yaml")
    assert (flow is None) == bool(problems)
    assert all(str(problem).startswith("damaged.yaml: ") for problem in problems)
