"""The composition root: every long-lived object is made here, once, and handed to what uses it."""

from __future__ import annotations

import asyncio
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
from dialer.ari_network import AriCallNetwork
from dialer.call_network import CallNetwork
from dialer.clock import Clock, ScaledClock, SystemClock
from dialer.simulated_network import SimulatedCallNetwork
from dialer.supervisor import DialerSupervisor
from voice.agi.ivr_port import ivr_router
from voice.agi.server import FastAgiServer
from voice.ari.client import AriClient
from voice.ari.events_stream import AriEventStream
from voice.ari.ivr_port import AriPortOptions
from voice.ari.router import AriRouter
from voice.ari.stasis_app import StasisIvr
from voice.call_journal import TimelineCallJournal
from voice.flows import FlowCatalogue, flow_directories, load_catalogue
from voice.ivr.call_runner import CallRunner, LinkSender

log = logging.getLogger(__name__)

# The rendered dialplan's context for calls the IVR cannot take (asterisk/templates/extensions.conf).
IVR_FAILED_CONTEXT = "centralita-ivr-failed"


@dataclass
class AriServices:
    """What runs over ARI, as `serve` runs it: one REST client, one event stream and one router shared by
    the IVR (the Stasis application) and, with CENTRALITA_DIALER_NETWORK=ari, the dialer's calls. One
    stream, because Asterisk keeps one event WebSocket per application."""

    client: AriClient
    router: AriRouter
    stream: AriEventStream
    ivr: StasisIvr
    network: AriCallNetwork | None = None

    async def start(self) -> asyncio.Task[None]:
        """Take calls; the returned task runs the event stream (it reconnects on its own and ends only
        on stop(), or with AriUnauthorized for wrong credentials)."""
        await self.ivr.start()
        return asyncio.create_task(self.stream.run(), name="ARI event stream")

    async def stop(self, grace_seconds: float) -> None:
        await self.ivr.stop(grace_seconds=grace_seconds)  # events keep coming while calls finish
        if self.network is not None:
            await self.network.close(grace_seconds=grace_seconds)
        await self.stream.stop()
        await self.client.aclose()


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

    def ari(self, *, runner: CallRunner | None = None) -> AriServices | None:
        """The IVR over ARI, and the dialer's ARI network when CENTRALITA_DIALER_NETWORK=ari
        (CENTRALITA_ASTERISK_ARI_URL, _USER, _PASSWORD, _APP); None when no URL is set."""
        settings = self.settings
        if not settings.asterisk_ari_url:
            return None
        # The setting may name ARI's root (".../ari"); the client and the stream add /ari themselves.
        base_url = settings.asterisk_ari_url.rstrip("/").removesuffix("/ari")
        user, password, app = (
            settings.asterisk_ari_user,
            settings.asterisk_ari_password,
            settings.asterisk_ari_app,
        )
        client = AriClient(base_url, user, password)
        router = AriRouter()
        ivr = StasisIvr(
            client,
            router,
            runner or self.call_runner(),
            self.flows().get,
            application=app,
            failed_context=IVR_FAILED_CONTEXT,
            options=AriPortOptions(transfer_context=settings.agi_transfer_context),
        )
        network = None
        if settings.dialer_network == "ari":
            network = AriCallNetwork(
                client,
                router,
                app=app,
                endpoint_template=settings.dialer_endpoint,
                agent_ring_timeout_s=settings.dialer_agent_ring_seconds,
            )

        async def on_connect() -> None:
            await ivr.resync()
            if network is not None:
                await network.resync()

        stream = AriEventStream(base_url, [app], user, password, router, on_connect=on_connect)
        return AriServices(client, router, stream, ivr, network)

    def dialer(self, ari: AriServices | None = None) -> DialerSupervisor | None:
        """The dialer (CENTRALITA_DIALER_NETWORK): runs the running campaigns; None when it is off.
        With the ARI network it needs `ari` (the shared ARI services)."""
        settings = self.settings
        clock: Clock
        network: CallNetwork
        if settings.dialer_network == "off":
            return None
        if settings.dialer_network == "simulated":
            clock = ScaledClock(settings.dialer_simulation_speed)
            network = SimulatedCallNetwork(clock)
        else:
            if ari is None or ari.network is None:
                raise RuntimeError("CENTRALITA_DIALER_NETWORK=ari needs CENTRALITA_ASTERISK_ARI_URL")
            clock, network = SystemClock(), ari.network
        return DialerSupervisor(
            self.session_factory, self.engine, network, clock, region=settings.default_region, bus=self.bus
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
