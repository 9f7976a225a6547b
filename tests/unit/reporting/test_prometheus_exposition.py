"""The /metrics text, checked line by line against the exposition format and by prometheus-client's parser."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from reporting.prometheus import exposition

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
_VALUE = r"(?:[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|NaN|[+-]Inf)"
SAMPLE = re.compile(rf"^({_NAME})(?:\{{({_LABEL}(?:,{_LABEL})*)?\}})? ({_VALUE})$")
HELP = re.compile(rf"^# HELP ({_NAME}) .+$")
TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")


def check_strictly(text: str) -> dict[str, list[str]]:
    """Every line a HELP, TYPE or sample; HELP then TYPE once per family, before its samples, families
    contiguous; no series twice; names centralita_*. Returns the sample lines per family."""
    assert text.endswith("\n") and not text.endswith("\n\n")
    families: dict[str, list[str]] = {}
    current: str | None = None
    seen_series: set[str] = set()
    lines = text.split("\n")[:-1]
    for number, line in enumerate(lines):
        if help_line := HELP.match(line):
            name = help_line.group(1)
            assert name not in families, f"family {name} appears twice"
            assert TYPE.match(lines[number + 1]) and lines[number + 1].split()[2] == name, line
            families[name] = []
            current = name
        elif type_line := TYPE.match(line):
            assert type_line.group(1) == current, f"TYPE without its HELP: {line}"
        else:
            sample = SAMPLE.match(line)
            assert sample, f"not a sample line: {line!r}"
            assert sample.group(1) == current, f"sample outside its family: {line}"
            series = line.rsplit(" ", 1)[0]
            assert series not in seen_series, f"series twice: {series}"
            seen_series.add(series)
            families[current].append(line)
    assert all(name.startswith("centralita_") for name in families)
    return families


SNAPSHOT: dict[str, Any] = {
    "at": datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
    "totals": {"contacts": 12, "asa_seconds": 21.5, "service_level": None, "callbacks_offered": 2},
    "queues": [
        {
            "queue": 'fact"uras\\es\nnorte',  # a name that needs every escape
            "waiting": 3,
            "longest_wait_seconds": 95.25,
            "queue_offered": 10,
            "queue_answered": 8,
            "queue_abandoned": 1,
            "service_level": 0.75,
            "service_level_target_seconds": 20,
            "asa_seconds": 12.0,
            "abandonment_rate": None,
        }
    ],
    "channels": [{"channel": "voice", "inbound_contacts": 9, "outbound_contacts": 3}],
    "agents": [],
    "campaigns": [
        {
            "campaign": "renewals",
            "outbound_dialed": 40,
            "outbound_abandonment_rate": 0.025,
            "abandonment_rate_24h": 0.02,
            "abandonment_rate_30d": None,
            "abandonment_target": 0.03,
        }
    ],
    "ivr": {"in_ivr": 1, "calls": 5, "contained": 2, "drop_off": [{"node": "menu", "calls": 2}]},
}


def test_the_exposition_is_strictly_well_formed() -> None:
    families = check_strictly(exposition(SNAPSHOT))
    assert families["centralita_contacts"] == ["centralita_contacts 12"]
    assert families["centralita_asa_seconds"] == ["centralita_asa_seconds 21.5"]
    assert families["centralita_service_level_ratio"] == []  # unknown: no sample rather than 0
    assert (
        'centralita_queue_waiting_calls{queue="fact\\"uras\\\\es\\nnorte"} 3'
        in families["centralita_queue_waiting_calls"]
    )
    assert families["centralita_campaign_abandonment_ratio"] == [
        'centralita_campaign_abandonment_ratio{campaign="renewals",window="today"} 0.025',
        'centralita_campaign_abandonment_ratio{campaign="renewals",window="24h"} 0.02',
    ]


def test_prometheus_own_parser_reads_the_same_values() -> None:
    parsed = {family.name: family for family in text_string_to_metric_families(exposition(SNAPSHOT))}
    waiting = parsed["centralita_queue_waiting_calls"]
    assert waiting.type == "gauge"
    assert [(s.labels, s.value) for s in waiting.samples] == [({"queue": 'fact"uras\\es\nnorte'}, 3.0)]
    callbacks = parsed["centralita_callbacks"]
    assert [(s.labels["stage"], s.value) for s in callbacks.samples] == [("offered", 2.0)]
    updated = parsed["centralita_live_stats_updated_timestamp_seconds"].samples[0].value
    assert updated == SNAPSHOT["at"].timestamp()


def test_an_empty_snapshot_still_parses() -> None:
    check_strictly(exposition({}))
    assert list(text_string_to_metric_families(exposition({})))
