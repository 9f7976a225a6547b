"""The composition root: every long-lived object is made here, once, and handed to what uses it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from core import migrate
from core.auth.service import KeyVerifier
from core.db import make_engine, make_session_factory
from core.events import EventBus, InProcessEventBus, bind_outbox
from core.settings import Settings

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

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def api(self) -> FastAPI:
        return create_app(
            settings=self.settings,
            session_factory=self.session_factory,
            read_session_factory=self.read_session_factory,
            key_verifier=self.key_verifier,
        )

    def close(self) -> None:
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
