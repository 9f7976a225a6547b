"""Interval reports: every KPI per 15 minutes, hour or day and per queue, agent, campaign or channel; IVR
drop-off nodes; the journey map's data. JSON, or CSV streamed a chunk at a time."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime
from sqlalchemy.orm import Session, sessionmaker

from api.deps import in_read_session
from api.responses import json_response
from api.routers.stats import ReadReports
from core.db import utcnow
from core.errors import InvalidInput
from reporting import service
from reporting.buckets import Interval, bucket_end
from reporting.kpis import KPI_COLUMNS, GroupBy, KpiRow

router = APIRouter(tags=["reports"])


class ReportKind(StrEnum):
    KPIS = "kpis"
    IVR_DROP_OFF = "ivr-drop-off"
    JOURNEYS = "journeys"


def _options(request: Request) -> service.ReportOptions:
    options: service.ReportOptions | None = getattr(request.app.state, "report_options", None)
    return options or service.ReportOptions()


def _zone(name: str | None, default: tzinfo) -> tzinfo:
    if not name:
        return default
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}; use an IANA name such as Europe/Madrid") from None


def _cell(value: Any, zone: tzinfo) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat()
    return str(value)


def _csv(header: list[str], rows: Iterable[list[Any]], zone: tzinfo) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for count, row in enumerate(rows, 1):
        writer.writerow([_cell(value, zone) for value in row])
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _streamed(
    factory: sessionmaker[Session], header: list[str], produce: Any, zone: tzinfo, filename: str
) -> StreamingResponse:
    """The rows, read in a session of the stream's own (the request's is gone once streaming starts)."""

    def lines() -> Iterator[str]:
        with factory() as db:
            yield from _csv(header, produce(db), zone)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _kpi_cells(row: KpiRow, group_by: GroupBy) -> list[Any]:
    values = row.as_dict()
    return [values[column] for column in KPI_COLUMNS if column != "group" or group_by is not GroupBy.NONE]


@router.get("/reports/{kind}", response_model=None)
async def report(
    kind: ReportKind,
    request: Request,
    _: ReadReports,
    start: Annotated[AwareDatetime, Query(alias="from", description="inclusive, with a time zone")],
    end: Annotated[AwareDatetime, Query(alias="to", description="exclusive, with a time zone")],
    interval: Interval = Interval.HOUR,
    group_by: GroupBy = GroupBy.NONE,
    format: Literal["json", "csv"] = "json",
    tz: Annotated[str | None, Query(description="IANA time zone of the buckets, e.g. Europe/Madrid")] = None,
    by: Annotated[Literal["customer", "case"], Query(description="journeys: per customer or per case")] = (
        "customer"
    ),
    queue: Annotated[str | None, Query(description="journeys: only those through this queue")] = None,
    campaign: Annotated[str | None, Query(description="journeys: only those with this campaign")] = None,
    channel: Annotated[str | None, Query(description="journeys: only those with this channel")] = None,
    max_steps: Annotated[int, Query(ge=1, le=30, description="journeys: steps drawn per journey")] = 8,
) -> Response:
    """`kpis`: every KPI per bucket (`interval`: 15m, hour, day on the `tz` wall clock) and group
    (`group_by`), contacts counted in the bucket they started in. `ivr-drop-off`: calls that hung up in the
    IVR per node. `journeys`: the Sankey data (nodes, links, drop-off) of customers' moves between
    channels, IVR nodes and queues. `format=csv` streams a CSV with a header row."""
    options = _options(request)
    zone = _zone(tz, options.zone)
    now = utcnow()
    factory: sessionmaker[Session] = request.app.state.read_session_factory
    group_column = [] if group_by is GroupBy.NONE else [group_by.value]
    if kind is ReportKind.JOURNEYS:
        journey = await in_read_session(
            request,
            lambda db: service.journey_report(
                db=db, start=start, end=end, by=by, queue=queue, campaign=campaign, channel=channel,
                max_steps=max_steps,
            ),
        )  # fmt: skip
        if format == "json":
            return json_response({"kind": kind.value, "from": start, "to": end, "by": by} | journey.as_dict())
        labels = {node.id: node.label for node in journey.nodes}
        rows = [[k.source, labels[k.source], k.target, labels[k.target], k.value] for k in journey.links]
        header = ["source", "source_label", "target", "target_label", "journeys"]
        return StreamingResponse(
            iter(list(_csv(header, rows, zone))),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="journeys.csv"'},
        )

    service.check_range(start, end, interval, options)  # a clear 422 before any streaming starts
    if kind is ReportKind.KPIS:

        def kpi_rows(db: Session) -> Iterator[KpiRow]:
            return service.kpi_report(
                db=db, start=start, end=end, interval=interval, zone=zone, group_by=group_by,
                options=options, now=now,
            )  # fmt: skip

        if format == "csv":
            header = ["bucket_start", "bucket_end", *group_column, *KPI_COLUMNS[3:]]
            return _streamed(
                factory,
                header,
                lambda db: (_kpi_cells(row, group_by) for row in kpi_rows(db)),
                zone,
                f"kpis-{interval.value}.csv",
            )
        rows_json = await in_read_session(
            request, lambda db: [_kpi_json(r, group_by, zone) for r in kpi_rows(db)]
        )
        return json_response(_envelope(kind, start, end, interval, group_by, zone) | {"rows": rows_json})

    def drop_offs(db: Session) -> Iterator[list[Any]]:
        for bucket, group, node, calls in service.drop_off_report(
            db=db, start=start, end=end, interval=interval, zone=zone, group_by=group_by, options=options
        ):
            yield [
                bucket,
                bucket_end(bucket, interval, zone),
                *([group] if group_column else []),
                node,
                calls,
            ]

    header = ["bucket_start", "bucket_end", *group_column, "node", "calls"]
    if format == "csv":
        return _streamed(factory, header, drop_offs, zone, f"ivr-drop-off-{interval.value}.csv")
    table = await in_read_session(request, lambda db: list(drop_offs(db)))
    rows_out = [
        {
            name: (value.astimezone(zone) if isinstance(value, datetime) else value)
            for name, value in zip(header, row, strict=True)
        }
        for row in table
    ]
    return json_response(_envelope(kind, start, end, interval, group_by, zone) | {"rows": rows_out})


def _envelope(
    kind: ReportKind, start: datetime, end: datetime, interval: Interval, group_by: GroupBy, zone: tzinfo
) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "from": start,
        "to": end,
        "interval": interval.value,
        "group_by": group_by.value,
        "time_zone": str(zone),
    }


def _kpi_json(row: KpiRow, group_by: GroupBy, zone: tzinfo) -> dict[str, Any]:
    values = row.as_dict()
    group = values.pop("group")
    values["bucket_start"] = row.bucket_start.astimezone(zone)
    values["bucket_end"] = row.bucket_end.astimezone(zone)
    if group_by is not GroupBy.NONE:
        values[group_by.value] = group
    return values
