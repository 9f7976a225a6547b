"""The live figures in Prometheus' text exposition format (version 0.0.4), written here rather than with
prometheus-client: the figures already exist as one snapshot, so a scrape is a pure rendering of it,
with no registry (a process-wide global there) to keep in step.

Every family has its HELP and TYPE lines; "today" figures are gauges (they restart at local midnight,
which a counter may not do); a figure that is undefined (a ratio over nothing) has no sample at all,
the Prometheus way of saying "unknown", rather than a misleading 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(slots=True)
class _Family:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, value: Any, **labels: Any) -> None:
        if value is None or isinstance(value, bool):
            return
        self.samples.append(({k: str(v) for k, v in labels.items()}, float(value)))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def render(families: Iterable[_Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} gauge")
        for labels, value in family.samples:
            label_text = ",".join(f'{key}="{_escape_label(text)}"' for key, text in labels.items())
            lines.append(
                f"{family.name}{{{label_text}}} {_number(value)}"
                if label_text
                else f"{family.name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


def exposition(snapshot: Mapping[str, Any]) -> str:
    """The snapshot of `reporting.live.LiveStats` as Prometheus text, every metric named centralita_*."""
    families: dict[str, _Family] = {}

    def family(name: str, help_text: str) -> _Family:
        return families.setdefault(name, _Family(f"centralita_{name}", help_text))

    totals = snapshot.get("totals") or {}
    totals_metrics = (
        ("contacts", "contacts", "Contacts with customers today, every channel"),
        ("queue_offered", "offered_calls", "Queue visits that ended today"),
        ("queue_answered", "answered_calls", "Queue visits answered by an agent today"),
        ("queue_abandoned", "abandoned_calls", "Queue visits abandoned today, short ones excluded"),
        (
            "short_abandons",
            "short_abandoned_calls",
            "Callers who hung up within the short-abandon threshold today",
        ),
        ("asa_seconds", "asa_seconds", "Average speed of answer today, seconds"),
        ("service_level", "service_level_ratio", "Share answered within the queue's target today"),
        ("abandonment_rate", "abandonment_ratio", "Inbound abandonment rate today"),
        ("handled", "handled_contacts", "Contacts handled by agents today"),
        ("aht_seconds", "aht_seconds", "Average handle time today (talk + hold + wrap-up), seconds"),
        ("occupancy", "occupancy_ratio", "Agent occupancy today"),
        ("fcr_rate", "fcr_ratio", "First-contact resolution across channels, of the cases resolved"),
        (
            "channel_switches_per_case",
            "channel_switches_per_case",
            "Channel switches per case with a contact",
        ),
        ("csat_responses", "csat_responses", "Satisfaction survey responses today"),
        ("csat_average", "csat_score_average", "Average satisfaction score today (1-5)"),
        ("ivr_containment", "ivr_containment_ratio", "Share of IVR calls finished in the IVR today"),
        (
            "outbound_abandonment_rate",
            "outbound_abandonment_ratio",
            "Outbound abandonment today (the dialer's rule)",
        ),
    )
    for key, metric, help_text in totals_metrics:
        family(metric, help_text).add(totals.get(key))
    callbacks = family("callbacks", "Callbacks today by stage (offered, accepted, completed)")
    for stage in ("offered", "accepted", "completed"):
        callbacks.add(totals.get(f"callbacks_{stage}"), stage=stage)

    for queue in snapshot.get("queues", ()):
        name = queue["queue"]
        family("queue_waiting_calls", "Calls waiting in the queue now").add(queue["waiting"], queue=name)
        family("queue_longest_wait_seconds", "How long the longest-waiting call has waited, seconds").add(
            queue["longest_wait_seconds"], queue=name
        )
        family("queue_offered_calls", "Queue visits that ended today, per queue").add(
            queue["queue_offered"], queue=name
        )
        family("queue_answered_calls", "Queue visits answered today, per queue").add(
            queue["queue_answered"], queue=name
        )
        family("queue_abandoned_calls", "Queue visits abandoned today, per queue").add(
            queue["queue_abandoned"], queue=name
        )
        family("queue_service_level_ratio", "Share answered within target today, per queue (0-1)").add(
            queue["service_level"], queue=name
        )
        family("queue_service_level_target_seconds", "The queue's service-level target, seconds").add(
            queue["service_level_target_seconds"], queue=name
        )
        family("queue_asa_seconds", "Average speed of answer today, per queue, seconds").add(
            queue["asa_seconds"], queue=name
        )
        family("queue_abandonment_ratio", "Inbound abandonment rate today, per queue (0-1)").add(
            queue["abandonment_rate"], queue=name
        )

    channels = family("channel_contacts", "Contacts with customers today, per channel and direction")
    for channel in snapshot.get("channels", ()):
        channels.add(channel["inbound_contacts"], channel=channel["channel"], direction="inbound")
        channels.add(channel["outbound_contacts"], channel=channel["channel"], direction="outbound")

    for agent in snapshot.get("agents", ()):
        family("agent_handled_contacts", "Contacts handled today, per agent").add(
            agent["handled"], agent=agent["agent"]
        )
        family("agent_aht_seconds", "Average handle time today, per agent, seconds").add(
            agent["aht_seconds"], agent=agent["agent"]
        )
        family("agent_occupancy_ratio", "Occupancy today, per agent (0-1)").add(
            agent["occupancy"], agent=agent["agent"]
        )

    for campaign in snapshot.get("campaigns", ()):
        name = campaign["campaign"]
        family("campaign_dialed_calls", "Calls dialed today, per campaign").add(
            campaign["outbound_dialed"], campaign=name
        )
        rate = family(
            "campaign_abandonment_ratio", "Abandoned live calls / live calls, per campaign and window (0-1)"
        )
        rate.add(campaign["outbound_abandonment_rate"], campaign=name, window="today")
        rate.add(campaign.get("abandonment_rate_24h"), campaign=name, window="24h")
        rate.add(campaign.get("abandonment_rate_30d"), campaign=name, window="30d")
        family("campaign_abandonment_target_ratio", "The campaign's abandonment target (0-1)").add(
            campaign.get("abandonment_target"), campaign=name
        )

    ivr = snapshot.get("ivr") or {}
    family("ivr_calls_in_progress", "Calls in the IVR now").add(ivr.get("in_ivr"))
    family("ivr_calls", "IVR calls that ended today").add(ivr.get("calls"))
    family("ivr_contained_calls", "IVR calls finished in the IVR today").add(ivr.get("contained"))
    drop_off = family("ivr_drop_off_calls", "Callers who hung up in the IVR today, per node")
    for node in ivr.get("drop_off", ()):
        drop_off.add(node["calls"], node=node["node"])

    at = snapshot.get("at")
    if isinstance(at, datetime):
        family("live_stats_updated_timestamp_seconds", "When these figures were computed (Unix time)").add(
            at.timestamp()
        )
    return render(families.values())
