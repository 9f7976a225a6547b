"""Live figures: JSON, a Server-Sent Events stream of them, and Prometheus' /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from api.deps import require
from api.responses import json_response
from core.auth.roles import Permission
from core.auth.service import Principal
from reporting import prometheus
from reporting.live import LiveStats

ReadReports = Annotated[Principal, Depends(require(Permission.REPORTS_READ))]

router = APIRouter(tags=["stats"])
metrics_router = APIRouter(tags=["stats"])


async def _live(request: Request) -> LiveStats:
    live: LiveStats | None = getattr(request.app.state, "live_stats", None)
    if live is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "live figures are not running in this service"
        )
    await anyio.to_thread.run_sync(live.start)  # the first caller loads today (a few queries)
    return live


@router.get("/stats")
async def current(request: Request, _: ReadReports) -> Response:
    """Today's figures (since local midnight in the report time zone) and what is happening now: queues
    (waiting, longest wait, service level, ASA, abandonment), channels, agents, campaigns (the dialer's
    rolling abandonment against its target), the IVR (containment, drop-off nodes), callbacks, CSAT, FCR."""
    live = await _live(request)
    return json_response(live.snapshot())


def _event(snapshot: dict[str, Any]) -> bytes:
    data = orjson.dumps(snapshot, option=orjson.OPT_UTC_Z)
    return b"id: %d\nevent: stats\ndata: " % snapshot["version"] + data + b"\n\n"


@router.get(
    "/stats/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    _: ReadReports,
    keepalive: Annotated[float, Query(ge=1, le=300, description="seconds between keep-alive comments")] = 15,
) -> StreamingResponse:
    """Server-Sent Events: a `stats` event with the figures at once, another within a second of every
    change, and a `: keep-alive` comment when nothing changed for `keepalive` seconds (proxies close
    silent connections)."""
    live = await _live(request)

    async def events() -> AsyncIterator[bytes]:
        snapshot = live.snapshot()
        version = snapshot["version"]
        yield b"retry: 2000\n" + _event(snapshot)
        while True:
            latest = await live.wait_for_change(version, timeout=keepalive)
            if latest == version:
                yield b": keep-alive\n\n"
                continue
            snapshot = live.snapshot()
            version = snapshot["version"]
            yield _event(snapshot)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@metrics_router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(request: Request, _: ReadReports) -> Response:
    """The live figures for Prometheus (text format 0.0.4), every metric `centralita_*`. Scrape with the
    key as a bearer token (`authorization: {credentials: <key>}` in the scrape config)."""
    live = await _live(request)
    return Response(prometheus.exposition(live.snapshot()), media_type=prometheus.CONTENT_TYPE)
