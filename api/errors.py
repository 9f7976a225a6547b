"""Domain errors and oversize bodies become clear 4xx answers; nothing is written when they happen."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import Conflict, DomainError, InvalidInput, NotFound

_STATUS = {NotFound: 404, Conflict: 409, InvalidInput: 422}


def install_error_handlers(app: FastAPI) -> None:
    async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
        status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
        body: dict[str, Any] = {"detail": str(exc)}
        violations = getattr(exc, "violations", None)  # rules a campaign would break, one per field
        if violations:
            body["violations"] = [
                {"field": v.field, "rule": v.rule, "message": v.message} for v in violations
            ]
        return JSONResponse(body, status_code=status)

    app.add_exception_handler(DomainError, domain_error)


class BodySizeLimit:
    """Refuses request bodies over `max_bytes` with 413, by header or by counting a streamed body.

    A streamed body that grows too large gets the 413 at once; the application then sees the
    client disconnect, and anything it still tries to answer is dropped. (FastAPI's own
    `max_body_size` answers with a body that is not JSON; every other error here is
    `{"detail": ...}`, so clients can read this one the same way.)
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, *, larger: Sequence[tuple[re.Pattern[str], int]] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger  # paths that take bigger bodies (uploads), with their own limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = next((size for path, size in self.larger if path.match(scope["path"])), self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        seen = 0
        started = refused = False

        async def counting_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit and not started:
                    refused = True
                    await self._refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body: dict[str, Any] = {"detail": f"request body is larger than {limit} bytes"}
        response = JSONResponse(body, status_code=413)
        await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}
