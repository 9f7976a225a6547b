"""Builds the FastAPI application around objects made by the composition root."""

from __future__ import annotations

import re

import anyio
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from api.errors import BodySizeLimit, install_error_handlers
from api.routers import admin, campaigns, cases, customers, interactions
from core.auth.service import KeyVerifier
from core.settings import Settings


def create_app(
    *,
    settings: Settings,
    session_factory: sessionmaker[Session],
    read_session_factory: sessionmaker[Session],
    key_verifier: KeyVerifier,
    read_threads: int = 2,
) -> FastAPI:
    app = FastAPI(
        title="Centralita",
        version="0.1.0",
        summary="Voice-first contact center: one customer timeline across every channel.",
    )
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.read_session_factory = read_session_factory
    app.state.key_verifier = key_verifier
    app.state.read_limiter = anyio.CapacityLimiter(read_threads)
    for router in (customers.router, interactions.router, cases.router, campaigns.router, admin.router):
        app.include_router(router, prefix="/api/v1")
    install_error_handlers(app)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    uploads = [(re.compile(r"^/api/v1/campaigns/\d+/lists$"), settings.max_import_bytes)]
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, larger=uploads)
    return app
