"""Builds the FastAPI application around objects made by the composition root."""

from __future__ import annotations

import re

import anyio
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from api.errors import BodySizeLimit, install_error_handlers
from api.routers import admin, campaigns, cases, customers, interactions
from api.routers import agents as agents_api
from api.routers import callbacks as callbacks_api
from api.routers import continuation as continuation_api
from api.routers import messages as messages_api
from api.routers import pages as pages_api
from api.routers import queues as queues_api
from api.routers import recordings as recordings_api
from api.routers import reports as reports_api
from api.routers import stats as stats_api
from api.routers import webhooks as webhooks_api
from core.auth.service import KeyVerifier
from core.settings import Settings
from messaging.channels import MessagingChannels
from reporting.live import LiveStats
from reporting.service import ReportOptions
from routing.callback_dialer import CallbackDesk
from routing.runtime import InboundRouting


def create_app(
    *,
    settings: Settings,
    session_factory: sessionmaker[Session],
    read_session_factory: sessionmaker[Session],
    key_verifier: KeyVerifier,
    read_threads: int = 2,
    messaging: MessagingChannels | None = None,
    live_stats: LiveStats | None = None,
    report_options: ReportOptions | None = None,
    routing: InboundRouting | None = None,
    callbacks: CallbackDesk | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Centralita",
        version="0.1.0",
        summary="Voice-first contact center: one customer timeline across every channel.",
        # The callback desk runs on the server's loop while it serves (it joins due callbacks).
        lifespan=(lambda _app: callbacks.running()) if callbacks is not None else None,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.read_session_factory = read_session_factory
    app.state.key_verifier = key_verifier
    app.state.messaging = messaging or MessagingChannels(region=settings.default_region)
    app.state.read_limiter = anyio.CapacityLimiter(read_threads)
    app.state.routing = routing  # agents, queues and the live ACD; None: their routes answer 503
    app.state.callbacks = callbacks  # the callback desk: its rules; None: rules from the settings
    app.state.live_stats = live_stats  # started by its first reader
    app.state.report_options = report_options or (live_stats.options if live_stats else ReportOptions())
    for router in (customers.router, interactions.router, cases.router, campaigns.router, admin.router):
        app.include_router(router, prefix="/api/v1")
    app.include_router(messages_api.router, prefix="/api/v1")
    app.include_router(agents_api.router, prefix="/api/v1")
    app.include_router(queues_api.router, prefix="/api/v1")
    app.include_router(webhooks_api.router, prefix="/api/v1")
    app.include_router(stats_api.router, prefix="/api/v1")
    app.include_router(reports_api.router, prefix="/api/v1")
    app.include_router(callbacks_api.router, prefix="/api/v1")
    app.include_router(recordings_api.router, prefix="/api/v1")
    app.include_router(stats_api.metrics_router)
    pages_api.install(app)  # /wallboard, /journey-map, /customers/{id}, /sign-in and /static
    continuation_api.install(app)  # /l/{token}: the page a customer's continuation link opens
    install_error_handlers(app)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    uploads = [(re.compile(r"^/api/v1/campaigns/\d+/lists$"), settings.max_import_bytes)]
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, larger=uploads)
    return app
