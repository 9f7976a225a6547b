"""Journey transitions: how customers move between channels, IVR nodes and queues over a period, as the
nodes and weighted links a Sankey diagram draws, with where journeys ended and dropped off.

A journey is one customer's contacts in the period in order (or one case's, with `by="case"`); a contact
nobody could identify is a journey of its own. Each contact adds its channel ("voice", "sms",
"voice (outbound)"), then, for an IVR call, the IVR nodes it went through ("ivr:<node>", repeats in a row
once), the queues it entered ("queue:<name>") and "agent" when one answered. A journey *drops off* where
it ends if its last contact ended `abandoned`.

Nodes are numbered by position ("0:voice", "1:ivr:menu"), so a customer who calls twice goes
voice -> ... -> voice without a cycle: Sankey layouts need a graph without cycles. Journeys longer than
`max_steps` are cut there (counted in `truncated`).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from core.timeline.schemas import Outcome, TouchpointKind
from reporting.rows import Contact

JourneyBy = Literal["customer", "case"]
_IVR_NODE_STEPS = frozenset(
    {TouchpointKind.IVR_NODE.value, TouchpointKind.MENU_CHOICE.value, TouchpointKind.CALLBACK_OFFERED.value}
)
DEFAULT_MAX_STEPS = 8


@dataclass(frozen=True, slots=True)
class JourneyNode:
    id: str
    label: str
    step: int
    journeys: int  # journeys that passed through it
    ended: int  # journeys that ended here
    dropped: int  # of those, the ones whose last contact was abandoned


@dataclass(frozen=True, slots=True)
class JourneyLink:
    source: str
    target: str
    value: int


@dataclass(frozen=True, slots=True)
class JourneyMap:
    nodes: list[JourneyNode] = field(default_factory=list)
    links: list[JourneyLink] = field(default_factory=list)
    journeys: int = 0
    truncated: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "journeys": self.journeys,
            "truncated": self.truncated,
            "nodes": [
                {
                    "id": n.id,
                    "label": n.label,
                    "step": n.step,
                    "journeys": n.journeys,
                    "ended": n.ended,
                    "dropped": n.dropped,
                }
                for n in self.nodes
            ],
            "links": [{"source": k.source, "target": k.target, "value": k.value} for k in self.links],
        }


def contact_path(contact: Contact, *, ivr_nodes: bool = True) -> list[str]:
    """The labels one contact adds to its journey."""
    channel = contact.channel if contact.direction != "outbound" else f"{contact.channel} (outbound)"
    path = [channel]
    for step in contact.steps:
        label: str | None = None
        if step.kind in _IVR_NODE_STEPS and step.node and ivr_nodes:
            label = f"ivr:{step.node}"
        elif step.kind == TouchpointKind.QUEUE_ENTER:
            label = f"queue:{step.attributes.get('queue') or step.node or contact.queue or 'unknown'}"
        elif step.kind == TouchpointKind.AGENT_CONNECT:
            label = "agent"
        if label is not None and label != path[-1]:
            path.append(label)
    return path


def journeys_of(contacts: Iterable[Contact], *, by: JourneyBy = "customer") -> list[list[Contact]]:
    """The contacts grouped into journeys, each in order of start."""
    grouped: dict[tuple[str, int], list[Contact]] = {}
    for contact in contacts:
        if not contact.is_customer_contact:
            continue
        if by == "case":
            if contact.case_id is None:
                continue
            key = ("case", contact.case_id)
        elif contact.customer_id is None:
            key = ("contact", contact.interaction_id)
        else:
            key = ("customer", contact.customer_id)
        grouped.setdefault(key, []).append(contact)
    return [sorted(group, key=lambda c: (c.started_at, c.interaction_id)) for group in grouped.values()]


def journey_map(
    contacts: Iterable[Contact],
    *,
    by: JourneyBy = "customer",
    max_steps: int = DEFAULT_MAX_STEPS,
    ivr_nodes: bool = True,
    touching: Callable[[Contact], bool] | None = None,
) -> JourneyMap:
    """The Sankey data of the journeys in `contacts`. `touching` keeps only the journeys with a contact
    it accepts (e.g. one in a given queue or campaign); the whole journey is drawn."""
    if max_steps < 1:
        raise ValueError("max_steps must be at least 1")
    passed: Counter[str] = Counter()
    ended: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    links: Counter[tuple[str, str]] = Counter()
    labels: dict[str, tuple[str, int]] = {}
    journeys = truncated = 0
    for journey in journeys_of(contacts, by=by):
        if touching is not None and not any(touching(c) for c in journey):
            continue
        journeys += 1
        path = [label for contact in journey for label in contact_path(contact, ivr_nodes=ivr_nodes)]
        if len(path) > max_steps:
            truncated += 1
            path = path[:max_steps]
        ids = [f"{index}:{label}" for index, label in enumerate(path)]
        for index, (node_id, label) in enumerate(zip(ids, path, strict=True)):
            labels[node_id] = (label, index)
            passed[node_id] += 1
        for source, target in itertools.pairwise(ids):
            links[(source, target)] += 1
        ended[ids[-1]] += 1
        if journey[-1].outcome == Outcome.ABANDONED:
            dropped[ids[-1]] += 1
    nodes = [
        JourneyNode(node_id, labels[node_id][0], labels[node_id][1], count, ended[node_id], dropped[node_id])
        for node_id, count in passed.items()
    ]
    nodes.sort(key=lambda n: (n.step, -n.journeys, n.label))
    ordered_links = [JourneyLink(s, t, v) for (s, t), v in links.items()]
    ordered_links.sort(key=lambda k: (labels[k.source][1], -k.value, k.source, k.target))
    return JourneyMap(nodes, ordered_links, journeys, truncated)
