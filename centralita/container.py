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
from dialer.simulated_network import CalleeBehaviour, SimulatedCallNetwork
from dialer.supervisor import DialerSupervisor
from messaging.channels import MessagingChannels
from reporting.live import LiveStats
from reporting.service import ReportOptions
from routing.agent_features import AgentFeatures, agent_feature_router
from routing.callback_dialer import CallbackDesk
from routing.callback_rules import CallbackRules
from routing.callbacks import IvrCallbackBooker
from routing.campaign_agents import AcdCampaignAgents
from routing.crm_webhook import ScreenPopWebhook
from routing.ivr_queues import IvrQueues
from routing.live_queues import AgentConnector, FakeAgentConnector
from routing.preferred_agent import CaseAgentPreference
from routing.recording_asterisk import AriBridgeRecorder
from routing.recording_calls import CampaignRecording, QueueRecording, TimelineRecordingNotes
from routing.recording_retention import RetentionSchedule
from routing.runtime import InboundRouting
from voice.agi.ivr_port import ivr_router, voicemail_recordings
from voice.agi.server import FastAgiServer
from voice.ari.client import AriClient
from voice.ari.events_stream import AriEventStream
from voice.ari.ivr_port import AriPortOptions
from voice.ari.router import AriRouter
from voice.ari.stasis_app import StasisIvr
from voice.audiosocket.server import AudioSocketServer
from voice.call_journal import TimelineCallJournal
from voice.flows import FlowCatalogue, flow_directories, load_catalogue
from voice.ivr.call_runner import CallbackBooker, CallRunner, LinkSender
from voice.prompt_files import FfmpegDecoder, FfmpegEncoder, PromptFileError
from voice.speech.engines import engine_spec
from voice.speech.listener import SpeechListener
from voice.speech.prompt_pcm import PromptSoundLibrary
from voice.speech.recognition_pool import RecognitionPool
from voice.speech.recorded_turn import RecordedTurns, recordings_mount
from voice.speech.silero_vad import SileroDetector
from voice.speech.voicemail_transcripts import VoicemailTranscriber
from voice.text_to_speech import EspeakSynthesizer, SynthesisError, Synthesizer

log = logging.getLogger(__name__)

