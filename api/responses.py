"""JSON answers encoded straight from plain dicts, for the hot reads."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

# Timestamps as pydantic writes them everywhere else in the API: "2026-11-24T10:00:00Z".
_OPTIONS = orjson.OPT_UTC_Z


def json_response(document: Any) -> Response:
    """Skips FastAPI's response validation: the document is already shaped like the route's
    response model, because its fields are read from that model (see core/customers/screen_pop.py)."""
    return Response(orjson.dumps(document, option=_OPTIONS), media_type="application/json")
