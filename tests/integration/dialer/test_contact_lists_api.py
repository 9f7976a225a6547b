"""Contact lists uploaded as CSV: streamed in, each contact a customer, a per-row report."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from test_campaigns_api import campaign_body

CSV = "text/csv"


def make_campaign(client: TestClient, **changes: Any) -> int:
    response = client.post("/api/v1/campaigns", json=campaign_body(**changes))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def upload(client: TestClient, campaign: int, body: bytes | Iterator[bytes], **params: str) -> Any:
    return client.post(
        f"/api/v1/campaigns/{campaign}/lists", content=body, headers={"Content-Type": CSV}, params=params
    )


def test_a_list_loads_contacts_as_customers_and_reports_each_bad_row(client: TestClient) -> None:
    existing = client.post(
        "/api/v1/customers", json={"name": "Ana", "identities": [{"kind": "phone", "value": "600111222"}]}
    ).json()
    client.post("/api/v1/do-not-call", json={"numbers": ["600999000"]})
    campaign = make_campaign(client)
    csv = (
        "telefono;nombre;email;poliza\n"
        "600 111 222;Ana García;ana@example.com;P-1\n"
        "+34 600 333 444;Luis;;P-2\n"
        "not a number;Nadie;;P-3\n"
        "600-333-444;Luis otra vez;;P-4\n"
        "600999000;No llamar;;P-5\n"
    ).encode()
    response = upload(client, campaign, csv, filename="noviembre.csv")
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["status"], report["filename"], report["rows_read"]) == ("done", "noviembre.csv", 5)
    assert (report["rows_loaded"], report["rows_rejected"]) == (2, 3)
    assert report["summary"]["problems"] == {"invalid_number": 1, "duplicate": 1, "do_not_call": 1}
    problems = client.get(f"/api/v1/campaigns/{campaign}/lists/{report['id']}/problems").json()
    assert [(p["row_number"], p["problem"]) for p in problems] == [
        (3, "invalid_number"),
        (4, "duplicate"),
        (5, "do_not_call"),
    ]
    # The known number joined its customer; the new one is a new customer, with the row's name.
    ana = client.get("/api/v1/customers/lookup", params={"phone": "+34600111222"}).json()
    assert ana["customer"]["id"] == existing["id"]
    luis = client.get("/api/v1/customers/lookup", params={"phone": "600333444"}).json()
    assert luis["customer"]["name"] == "Luis"


def test_a_number_already_in_the_campaign_is_not_loaded_twice(client: TestClient) -> None:
    campaign = make_campaign(client)
    assert upload(client, campaign, b"phone\n600111222\n").json()["rows_loaded"] == 1
    second = upload(client, campaign, b"phone\n+34600111222\n600333444\n").json()
    assert (second["rows_loaded"], second["summary"]["problems"]) == (1, {"duplicate": 1})
    assert client.post(f"/api/v1/campaigns/{campaign}/start").json()["status"] == "running"


def test_a_streamed_upload_in_small_chunks_is_read_whole(client: TestClient) -> None:
    campaign = make_campaign(client)
    lines = [b"phone,name\n"] + [f"6{i:08d},Cliente {i}\n".encode() for i in range(3000)]
    data = b"".join(lines)
    chunks = iter([data[i : i + 777] for i in range(0, len(data), 777)])
    report = upload(client, campaign, chunks).json()
    assert (report["rows_read"], report["rows_loaded"], report["rows_rejected"]) == (3000, 3000, 0)


def test_garbage_is_refused_clearly_and_what_came_before_a_break_is_kept(client: TestClient) -> None:
    campaign = make_campaign(client)
    spreadsheet = upload(client, campaign, b"PK\x03\x04" + bytes(200))
    assert spreadsheet.status_code == 201
    assert spreadsheet.json()["status"] == "failed" and "Excel" in spreadsheet.json()["error"]
    # Then 10 GB without a newline, as far as the parser can tell: it stops after 64 KiB of one line.
    broken = b"phone\n600111222\n600333444\n" + b"6" * 70_000
    report = upload(
        client, campaign, iter([broken[i : i + 4096] for i in range(0, len(broken), 4096)])
    ).json()
    assert report["status"] == "failed" and "line 4, byte 26" in report["error"]
    assert report["rows_loaded"] == 2, str(report)


def test_uploads_may_be_larger_than_other_bodies_and_stopped_campaigns_take_none(client: TestClient) -> None:
    campaign = make_campaign(client)
    note = "x" * 100
    big = b"phone,note\n" + b"".join(f"6{i:08d},{note}\n".encode() for i in range(12_000))  # 1.3 MB > 1 MB
    assert len(big) > 1_048_576
    assert upload(client, campaign, big).json()["rows_loaded"] == 12_000
    client.post(f"/api/v1/campaigns/{campaign}/stop")
    refused = upload(client, campaign, b"phone\n600111222\n")
    assert refused.status_code == 422 and "stopped" in refused.json()["detail"]
    assert upload(client, 999_999, b"phone\n600111222\n").status_code == 404
