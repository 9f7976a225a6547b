"""Call recordings over the API, on SQLite and PostgreSQL: who may list and play them (supervisors any,
agents their own calls), an audit row per file served, nothing outside the recordings directory ever
served, a missing or deleted file said so; and an agent starting one on demand through AMI."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from centralita.container import Container
from core.audit.service import entries_for
from core.auth import service as keys
from core.auth.roles import Role
from core.db import unit_of_work
from routing.recording_asterisk import FakeChannelRecorder
from routing.recordings import RecordingStart, note_started

LINKEDID = "1714812345.12"
STARTED = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)


def key(container: Container, role: Role, name: str) -> tuple[int, str]:
    with unit_of_work(container.session_factory) as db:
        row, plain = keys.create_key(db=db, role=role, name=name)
        return row.id, plain


def auth(plain: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plain}"}


def live_call(client: TestClient, *, linkedid: str = LINKEDID) -> int:
    response = client.post(
        "/api/v1/interactions",
        json={
            "channel": "voice",
            "direction": "inbound",
            "started_at": "2026-05-04T10:29:00Z",
            "external_refs": [{"kind": "asterisk_linkedid", "value": linkedid}],
            "attributes": {"channel": "PJSIP/trunk-00000012", "flow": "banco_es"},
        },
    )
    assert response.status_code == 201, response.text
    interaction_id: int = response.json()["id"]
    return interaction_id


def step(client: TestClient, interaction_id: int, kind: str, **attributes: Any) -> None:
    response = client.post(
        f"/api/v1/interactions/{interaction_id}/touchpoints", json={"kind": kind, "attributes": attributes}
    )
    assert response.status_code == 201, response.text


def recorded(container: Container, interaction_id: int, number: int = 1) -> str:
    name = f"2026/05/04/{LINKEDID}-{number}.wav"
    with unit_of_work(container.session_factory) as db:
        note_started(
            db=db,
            start=RecordingStart(
                file=name,
                number=number,
                started_at=STARTED,
                policy="always",
                requested_by="policy",
                source="mixmonitor",
                interaction_id=interaction_id,
                queue="facturacion",
            ),
        )
    return name


@pytest.fixture
def recordings_dir(container: Container, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "recordings"
    root.mkdir()
    monkeypatch.setattr(container.settings, "asterisk_recordings_dir", root)
    return root


def write_file(root: Path, name: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(WAV)


def agent_for(client: TestClient, key_id: int, name: str = "ana") -> None:
    response = client.post(
        "/api/v1/agents",
        json={
            "name": name,
            "display_name": name.title(),
            "home_endpoint": "PJSIP/1001",
            "api_key_id": key_id,
        },
    )
    assert response.status_code == 201, response.text


def test_a_manager_lists_and_plays_a_recording_and_every_listen_is_audited(
    client: TestClient, container: Container, recordings_dir: Path
) -> None:
    call = live_call(client)
    name = recorded(container, call)
    write_file(recordings_dir, name)
    _, manager = key(container, Role.MANAGER, "supervisora")

    listed = client.get(f"/api/v1/interactions/{call}/recordings", headers=auth(manager))
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert (item["number"], item["file"], item["policy"], item["requested_by"]) == (
        1,
        name,
        "always",
        "policy",
    )
    assert item["deleted_at"] is None and item["queue"] == "facturacion"

    for _ in range(2):
        played = client.get(f"/api/v1/interactions/{call}/recordings/1", headers=auth(manager))
        assert played.status_code == 200, played.text
        assert played.headers["content-type"] == "audio/wav" and played.content == WAV
    with container.read_session_factory() as db:
        listens = [e for e in entries_for(db=db, subject_type="interaction", subject_id=call)]
    assert [(e.action, e.actor, e.details) for e in listens] == [
        ("recording.listened", "supervisora", {"number": 1, "file": name})
    ] * 2


def test_an_agent_hears_only_the_calls_they_answered_and_other_roles_none(
    client: TestClient, container: Container, recordings_dir: Path
) -> None:
    agent_key_id, agent = key(container, Role.AGENT, "ana's key")
    agent_for(client, agent_key_id)
    theirs, other = live_call(client), live_call(client, linkedid="1714812345.99")
    step(client, theirs, "agent_connect", agent="ana", queue="facturacion")
    step(client, other, "agent_connect", agent="luis", queue="facturacion")
    for call in (theirs, other):
        write_file(recordings_dir, recorded(container, call))
    _, integration = key(container, Role.INTEGRATION, "crm")

    assert client.get(f"/api/v1/interactions/{theirs}/recordings/1", headers=auth(agent)).status_code == 200
    refused = client.get(f"/api/v1/interactions/{other}/recordings/1", headers=auth(agent))
    assert refused.status_code == 403 and "recordings:listen" in refused.json()["detail"]
    assert client.get(f"/api/v1/interactions/{other}/recordings", headers=auth(agent)).status_code == 403
    crm = client.get(f"/api/v1/interactions/{theirs}/recordings", headers=auth(integration))
    assert crm.status_code == 403 and "recordings:listen or recordings:own" in crm.json()["detail"]
    with container.read_session_factory() as db:
        assert entries_for(db=db, subject_type="interaction", subject_id=other) == []


def test_a_file_name_that_would_leave_the_recordings_directory_is_never_served(
    client: TestClient, container: Container, recordings_dir: Path
) -> None:
    secret = recordings_dir.parent / "secret.wav"
    secret.write_bytes(b"not for you")
    call = live_call(client)
    # Anyone who may write touchpoints can write this one; it must never become a path.
    step(client, call, "recording", file="../secret.wav", number=1, policy="always")
    response = client.get(f"/api/v1/interactions/{call}/recordings/1")
    assert response.status_code == 409 and "not a recording name" in response.json()["detail"]
    assert b"not for you" not in response.content
    with container.read_session_factory() as db:
        assert entries_for(db=db, subject_type="interaction", subject_id=call) == []


def test_a_missing_deleted_or_unknown_recording_is_404_saying_which(
    client: TestClient, container: Container, recordings_dir: Path
) -> None:
    call = live_call(client)
    recorded(container, call)  # no file written
    missing = client.get(f"/api/v1/interactions/{call}/recordings/1")
    assert missing.status_code == 404 and "missing from the recordings directory" in missing.json()["detail"]
    unknown = client.get(f"/api/v1/interactions/{call}/recordings/2")
    assert unknown.status_code == 404 and "no recording 2" in unknown.json()["detail"]
    assert client.get("/api/v1/interactions/999999/recordings").status_code == 404
    step(
        client,
        call,
        "recording",
        file=f"2026/05/04/{LINKEDID}-3.wav",
        number=3,
        deleted_at="2026-08-03T00:00:00Z",
    )
    deleted = client.get(f"/api/v1/interactions/{call}/recordings/3")
    assert (
        deleted.status_code == 404
        and "deleted on 2026-08-03 by the retention job" in deleted.json()["detail"]
    )


def test_without_the_recordings_directory_files_cannot_be_served(
    client: TestClient, container: Container
) -> None:
    call = live_call(client)
    recorded(container, call)
    response = client.get(f"/api/v1/interactions/{call}/recordings/1")
    assert response.status_code == 503 and "CENTRALITA_ASTERISK_RECORDINGS_DIR" in response.json()["detail"]


# --- on demand -------------------------------------------------------------------------------------------


@pytest.fixture
def on_demand_call(client: TestClient, container: Container) -> tuple[int, str, FakeChannelRecorder]:
    """A live call in an on-demand queue, answered by agent ana (whose key is returned)."""
    agent_key_id, agent = key(container, Role.AGENT, "ana's key")
    agent_for(client, agent_key_id)
    assert (
        client.post("/api/v1/queues", json={"name": "facturacion", "recording": "on_demand"}).status_code
        == 201
    )
    call = live_call(client)
    step(client, call, "queue_enter", queue="facturacion")
    step(client, call, "agent_connect", agent="ana", queue="facturacion")
    fake = FakeChannelRecorder()
    client.app.state.channel_recorder = fake  # type: ignore[attr-defined]
    return call, agent, fake


def test_an_agent_records_their_own_call_on_demand_through_mixmonitor(
    client: TestClient, container: Container, on_demand_call: tuple[int, str, FakeChannelRecorder]
) -> None:
    call, agent, fake = on_demand_call
    started = client.post(f"/api/v1/interactions/{call}/recording/start", headers=auth(agent))
    assert started.status_code == 201, started.text
    body = started.json()
    assert (body["number"], body["policy"], body["requested_by"], body["source"]) == (
        1,
        "on_demand",
        "ana's key",
        "mixmonitor",
    )
    assert body["file"].endswith(f"/{LINKEDID}-1.wav")
    assert fake.started == [("PJSIP/trunk-00000012", f"/var/spool/asterisk/centralita/{body['file']}", "b")]
    again = client.post(f"/api/v1/interactions/{call}/recording/start", headers=auth(agent))
    assert again.status_code == 201 and again.json()["number"] == 2
    listed = client.get(f"/api/v1/interactions/{call}/recordings", headers=auth(agent)).json()["items"]
    assert [item["number"] for item in listed] == [1, 2]
    with container.read_session_factory() as db:
        actions = [e.action for e in entries_for(db=db, subject_type="interaction", subject_id=call)]
    assert actions == ["recording.started", "recording.started"]


def test_on_demand_is_refused_with_the_reason(
    client: TestClient, container: Container, on_demand_call: tuple[int, str, FakeChannelRecorder]
) -> None:
    call, agent, fake = on_demand_call
    url = f"/api/v1/interactions/{call}/recording/start"
    other_key_id, other_agent = key(container, Role.AGENT, "luis's key")
    agent_for(client, other_key_id, "luis")
    assert client.post(url, headers=auth(other_agent)).status_code == 403

    fake.refuse = "No such channel"
    refused = client.post(url, headers=auth(agent))
    assert refused.status_code == 409 and "No such channel" in refused.json()["detail"]
    fake.refuse, fake.unavailable = None, "cannot connect to 127.0.0.1:5038"
    assert client.post(url, headers=auth(agent)).status_code == 503
    del client.app.state.channel_recorder  # type: ignore[attr-defined]
    no_ami = client.post(url, headers=auth(agent))
    assert no_ami.status_code == 503 and "CENTRALITA_ASTERISK_AMI_HOST" in no_ami.json()["detail"]

    client.app.state.channel_recorder = FakeChannelRecorder()  # type: ignore[attr-defined]
    assert client.patch("/api/v1/queues/facturacion", json={"recording": "never"}).status_code == 200
    never = client.post(url, headers=auth(agent))
    assert never.status_code == 409 and "never recorded" in never.json()["detail"]
    assert client.patch("/api/v1/queues/facturacion", json={"recording": "on_demand"}).status_code == 200
    closed = client.post(f"/api/v1/interactions/{call}/close", json={"outcome": "completed"})
    assert closed.status_code == 200
    ended = client.post(url, headers=auth(agent))
    assert ended.status_code == 409 and "has ended" in ended.json()["detail"]
    assert client.get(f"/api/v1/interactions/{call}/recordings").json()["items"] == []
