"""Checks of a flow as a whole, after each field has passed the schema: node references, languages,
schedules and variables, nodes unreachable from the start, and loops a caller could never leave."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from voice.ivr.matching import words
from voice.ivr.schema import (
    INSTANT_KINDS,
    TERMINAL_KINDS,
    CallbackOfferNode,
    CollectNode,
    ConditionNode,
    Flow,
    LookupNode,
    MenuNode,
    QueueNode,
    SendLinkNode,
    SetLanguageNode,
)
from voice.ivr.wait_announcement import announces


@dataclass(frozen=True)
class FlowProblem:
    """One thing wrong with a flow file; str() reads `banco_es.yaml: node 'x', field 'next': …`."""

    file: str
    node: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.node is not None:
            where.append(f"node {self.node!r}")
        if self.field:
            where.append(f"field {self.field!r}")
        prefix = f"{self.file}: {', '.join(where)}" if where else self.file
        return f"{prefix}: {self.message}"


def check(flow: Flow, *, file: str) -> list[FlowProblem]:
    """Everything wrong with `flow` that the schema alone cannot see; empty if it is fine."""
    problems: list[FlowProblem] = []

    def add(node: str | None, field: str | None, message: str) -> None:
        problems.append(FlowProblem(file, node, field, message))

    languages = set(flow.languages)
    listed = ", ".join(flow.languages)
    if len(languages) != len(flow.languages):
        add(None, "languages", "a language is listed twice")
    if flow.default_language not in languages:
        add(
            None,
            "default_language",
            f"{flow.default_language!r} is not one of the flow's languages ({listed})",
        )
    if flow.start not in flow.nodes:
        add(None, "start", f"unknown node {flow.start!r}")

    collected = {node.variable for node in flow.nodes.values() if isinstance(node, CollectNode)}
    broken_refs = False
    for node_id, node in flow.nodes.items():
        for field, target in node.edges():
            if target not in flow.nodes:
                broken_refs = True
                add(node_id, field, f"unknown node {target!r}")
        for field, per_language in node.texts():
            for language in flow.languages:
                if language not in per_language:
                    add(node_id, field, f"missing language {language!r}")
            for language in per_language:
                if language not in languages:
                    add(
                        node_id,
                        f"{field}.{language}",
                        f"{language!r} is not one of the flow's languages ({listed})",
                    )
        for field, variable in _variables_used(node):
            if variable not in collected:
                add(node_id, field, f"no collect node sets variable {variable!r}")
        if (
            isinstance(node, SetLanguageNode)
            and node.language != "customer"
            and node.language not in languages
        ):
            add(node_id, "language", f"{node.language!r} is not one of the flow's languages ({listed})")
        if isinstance(node, ConditionNode):
            for i, rule in enumerate(node.rules):
                for field, schedule in rule.schedules():
                    if schedule not in flow.schedules:
                        add(node_id, f"rules.{i}.{field}", f"unknown schedule {schedule!r}")
                if rule.language is not None and rule.language not in languages:
                    add(
                        node_id,
                        f"rules.{i}.language",
                        f"{rule.language!r} is not one of the flow's languages",
                    )
        if isinstance(node, QueueNode):
            if node.overflow == node_id:
                add(node_id, "overflow", "overflow must lead to another node (e.g. a callback offer)")
            if node.announce_wait:
                for language in flow.languages:
                    if not announces(language):
                        add(
                            node_id,
                            "announce_wait",
                            f"no estimated-wait texts in {language!r} (there are for es and en)",
                        )
        if isinstance(node, MenuNode):
            for field, message in _shared_phrases(node):
                add(node_id, field, message)
            for key, option in node.options.items():
                for language in option.synonyms.keys() - languages:
                    add(
                        node_id,
                        f"options.{key}.synonyms.{language}",
                        f"{language!r} is not one of the flow's languages ({listed})",
                    )

    if broken_refs or flow.start not in flow.nodes:
        return problems  # the graph checks below would only repeat the broken references
    reachable = _reachable(flow.start, _graph(flow))
    for node_id in flow.nodes:
        if node_id not in reachable:
            add(node_id, None, f"unreachable from the start node {flow.start!r}")
    for loop_node, loop_field, message in _loops(flow, reachable):
        add(loop_node, loop_field, message)
    return problems


def _variables_used(node: object) -> list[tuple[str, str]]:
    if isinstance(node, LookupNode) and node.variable is not None:
        return [("variable", node.variable)]
    if isinstance(node, CallbackOfferNode | SendLinkNode):
        variable = node.number_variable
        return [] if variable is None else [("number_variable", variable)]
    return []


def _shared_phrases(menu: MenuNode) -> list[tuple[str, str]]:
    """A phrase listed for two options would make speech for it always ambiguous."""
    problems: list[tuple[str, str]] = []
    owner: dict[tuple[str, str], str] = {}
    for key, option in menu.options.items():
        for kind, per_language in (("phrases", option.phrases), ("synonyms", option.synonyms)):
            for language, phrases in per_language.items():
                for i, phrase in enumerate(phrases):
                    said = words(phrase)
                    if not said:
                        problems.append((f"options.{key}.{kind}.{language}.{i}", "a phrase needs a word"))
                        continue
                    first = owner.setdefault((language, said), key)
                    if first != key:
                        problems.append(
                            (
                                f"options.{key}.{kind}.{language}.{i}",
                                f"{phrase!r} is also a phrase of option {first!r}",
                            )
                        )
    return problems


def _graph(flow: Flow) -> dict[str, list[tuple[str, str]]]:
    return {node_id: node.edges() for node_id, node in flow.nodes.items()}


def _reachable(start: str, graph: Mapping[str, list[tuple[str, str]]]) -> set[str]:
    seen = {start}
    todo = deque([start])
    while todo:
        for _, target in graph[todo.popleft()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _loops(flow: Flow, reachable: set[str]) -> list[tuple[str, str | None, str]]:
    """Loops (strongly connected sets) no terminal node can be reached from, and loops that never
    wait for the caller (conditions and language changes only), which would spin for ever."""
    graph = {node_id: edges for node_id, edges in _graph(flow).items() if node_id in reachable}
    reverse: dict[str, list[str]] = {node_id: [] for node_id in graph}
    for node_id, edges in graph.items():
        for _, target in edges:
            reverse[target].append(node_id)
    exits = _reachable_reverse(
        [node_id for node_id in graph if flow.nodes[node_id].kind in TERMINAL_KINDS], reverse
    )
    found: list[tuple[str, str | None, str]] = []
    for component in _strongly_connected(graph):
        if not _is_loop(component, graph) or component & exits:
            continue
        first = min(component, key=list(flow.nodes).index)
        field, path = _cycle(first, component, graph)
        found.append(
            (first, field, f"loop with no exit: {path} (no hangup, queue or transfer can be reached)")
        )

    instant = {
        node_id: [(field, target) for field, target in edges if flow.nodes[target].kind in INSTANT_KINDS]
        for node_id, edges in graph.items()
        if flow.nodes[node_id].kind in INSTANT_KINDS
    }
    for component in _strongly_connected(instant):
        if _is_loop(component, instant):
            first = min(component, key=list(flow.nodes).index)
            field, path = _cycle(first, component, instant)
            found.append((first, field, f"loop that never waits for the caller: {path}"))
    return found


def _reachable_reverse(starts: Iterable[str], reverse: Mapping[str, list[str]]) -> set[str]:
    seen = set(starts)
    todo = deque(seen)
    while todo:
        for source in reverse[todo.popleft()]:
            if source not in seen:
                seen.add(source)
                todo.append(source)
    return seen


def _is_loop(component: set[str], graph: Mapping[str, list[tuple[str, str]]]) -> bool:
    if len(component) > 1:
        return True
    (only,) = component
    return any(target == only for _, target in graph[only])


def _cycle(first: str, component: set[str], graph: Mapping[str, list[tuple[str, str]]]) -> tuple[str, str]:
    """The field leaving `first` and a shortest path `first -> … -> first` inside the component."""
    came_from: dict[str, tuple[str, str]] = {}
    todo = deque([first])
    while todo:
        current = todo.popleft()
        for field, target in graph[current]:
            if target not in component or target in came_from:
                continue
            came_from[target] = (current, field)
            if target == first:
                todo.clear()
                break
            todo.append(target)
    path = [first]
    field = ""
    current = first
    while True:
        current, field = came_from[current]
        path.append(current)
        if current == first:
            break
    path.reverse()
    return field, " -> ".join(path)


def _strongly_connected(graph: Mapping[str, list[tuple[str, str]]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (a flow may be deeper than Python's recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            edges = graph[node]
            for i in range(position, len(edges)):
                target = edges[i][1]
                if target not in graph:
                    continue
                if target not in index:
                    work.append((node, i + 1))
                    work.append((target, 0))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                if low[node] == index[node]:
                    component: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    components.append(component)
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return components
