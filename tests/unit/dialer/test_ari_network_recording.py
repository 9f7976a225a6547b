"""Campaign calls over ARI that the campaign records: the notice played to the bridge, the bridge recorded
for `always`, and the recording put on the call's timeline only after the runner heard of its end."""

from __future__ import annotations

from datetime import UTC, datetime

from test_ari_network import Line, connected_call, run, until

from dialer.call_network import CallEnd
from routing.recording_asterisk import FakeBridgeRecorder
from routing.recording_calls import CampaignPolicy, CampaignRecording, InMemoryRecordingNotes
from routing.recording_policy import Policy
from voice.prompts import PromptAudio

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
NOTICE = PromptAudio("centralita/es/0123456789abcdef", "Esta llamada puede ser grabada.", "es")


def recorded_line(
    policy: Policy | None, *, path: str = "/var/spool/asterisk/recording/centralita"
) -> tuple[Line, FakeBridgeRecorder, InMemoryRecordingNotes]:
    notes = InMemoryRecordingNotes()
    if policy is not None:  # the Line's calls are campaign 1's
        notes.campaigns[1] = CampaignPolicy("Renovaciones", policy, NOTICE if policy != "never" else None)
    bridges = FakeBridgeRecorder()
    recorder = CampaignRecording(notes, bridges, asterisk_path=path, clock=lambda: NOW)
    return Line(recorder=recorder), bridges, notes


@run
async def test_an_always_campaign_announces_and_records_the_bridge_and_links_it_after_the_end() -> None:
    line, bridges, notes = recorded_line("always")
    call, _agent = await connected_call(line)
    await until(lambda: bool(bridges.records))
    (bridge,) = line.ari.called("create_bridge")
    bridge_id = bridge.args["bridge_id"]
    assert bridges.plays == [(bridge_id, f"sound:{NOTICE.file}")]
    assert bridges.records == [(bridge_id, f"centralita/2026/11/25/{call.call_ref}-1", "wav")]
    assert notes.notes == []  # the interaction is written when the call ends
    await line.ends(call.call_ref)
    assert line.recorder.of(7)[-1] == ("ended", CallEnd.COMPLETED)
    (note,) = notes.notes
    assert (note.file, note.attempt_id, note.policy, note.source, note.campaign) == (
        f"2026/11/25/{call.call_ref}-1.wav",
        7,
        "always",
        "ari_bridge",
        "Renovaciones",
    )
    assert line.clean()


@run
async def test_an_on_demand_campaign_announces_but_does_not_record() -> None:
    line, bridges, notes = recorded_line("on_demand")
    call, _agent = await connected_call(line)
    await until(lambda: bool(bridges.plays))
    await line.ends(call.call_ref)
    assert bridges.records == [] and notes.notes == []


@run
async def test_a_campaign_that_never_records_and_a_callback_neither_announce_nor_record() -> None:
    for policy in ("never", None):
        line, bridges, notes = recorded_line(policy)
        call, _agent = await connected_call(line)
        await line.ends(call.call_ref)
        assert bridges.plays == [] and bridges.records == [] and notes.notes == []


@run
async def test_a_notice_asterisk_refuses_leaves_the_call_connected_and_unrecorded() -> None:
    line, bridges, notes = recorded_line("always")
    bridges.refuse = "Bridge not found"
    call, _agent = await connected_call(line)
    await line.ends(call.call_ref)
    assert line.recorder.of(7)[-1] == ("ended", CallEnd.COMPLETED)
    assert bridges.records == [] and notes.notes == []


@run
async def test_a_recordings_path_ari_cannot_write_to_announces_but_records_nothing() -> None:
    line, bridges, notes = recorded_line("always", path="/var/spool/asterisk/centralita")
    call, _agent = await connected_call(line)
    await until(lambda: bool(bridges.plays))
    await line.ends(call.call_ref)
    assert bridges.records == [] and notes.notes == []
