"""Contact lists uploaded as CSV: streamed in, each contact a customer, a per-row report."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from test_campaigns_api import campaign_body

from centralita.container import Container
from core.customers.models import Customer
from dialer.models import CampaignContact

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


def test_numbers_on_a_do_not_call_list_are_reported_with_the_lists_they_are_on(client: TestClient) -> None:
    campaign = make_campaign(client)
    other = make_campaign(client, name="Otra campaña")
    client.post("/api/v1/do-not-call", json={"numbers": ["600000001", "600000003"]})
    client.post(f"/api/v1/campaigns/{campaign}/do-not-call", json={"numbers": ["600000002", "600000003"]})
    client.post(f"/api/v1/campaigns/{other}/do-not-call", json={"numbers": ["600000004"]})
    report = upload(client, campaign, b"movil\n600000001\n600000002\n600000003\n600000004\n").json()
    assert (report["rows_loaded"], report["summary"]["problems"]) == (1, {"do_not_call": 3})
    problems = client.get(f"/api/v1/campaigns/{campaign}/lists/{report['id']}/problems").json()
    assert [(p["row_number"], p["detail"]) for p in problems] == [
        (1, "+34600000001 is on the global list of numbers not to call (line 2, column movil)"),
        (2, "+34600000002 is on this campaign's list of numbers not to call (line 3, column movil)"),
        (
            3,
            "+34600000003 is on the global list and this campaign's list of numbers not to call"
            " (line 4, column movil)",
        ),
    ]
    # Another campaign's list is not this one's: that number was loaded.
    assert upload(client, other, b"phone\n600000004\n").json()["summary"]["problems"] == {"do_not_call": 1}


def test_a_list_of_several_batches_reports_every_problem_in_the_files_order(client: TestClient) -> None:
    campaign = make_campaign(client)
    assert upload(client, campaign, b"phone\n600000010\n600005500\n").json()["rows_loaded"] == 2
    client.post("/api/v1/do-not-call", json={"numbers": ["600000020", "600005600"]})
    lines = [f"6{i:08d}" for i in range(6_000)]  # more rows than one batch holds
    lines[30] = "12"  # invalid
    lines[5_700] = lines[40]  # the same number earlier in the file
    report = upload(client, campaign, ("phone\n" + "\n".join(lines) + "\n").encode()).json()
    assert (report["rows_read"], report["rows_loaded"], report["rows_rejected"]) == (6_000, 5_994, 6)
    expected = [
        (11, "duplicate"),  # already in the campaign
        (21, "do_not_call"),
        (31, "invalid_number"),
        (5_501, "duplicate"),
        (5_601, "do_not_call"),
        (5_701, "duplicate"),
    ]
    problems = client.get(f"/api/v1/campaigns/{campaign}/lists/{report['id']}/problems").json()
    assert [(p["row_number"], p["problem"]) for p in problems] == expected
    assert [(p["row"], p["problem"]) for p in report["summary"]["first_problems"]] == expected


def test_a_name_that_folds_longer_than_it_is_still_loads(client: TestClient) -> None:
    campaign = make_campaign(client)
    name = "Straß" * 40  # 200 characters, 240 once folded ("ß" is "ss")
    report = upload(client, campaign, f"phone,name\n600111222,{name}\n".encode()).json()
    assert (report["status"], report["rows_loaded"]) == ("done", 1), report
    found = client.get("/api/v1/customers/lookup", params={"phone": "600111222"}).json()
    assert found["customer"]["name"] == name


def test_backslashes_tabs_and_line_breaks_in_fields_arrive_as_written(
    client: TestClient, container: Container
) -> None:
    campaign = make_campaign(client)
    note = 'a\\b\tc\r\nd \\N "e"'
    csv = f'phone,name,note\n600111222,Ana \\N García,"{note.replace(chr(34), chr(34) * 2)}"\n'
    report = upload(client, campaign, csv.encode()).json()
    assert report["rows_loaded"] == 1, report
    with container.session_factory() as db:
        contact = db.scalars(select(CampaignContact).where(CampaignContact.campaign_id == campaign)).one()
        customer = db.get(Customer, contact.customer_id)
    assert contact.attributes == {"note": note, "name": "Ana \\N García"}
    assert customer is not None and (customer.name, customer.name_search) == (
        "Ana \\N García",
        "ana \\n garcia",
    )
