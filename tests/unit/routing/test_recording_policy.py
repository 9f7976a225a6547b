"""Recording's pure rules: which policies announce and record, the files' names, the paths they may
resolve to (never outside the recordings directory), ARI's view of them, and when one has expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from routing.recording_policy import (
    UnsafeRecordingName,
    announces,
    ari_name,
    asterisk_file,
    expired,
    recording_name,
    records_from_start,
    resolve,
    retention_cutoff,
)
from voice.ivr.recording_consent import consent_text
from voice.ivr.schema import Flow
from voice.prompts import flow_prompts, prompt_name

MADRID_MIDNIGHT = datetime(2026, 5, 5, 0, 30, tzinfo=timezone(timedelta(hours=2)))


@pytest.mark.parametrize(
    ("policy", "announced", "recorded"),
    [("always", True, True), ("on_demand", True, False), ("never", False, False), ("bogus", False, False)],
)
def test_policies_announce_whenever_the_call_may_be_recorded(
    policy: str, announced: bool, recorded: bool
) -> None:
    assert announces(policy) is announced
    assert records_from_start(policy) is recorded


def test_a_recording_is_named_by_its_utc_day_the_call_and_its_number() -> None:
    assert recording_name("1714812345.12", 2, MADRID_MIDNIGHT) == "2026/05/04/1714812345.12-2.wav"


@pytest.mark.parametrize(
    ("call_id", "part"), [("../../etc/passwd", "_.._etc_passwd"), ("a b/c", "a_b_c"), ("...", "call")]
)
def test_a_call_id_cannot_smuggle_a_path_into_the_name(call_id: str, part: str, tmp_path: Path) -> None:
    name = recording_name(call_id, 1, MADRID_MIDNIGHT)
    assert name == f"2026/05/04/{part}-1.wav"
    assert resolve(tmp_path, name).parent == tmp_path.resolve() / "2026/05/04"


def test_a_recording_number_out_of_range_or_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="numbered"):
        recording_name("x", 0, MADRID_MIDNIGHT)
    with pytest.raises(ValueError, match="time zone"):
        recording_name("x", 1, datetime(2026, 5, 4))


def test_a_recording_name_resolves_inside_the_directory(tmp_path: Path) -> None:
    assert resolve(tmp_path, "2026/05/04/abc-1.wav") == tmp_path.resolve() / "2026/05/04/abc-1.wav"


@pytest.mark.parametrize(
    "name",
    [
        "../secret.wav",
        "2026/05/04/../../../../etc/passwd",
        "/etc/passwd",
        "2026/05/04/abc-1.mp3",
        "2026/05/04/.hidden-1.wav",
        "2026/05/04/sub/abc-1.wav",
        "",
        None,
        42,
    ],
)
def test_anything_but_a_recording_name_is_refused(tmp_path: Path, name: object) -> None:
    with pytest.raises(UnsafeRecordingName):
        resolve(tmp_path, name)


def test_a_link_that_leads_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "recordings"
    (root / "2026").mkdir(parents=True)
    (root / "2026" / "05").symlink_to(outside)
    with pytest.raises(UnsafeRecordingName, match="outside"):
        resolve(root, "2026/05/04/abc-1.wav")


def test_asterisk_writes_under_its_own_view_of_the_directory() -> None:
    assert asterisk_file("/var/spool/asterisk/centralita/", "2026/05/04/a-1.wav") == (
        "/var/spool/asterisk/centralita/2026/05/04/a-1.wav"
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/var/spool/asterisk/recording", "2026/05/04/a-1"),
        ("/var/spool/asterisk/recording/centralita/", "centralita/2026/05/04/a-1"),
        ("/var/spool/asterisk/centralita", None),
        ("/var/spool/asterisk/recordings-elsewhere", None),
    ],
)
def test_ari_records_only_inside_asterisks_recording_directory(path: str, expected: str | None) -> None:
    assert ari_name(path, "2026/05/04/a-1.wav") == expected


def test_retention_zero_keeps_for_ever_and_otherwise_counts_days() -> None:
    now = datetime(2026, 5, 4, 12, tzinfo=UTC)
    assert retention_cutoff(now, 0) is None
    assert retention_cutoff(now, 90) == now - timedelta(days=90)
    assert expired(now - timedelta(days=91), now, 90)
    assert not expired(now - timedelta(days=89), now, 90)
    assert not expired(now - timedelta(days=9000), now, 0)
    with pytest.raises(ValueError):
        retention_cutoff(now, -1)


def test_the_notice_is_said_in_the_callers_language_and_in_english_otherwise() -> None:
    assert consent_text("es-ES").startswith("Esta llamada puede ser grabada")
    assert consent_text("en-GB").startswith("This call may be recorded")
    assert consent_text("ca") == consent_text("en")


def test_prompts_build_lists_the_notice_for_every_queue_node_in_every_language() -> None:
    flow = Flow.model_validate(
        {
            "name": "demo",
            "version": "1",
            "languages": ["es", "en"],
            "default_language": "es",
            "start": "cola",
            "nodes": {
                "cola": {"kind": "queue", "queue": "facturacion"},
            },
        }
    )
    notices = [p for p in flow_prompts(flow) if p.field == "recording_consent"]
    assert [(p.node, p.language, p.file) for p in notices] == [
        ("cola", "es", prompt_name("es", consent_text("es"))),
        ("cola", "en", prompt_name("en", consent_text("en"))),
    ]