# Simulated callees of callbacks: they asked for the call, so most answer it.
CALLBACK_CALLEES = CalleeBehaviour(live_answer=0.85, machine=0.03, busy=0.05, failed=0.01)

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
class SpeechServices:
    """Speech turns, as `serve` runs them: the AudioSocket server calls' audio arrives at, the
    recognition workers, and the listener the FastAGI port asks questions through."""

    audiosocket: AudioSocketServer | None  # None: CENTRALITA_AUDIOSOCKET_ENABLED=false
    pool: RecognitionPool
    listener: SpeechListener
    advertised_host: str
    transcriber: VoicemailTranscriber | None = None  # with a shared recordings directory

    async def start(self) -> None:
        await self.pool.start()  # loads the models: a broken one fails here, before calls come
        if self.audiosocket is not None:
            await self.audiosocket.start()
            if not self.listener.address:  # an ephemeral port (0): advertise the one bound
                self.listener.address = f"{self.advertised_host}:{self.audiosocket.port}"

    async def stop(self, grace_seconds: float) -> None:
        if self.audiosocket is not None:
            await self.audiosocket.stop(grace_seconds)
        await self.pool.close()


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
    _messaging: MessagingChannels | None = field(default=None, init=False, repr=False)
    _live_stats: LiveStats | None = field(default=None, init=False, repr=False)
    _routing: InboundRouting | None = field(default=None, init=False, repr=False)
    _callbacks: CallbackDesk | None = field(default=None, init=False, repr=False)
    _recording_notes: TimelineRecordingNotes | None = field(default=None, init=False, repr=False)

    def migrate(self) -> None:
        migrate.upgrade(self.engine)

    def api(self) -> FastAPI:
        return create_app(
            settings=self.settings,
            session_factory=self.session_factory,
            read_session_factory=self.read_session_factory,
            key_verifier=self.key_verifier,
            messaging=self.messaging(),
            live_stats=self.live_stats(),
            routing=self.routing(),
            callbacks=self.callbacks(),
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
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        link_sender: LinkSender | None = None,
        callback_booker: CallbackBooker | None = None,
    ) -> CallRunner:
        """The IVR runner. send_link nodes text through Twilio when it and CENTRALITA_LINK_SECRET are
        set (`messaging()`); otherwise they take their on_failure path. Queue nodes ask the live ACD
        for the estimated wait (`ivr_queues()`); accepted callbacks are booked by `callback_booker`."""
        link_sender = link_sender or self.messaging().link_sender(self.session_factory)
        return CallRunner(
            self.call_journal(),
            link_sender=link_sender,
            queues=self.ivr_queues(),
            callback_booker=callback_booker or self.callback_booker(),
            clock=clock or utcnow,
        )

    def callbacks(self) -> CallbackDesk:
        """The callback desk (routing/callback_dialer.py), one per process: its rules serve every
        booking; it joins and dials callbacks only once `dialer()` gave it a network and the API's
        lifespan started it (the process that runs the dialer)."""
        if self._callbacks is None:
            self._callbacks = CallbackDesk(
                session_factory=self.session_factory,
                bus=self.bus,
                live=self.routing().live,
                rules=CallbackRules.from_settings(self.settings),
                agent_ring_seconds=self.settings.agent_ring_seconds,
            )
        return self._callbacks

    def callback_booker(self) -> IvrCallbackBooker:
        """Books the callbacks IVR callers accept, keeping the place their call had in the queue."""
        return IvrCallbackBooker(
            session_factory=self.session_factory,
            rules=self.callbacks().rules,
            places=self.routing().live.place_of,
        )

    def ivr_queues(self) -> IvrQueues:
        """The live ACD as the IVR uses it; also the ACD's connector, routing each offer to the voice
        port of its call (the connector it had stays the fallback for other offers). Callers with an
        open case are preferred to the agent who handled it last (routing/preferred_agent.py)."""
        queues = IvrQueues.install(self.routing().live)
        if queues.preferred_agents is None:
            queues.preferred_agents = CaseAgentPreference(self.read_session_factory)
        if queues.recording is None:  # queues that record announce it and MixMonitor (routing/recording_*)
            queues.recording = QueueRecording(
                self.recording_notes(), asterisk_path=self.settings.asterisk_recordings_path
            )
        return queues

    def recording_notes(self) -> TimelineRecordingNotes:
        """Recording policies read and recordings put on the timeline, in a thread pool of their own."""
        if self._recording_notes is None:
            self._recording_notes = TimelineRecordingNotes(
                session_factory=self.session_factory, read_session_factory=self.read_session_factory
            )
        return self._recording_notes

    def recording_retention(self) -> RetentionSchedule | None:
        """The daily retention job (CENTRALITA_RECORDING_RETENTION_DAYS) for `serve`; None when recordings
        are kept for ever or this machine cannot see them (CENTRALITA_ASTERISK_RECORDINGS_DIR unset)."""
        settings = self.settings
        if settings.asterisk_recordings_dir is None or settings.recording_retention_days == 0:
            return None
        return RetentionSchedule(
            self.session_factory,
            root=settings.asterisk_recordings_dir,
            days=settings.recording_retention_days,
        )

    def speech(self, *, worker: int = 0) -> SpeechServices | None:
        """Speech turns over AudioSocket (CENTRALITA_SPEECH_ENGINE, _AUDIOSOCKET_*): recognition in
        worker processes, Silero for voice activity; None when speech is off. Each serving process
        listens on its own port (CENTRALITA_AUDIOSOCKET_PORT + its worker number): a process knows only
        the calls it runs. A model path that is set but wrong stops the service (RecognitionError)."""
        settings = self.settings
        spec = engine_spec(settings)
        if spec is None:
            return None
        try:
            decoder, encoder = FfmpegDecoder(), FfmpegEncoder()
        except PromptFileError as exc:
            log.error("speech recognition is off: %s", exc)
            return None
        try:
            synthesizer: Synthesizer | None = EspeakSynthesizer()
        except SynthesisError as exc:
            log.warning("prompts without a built sound file are skipped in speech turns: %s", exc)
            synthesizer = None
        port = settings.audiosocket_port + worker if settings.audiosocket_port else 0
        server = (
            AudioSocketServer(
                host=settings.audiosocket_host, port=port, allowed_peers=settings.audiosocket_allowed_peers
            )
            if settings.audiosocket_enabled
            else None
        )
        host, _, advertised_port = settings.audiosocket_advertised_address.rpartition(":")
        sounds = PromptSoundLibrary(
            sounds_dir=settings.prompts_dir,
            flow_directories=flow_directories(settings.flows_dir, settings.extra_flows_dirs),
            synthesizer=synthesizer,
            decoder=decoder,
            encoder=encoder,
        )
        pool = RecognitionPool(spec, workers=settings.speech_workers)
        # Speech turns recorded by Asterisk when AudioSocket cannot be had, and voicemail transcripts:
        # both read what Asterisk records, so both need the shared recordings directory.
        mount = recordings_mount(settings)
        listener = SpeechListener(
            links=server,
            address=f"{host}:{int(advertised_port) + worker}" if port and server is not None else "",
            sounds=sounds,
            recognition=pool,
            languages=spec.languages,
            new_vad=SileroDetector,
            recorded=RecordedTurns(pool, mount, SileroDetector) if mount is not None else None,
        )
        transcriber = (
            VoicemailTranscriber(
                pool,
                mount,
                free_form_languages=frozenset(language.split("-")[0] for language, _, _ in spec.vosk_models),
                grammar_languages=spec.languages,
            )
            if mount is not None
            else None
        )
        return SpeechServices(server, pool, listener, advertised_host=host, transcriber=transcriber)

    def messaging(self) -> MessagingChannels:
        """SMS and WhatsApp (Twilio), email (SMTP), webhook signatures and link tokens, from the settings."""
        if self._messaging is None:
            self._messaging = MessagingChannels.from_settings(self.settings)
        return self._messaging

    def agi_server(
        self,
        *,
        runner: CallRunner | None = None,
        host: str | None = None,
        port: int | None = None,
        reuse_port: bool = False,
        speech: SpeechServices | None = None,
    ) -> FastAgiServer:
        """The FastAGI server running each call's flow (CENTRALITA_AGI_HOST, _PORT, _ALLOWED), and the
        agents' phone feature codes (`agent-feature`)."""
        settings = self.settings
        runner = runner or self.call_runner()
        if speech is not None and speech.transcriber is not None:
            runner.transcriber = speech.transcriber  # voicemail transcripts, on the speech workers
        route = ivr_router(
            self.flows().get,
            runner,
            recordings=voicemail_recordings(recordings_mount(settings)),
            transfer_context=settings.agi_transfer_context,
            queues=self.ivr_queues(),
            listener=speech.listener if speech is not None else None,
        )
        features = AgentFeatures(self.routing().live, self.read_session_factory)
        return FastAgiServer(
            agent_feature_router(route, features),
            host=host or settings.agi_host,
            port=settings.agi_port if port is None else port,
            allowed_peers=settings.agi_allowed,
            reuse_port=reuse_port,
        )

    def ari(
        self, *, runner: CallRunner | None = None, speech: SpeechServices | None = None
    ) -> AriServices | None:
        """The IVR over ARI, and the dialer's ARI network when CENTRALITA_DIALER_NETWORK=ari
        (CENTRALITA_ASTERISK_ARI_URL, _USER, _PASSWORD, _APP); None when no URL is set. With `speech`,
        ARI calls ask by voice too (external-media channels to its AudioSocket server)."""
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
        queues = self.ivr_queues()
        if queues.recording is not None and queues.recording.bridges is None:
            queues.recording.bridges = AriBridgeRecorder(client)  # queue calls over ARI record their bridge
        ivr = StasisIvr(
            client,
            router,
            runner or self.call_runner(),
            self.flows().get,
            application=app,
            failed_context=IVR_FAILED_CONTEXT,
            options=AriPortOptions(transfer_context=settings.agi_transfer_context),
            queues=queues,  # Centralita's queues: agents' phones bridged over ARI
            listener=speech.listener if speech is not None else None,
        )
        network = None
        if settings.dialer_network == "ari":
            network = AriCallNetwork(
                client,
                router,
                app=app,
                endpoint_template=settings.dialer_endpoint,
                agent_ring_timeout_s=settings.dialer_agent_ring_seconds,
                recorder=CampaignRecording(
                    self.recording_notes(),
                    AriBridgeRecorder(client),
                    asterisk_path=settings.asterisk_recordings_path,
                ),
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
        # Callbacks are dialed from this process too. Simulated: on a network of their own (it names
        # calls by attempt id), where customers who asked for the call mostly answer it.
        callback_network: CallNetwork = network
        if isinstance(network, SimulatedCallNetwork):
            callback_network = SimulatedCallNetwork(clock, behaviour=CALLBACK_CALLEES, seed=1)
        self.callbacks().use_network(callback_network)
        # Agents who also answer queues are one agent: the dialer takes them only while the ACD has them
        # ready, and its calls keep the ACD from offering them others.
        return DialerSupervisor(
            self.session_factory,
            self.engine,
            network,
            clock,
            region=settings.default_region,
            bus=self.bus,
            agents=AcdCampaignAgents(self.routing().live),
        )

    def report_options(self) -> ReportOptions:
        """Report buckets in UTC, the default service-level target for every queue, no agent states:
        inbound routing supplies those (ReportOptions.agent_spans, .service_level_targets)."""
        return ReportOptions()

    def live_stats(self) -> LiveStats:
        """Today's figures from the event bus; its worker starts with the first reader (/api/v1/stats)."""
        if self._live_stats is None:
            self._live_stats = LiveStats(
                sessions=self.read_session_factory, bus=self.bus, options=self.report_options()
            )
        return self._live_stats

    def routing(self, connector: AgentConnector | None = None) -> InboundRouting:
        """Agents, queues and the live ACD, one per process: the API and the voice layer share it.
        Offers reach agents' phones through `connector` (`routing.live.connector` can be swapped
        later); without one they are answered at once, as the console caller needs, until the
        Asterisk glue passes its ARI connector. CENTRALITA_SCREEN_POP_WEBHOOK_URL adds the CRM webhook."""
        if self._routing is None:
            settings = self.settings
            url = settings.screen_pop_webhook_url
            webhook = ScreenPopWebhook(url) if url else None
            self._routing = InboundRouting(
                connector=connector or FakeAgentConnector(),
                session_factory=self.session_factory,
                read_session_factory=self.read_session_factory,
                bus=self.bus,
                region=settings.default_region,
                ring_seconds=settings.agent_ring_seconds,
                webhook=webhook,
            )
            self._routing.start()
        elif connector is not None:
            self._routing.live.connector = connector
        return self._routing

    def close(self) -> None:
        if self._callbacks is not None:
            self._callbacks.close()
            self._callbacks = None
        if self._routing is not None:
            self._routing.close()
            self._routing = None
        if self._recording_notes is not None:
            self._recording_notes.close()
            self._recording_notes = None
        if self._live_stats is not None:
            self._live_stats.stop()
            self._live_stats = None
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
