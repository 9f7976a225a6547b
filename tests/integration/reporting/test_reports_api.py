"""Interval reports over HTTP: JSON, the CSV export read back, and clear refusals."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_report_service import write_day

from centralita.container import Container
from core.auth.roles import Role

RANGE = {"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"}


def test_csv_export_reads_back_as_the_json_report(container: Container, client: TestClient) -> None:
    write_day(container)
    params = RANGE | {"interval": "15m", "group_by": "queue", "tz": "Europe/Madrid"}
    as_json = client.get("/api/v1/reports/kpis", params=params)
    as_csv = client.get("/api/v1/reports/kpis", params=params | {"format": "csv"})
    assert as_json.status_code == as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]

    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    rows: list[dict[str, Any]] = as_json.json()["rows"]
    assert len(table) == len(rows) > 0
    header = next(csv.reader(io.StringIO(as_csv.text)))
    assert header[:3] == ["bucket_start", "bucket_end", "queue"]
    for line, row in zip(table, rows, strict=True):
        assert set(line) == set(row)
        for column, value in row.items():
            if value is None:
                assert line[column] == ""
            elif isinstance(value, float | int) and not isinstance(value, bool):
                assert float(line[column]) == pytest.approx(value)
            else:
                assert line[column] == value, column
    # the buckets are on Madrid's clock: 10:00 UTC is 11:00 there
    billing = [r for r in rows if r["queue"] == "billing"]
    # both billing calls arrived in 11:00-11:15 Madrid time (10:00 and 10:10 UTC)
    assert [r["bucket_start"] for r in billing] == ["2026-11-20T11:00:00+01:00"]
    assert billing[0]["queue_offered"] == 2


def test_drop_off_and_journey_reports(container: Container, client: TestClient) -> None:
    write_day(container)
    drop_off = client.get("/api/v1/reports/ivr-drop-off", params=RANGE | {"interval": "day"}).json()
    assert [(r["node"], r["calls"]) for r in drop_off["rows"]] == [("menu", 1)]
    journeys = client.get("/api/v1/reports/journeys", params=RANGE).json()
    assert journeys["journeys"] == 3
    assert {"source", "target", "value"} == set(journeys["links"][0])
    links_csv = client.get("/api/v1/reports/journeys", params=RANGE | {"format": "csv"}).text
    table = list(csv.DictReader(io.StringIO(links_csv)))
    assert sum(int(r["journeys"]) for r in table) == sum(link["value"] for link in journeys["links"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (RANGE | {"interval": "5m"}, "15m"),
        ({"from": "2026-11-21T00:00:00Z", "to": "2026-11-20T00:00:00Z"}, "must be after"),
        (
            {"from": "2026-01-01T00:00:00Z", "to": "2026-11-20T00:00:00Z", "interval": "15m"},
            "at most 31 days",
        ),
        ({"from": "2026-11-20T00:00:00", "to": "2026-11-21T00:00:00Z"}, "timezone"),
        (RANGE | {"tz": "Mars/Olympus"}, "unknown time zone"),
        (RANGE | {"group_by": "weather"}, "queue"),
        (RANGE | {"format": "xlsx"}, "csv"),
    ],
)
def test_bad_reports_get_a_clear_422(client: TestClient, params: dict[str, str], message: str) -> None:
    answer = client.get("/api/v1/reports/kpis", params=params)
    assert answer.status_code == 422
    assert message in str(answer.json()["detail"])


def test_unknown_report_kind_and_missing_permission(client: TestClient, make_key: Any) -> None:
    assert client.get("/api/v1/reports/weather", params=RANGE).status_code == 422
    agent = {"Authorization": f"Bearer {make_key(Role.AGENT)}"}
    assert client.get("/api/v1/reports/kpis", params=RANGE, headers=agent).status_code == 403
