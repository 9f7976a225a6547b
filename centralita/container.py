"""The composition root: every long-lived object is made here, once, and handed to what uses it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from core import migrate
from core.auth.service import KeyVerifier
from core.db import make_engine, make_session_factory, utcnow
from core.events import EventBus, InProcessEventBus, bind_outbox
from core.settings import Settings
from voice.agi.ivr_port import ivr_router
from voice.agi.server import FastAgiServer
from voice.call_journal import TimelineCallJournal
from voice.flows import FlowCatalogue, flow_directories, load_catalogue
from voice.ivr.call_runner import CallRunner, LinkSender

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    read_engine: Engine
    session_factory: sessionmaker[Session]
    read_session_factory: sessionmaker[Session]
    bus: EventBus
    key_verifier: KeyVerifier
    _flows: FlowCatalogue | None = field(default=None, init=False, repr=False)
    _journal: TimelineCallJournal | None = field(default=None, init=False, repr=False)

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def api(self) -> FastAPI:
        return create_app(
            settings=self.settings,
            session_factory=self.session_factory,
            read_session_factory=self.read_session_factory,
            key_verifier=self.key_verifier,
        )

    def flows(self) -> FlowCatalogue:
        """The IVR flows, read once: the shipped or configured directory, then the extra ones."""
        if self._flows is None:
            directories = flow_directories(self.settings.flows_dir, self.settings.extra_flows_dirs)
            self._flows = load_catalogue(directories)
        return self._flows

    def call_journal(self) -> TimelineCallJournal:
        """Writes calls to the customer timeline, in a thread pool of its own."""
        if self._journal is None:
            self._journal = TimelineCallJournal(
                session_factory=self.session_factory,
                read_session_factory=self.read_session_factory,
                region=self.settings.default_region,
            )
        return self._journal

    def call_runner(
        self, *, clock: Callable[[], datetime] | None = None, link_sender: LinkSender | None = None
    ) -> CallRunner:
        """The IVR runner. No SMS/WhatsApp sender exists yet: send_link nodes take their on_failure path."""
        return CallRunner(self.call_journal(), link_sender=link_sender, clock=clock or utcnow)

    def agi_server(
        self,
        *,
        runner: CallRunner | None = None,
        host: str | None = None,
        port: int | None = None,
        reuse_port: bool = False,
    ) -> FastAgiServer:
        """The FastAGI server running each call's flow (CENTRALITA_AGI_HOST, _PORT, _ALLOWED)."""
        settings = self.settings
        route = ivr_router(
            self.flows().get,
            runner or self.call_runner(),
            transfer_context=settings.agi_transfer_context,
        )
        return FastAgiServer(
            route,
            host=host or settings.agi_host,
            port=settings.agi_port if port is None else port,
            allowed_peers=settings.agi_allowed,
            reuse_port=reuse_port,
        )

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close_pool()
            self._journal = None
        self.engine.dispose()
        self.read_engine.dispose()


def build(settings: Settings | None = None, *, bus: EventBus | None = None) -> Container:
    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    read_engine = make_engine(settings.database_url, autocommit=True)
    session_factory = make_session_factory(engine)
    read_session_factory = make_session_factory(read_engine)
    bus = bus or InProcessEventBus()
    bind_outbox(session_factory, bus)
    return Container(
        settings=settings,
        engine=engine,
        read_engine=read_engine,
        session_factory=session_factory,
        read_session_factory=read_session_factory,
        bus=bus,
        key_verifier=KeyVerifier(read_session_factory, settings.api_key_cache_seconds),
    )
