"""`centralita demo`: a month of a contact centre, made up, but lived through the real code.

The people, their problems and their moods are invented (deterministically, from `--seed`; the
brands, agents, topics, names and texts they are made from are data in `centralita.demo_data`); what
happens to them is not. Every inbound call runs through a shipped IVR flow with the real `CallRunner`
and engine, the caller a scripted `FakeVoicePort` that answers each question the flow actually asks
(by key or by speech, sometimes silent, sometimes wrong, sometimes hanging up), so the timeline holds
the steps the flows really take: lookups by number and by card or order number, menus, retries,
speech confirmations, business hours and holidays, callbacks offered, voicemail, links texted through
the IVR's own `TimelineLinkSender`. Queues, agents, cases, messages and campaigns go through their
services: `routing.service`, `core.cases.service`, `messaging.service` (texts and email, threaded into
their cases by its own reply rules), and the dialer's `campaigns`, `list_import`, `attempts` and
`dispositions`.

What the demo adds itself is what no code of Centralita writes yet: the agent's side of a queued call
(`queue_leave` with its reason, `agent_connect`, `hold`/`resume`, wrap-up seconds, CSAT) and the
outbound call that returns a callback (`attributes.callback_for`), shaped as `reporting.rows` reads
them.

Speed (a month of 2,000 customers in well under a minute on SQLite): the calls of a day run together on
one event loop; each call's interaction is opened by the real `TimelineCallJournal` (lookups and the link
sender need it on the timeline at once), while its steps and its close are kept in memory
(`DayBatchJournal`) and written with the agent's steps in the day's one transaction, as the same rows
`timeline.add_touchpoint` would write, numbered the same way. Everything else of a day shares that
transaction too.

    summary = asyncio.run(generate(container, DemoOptions(days=30, customers=2000, seed=7)))
"""

from __future__ import annotations

import asyncio
import bisect
import math
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import distinct, func, insert, select, update
from sqlalchemy.orm import Session

from centralita.container import Container
from centralita.demo_data import (
    AGENTS,
    BRANDS,
    CALLS_PER_CUSTOMER_DAY,
    CAMPAIGNS,
    DAY_VOLUME,
    DEFAULT_KEYS,
    DEFAULT_SAID,
    ES_FIRST_NAMES,
    ES_MAIL_DOMAINS,
    ES_SURNAMES,
    FOLLOW_UP_TOPIC,
    GB_FIRST_NAMES,
    GB_MAIL_DOMAINS,
    GB_SURNAMES,
    MESSAGE_TEXTS,
    QUEUES,
    RESOLUTIONS,
    SATURDAY_HOURS,
    SUNDAY_HOURS,
    TOPIC,
    TOPIC_QUEUES,
    TOPICS,
    WEEKDAY_HOURS,
    WRITTEN_FOLLOW_UP,
    WRITTEN_PER_CUSTOMER_DAY,
    YES,
    AgentSpec,
    Brand,
    Topic,
)
from core.cases import service as cases
from core.cases.models import Case
from core.cases.schemas import CaseCreate, CaseStatus
from core.channels import Channel, ConsentChannel, Direction
from core.customers.identities import IdentityKind, normalise
from core.customers.models import Customer, Identity
from core.customers.schemas import LegalBasis
from core.db import unit_of_work, utcnow
from core.errors import Conflict
from core.text_folding import fold
from core.timeline import service as timeline
from core.timeline.models import Interaction, Touchpoint
from core.timeline.schemas import (
    ExternalRef,
    InteractionCreate,
    Outcome,
    RefKind,
    TouchpointCreate,
    TouchpointKind,
)
from dialer import attempts as dialer_attempts
from dialer import campaigns as dialer_campaigns
from dialer import dispositions, do_not_call_store
from dialer.call_network import AmdVerdict, CallEnd
from dialer.campaign_rules import WEEKDAYS, CampaignSchedule, CampaignSettings, DialMode
from dialer.list_import import import_contact_list
from dialer.models import Campaign, DialAttempt
from messaging import service as messages
from messaging.continuation import LinkTokens, TimelineLinkSender
from messaging.email_smtp import InboundEmail
from messaging.twilio_messages import FakeTextSender, InboundText
from routing import service as routing
from routing.agent_state import AgentState, AgentStatus
from routing.live_queues import StateChange
from routing.models import Agent, AgentStateChange, Queue
from routing.schemas import AgentCreate, QueueCreate, QueueSkill, SkillLevel
from voice.call_journal import TimelineCallJournal
from voice.ivr.call_runner import CallReport, CallRunner
from voice.ivr.hours import is_holiday, is_open
from voice.ivr.matching import luhn_ok
from voice.ivr.schema import Flow
from voice.ivr.voice_port import (
    ActionNotDone,
    CallerMove,
    CallInfo,
    FakeVoicePort,
    HangUp,
    Heard,
    Question,
    Say,
)
from voice.prompts import PromptAudio, flow_prompts

ACTOR = "demo"
DEFAULT_DAYS = 30
DEFAULT_CUSTOMERS = 2000
# The timeline's external ids of demo calls start with this, so a second run never collides.
CALL_PREFIX = "demo"
_DEMO_LINK_SECRET = b"centralita demo links: not a secret, only for made-up data"


class DatabaseNotEmpty(Conflict):
    """The database already holds data; the demo would mix made-up contacts into it."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    days: int = DEFAULT_DAYS
    customers: int = DEFAULT_CUSTOMERS
    seed: int = 1
    end: date | None = None  # the last day; None: today (up to now)
    force: bool = False  # add to a database that already holds data
    now: datetime | None = None  # the present, for tests; None: the clock
    concurrency: int = 48  # calls on the line at once while a day is replayed

    def __post_init__(self) -> None:
        if not 1 <= self.days <= 366:
            raise ValueError("--days must be between 1 and 366")
        if not 10 <= self.customers <= 200_000:
            raise ValueError("--customers must be between 10 and 200,000")


# --- people --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    brand: str
    name: str
    first: str
    phone: str
    email: str | None
    whatsapp: bool
    language: str
    crm: str | None  # card number (the bank) or order number (the broadband company)
    birth: str  # DDMMYYYY
    vip: bool
    weight: float  # how much more often than most this person gets in touch
    consents: Mapping[str, bool]


def _luhn_number(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


def make_people(rng: random.Random, count: int, taken: set[str]) -> list[Person]:
    """`count` customers, three in five of the bank, the rest of the broadband company; numbers,
    addresses and CRM ids in `taken` are avoided (and added to it)."""
    people: list[Person] = []
    for index in range(count):
        spanish = rng.random() < 0.6
        brand = "banco_es" if spanish else "support_en"
        first = rng.choice(ES_FIRST_NAMES if spanish else GB_FIRST_NAMES)
        last = rng.choice(ES_SURNAMES if spanish else GB_SURNAMES)
        name = f"{first} {last} {rng.choice(ES_SURNAMES)}" if spanish else f"{first} {last}"
        while True:
            if spanish:
                phone = "+346" + "".join(rng.choice("0123456789") for _ in range(8))
            else:
                phone = "+447" + rng.choice("456789") + "".join(rng.choice("0123456789") for _ in range(8))
            if phone not in taken:
                taken.add(phone)
                break
        email = None
        if rng.random() < 0.8:
            local = ".".join(fold(part).replace(" ", "") for part in (first, last))
            for attempt in range(50):
                suffix = "" if attempt == 0 else str(rng.randint(1, 999))
                candidate = f"{local}{suffix}@{rng.choice(ES_MAIL_DOMAINS if spanish else GB_MAIL_DOMAINS)}"
                if candidate not in taken:
                    taken.add(candidate)
                    email = candidate
                    break
        crm = None
        if rng.random() < (0.7 if spanish else 0.3):
            while crm is None or crm in taken:
                crm = (
                    _luhn_number(rng, rng.choice("45"), 16)
                    if spanish
                    else "4" + str(rng.randint(10**7, 10**8 - 1))
                )
            taken.add(crm)
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 53))
        language = ("en" if rng.random() < 0.08 else "es") if spanish else "en"
        consents = {
            "calls": rng.random() < 0.75,
            "sms": rng.random() < 0.9,
            "whatsapp": rng.random() < 0.85,
            "email": rng.random() < 0.85,
        }
        people.append(
            Person(
                index=index,
                brand=brand,
                name=name,
                first=first,
                phone=phone,
                email=email,
                whatsapp=rng.random() < (0.6 if spanish else 0.3),
                language=language,
                crm=crm,
                birth=born.strftime("%d%m%Y"),
                vip=rng.random() < 0.04,
                weight=rng.lognormvariate(0, 0.9),
                consents=consents,
            )
        )
    return people


# --- the simulated call -------------------------------------------------------------------------------


class SimulatedClock:
    """A call's own time: every reading moves it on a little (each step takes a moment); the caller
    moves it on by what they hear, think, say and wait."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=150)
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class QueueTurn:
    """What happened to a caller in a queue (the port's side of `enqueue`)."""

    queue: str
    entered_at: datetime
    wait: float
    answered: bool
    agent: str | None = None
    talk: float = 0.0
    hold_after: float = 0.0  # seconds into the conversation the agent put the caller on hold
    hold: float = 0.0
    wrap_up: float = 0.0


@dataclass(frozen=True, slots=True)
class QueueRefusal:
    reason: str


@dataclass(frozen=True, slots=True)
class CallerScript:
    """How one caller answers: per node, the answers in the order the node asks (the last one again
    if it asks more); `hang_up_at` (node, nth time asked) ends the call there instead."""

    answers: Mapping[str, Sequence[CallerMove]]
    language: str
    speech: bool = False
    hang_up_at: tuple[str, int] | None = None


# Something that happens at an instant of the day, in the day's transaction.
DayStep = Callable[[Session], None]
DayEvent = tuple[datetime, int, DayStep]
QueueModel = Callable[[str, datetime, Sequence[str], random.Random], QueueTurn | QueueRefusal]


@dataclass
class ScriptedCaller(FakeVoicePort):
    """A `FakeVoicePort` whose caller hears which question is asked (by its prompt file) and answers it
    from the script, while the call's clock moves on; queues and transfers ask the day's queue model."""

    script: CallerScript = field(default_factory=lambda: CallerScript({}, "es"))
    clock: SimulatedClock = field(default_factory=lambda: SimulatedClock(datetime.now(UTC)))
    questions: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # prompt file -> node, field
    queue_model: QueueModel | None = None
    rng: random.Random = field(default_factory=random.Random)
    turns: list[QueueTurn] = field(default_factory=list)
    transferred_to: str | None = None
    refusals: list[str] = field(default_factory=list)
    _asked: Counter[str] = field(default_factory=Counter)

    async def answer(self) -> None:
        self.clock.advance(self.rng.uniform(1, 4))  # rings, then the IVR picks up
        await super().answer()

    async def play(self, prompt: PromptAudio, *, escape_digits: str = "") -> str | None:
        self.clock.advance(_speaking_seconds(prompt))
        return await super().play(prompt, escape_digits=escape_digits)

    async def collect_digits(self, *, max_digits: int, timeout_ms: int, terminator: str | None) -> str:
        asked = self.played[-1].file if self.played else ""
        self._prepare_answer(asked, timeout_ms, keys_only=True, long=max_digits > 4)
        return await super().collect_digits(
            max_digits=max_digits, timeout_ms=timeout_ms, terminator=terminator
        )

    async def ask(self, question: Question) -> Heard:
        for prompt in question.prompts:
            self.clock.advance(_speaking_seconds(prompt))
        asked = question.prompts[-1].file if question.prompts else ""
        self._prepare_answer(asked, question.timeout_ms, keys_only=False, long=False)
        return await super().ask(question)

    async def enqueue(
        self, *, queue: str, priority: int, skills: list[str], language: str, **more: Any
    ) -> None:  # `more`: what newer runners tell queues (the IVR's context); the queue model needs none
        self._enter("enqueue", queue, priority, tuple(skills), language)
        assert self.queue_model is not None
        turn = self.queue_model(queue, self.clock.now, skills, self.rng)
        if isinstance(turn, QueueRefusal):
            self.clock.advance(self.rng.uniform(1, 3))
            self.refusals.append(queue)
            raise ActionNotDone(f"queue {queue}: {turn.reason}")
        self.turns.append(turn)
        self.clock.advance(turn.wait + (turn.talk + turn.hold if turn.answered else 0.0))
        self._hang_up()  # after the conversation, or giving up on the wait

    async def transfer(self, target: str) -> None:
        self._enter("transfer", target)
        self.transferred_to = target
        self.clock.advance(self.rng.uniform(8, 25) + self.rng.lognormvariate(math.log(200), 0.5))
        self._hang_up()

    async def record(self, *, mailbox: str, max_seconds: int, beep: bool) -> str:
        recording = await super().record(mailbox=mailbox, max_seconds=max_seconds, beep=beep)
        self.clock.advance(self.rng.uniform(12, min(90, max_seconds)))
        return recording

    def _prepare_answer(self, asked: str, timeout_ms: int, *, keys_only: bool, long: bool) -> None:
        """Puts the answer to the question just asked (`asked`: its last prompt file) first in line (the
        port's script of moves)."""
        node, prompt_field = self.questions.get(asked, ("", "prompt"))
        move: CallerMove
        if prompt_field == "confirm_prompt":
            move = (
                Say(self.rng.choice(YES[self.script.language]))
                if self.script.speech and not keys_only
                else "1"
            )
        else:
            self._asked[node] += 1
            nth = self._asked[node]
            if self.script.hang_up_at == (node, nth):
                move = HangUp()
            else:
                planned = self.script.answers.get(node) or [HangUp()]
                move = planned[min(nth, len(planned)) - 1]
                if isinstance(move, Say) and keys_only:
                    move = HangUp()  # a script never plans speech where keys are asked; give up safely
        if move == "":
            self.clock.advance(timeout_ms / 1000)
        elif isinstance(move, str):
            self.clock.advance(self.rng.uniform(6, 14) if long else self.rng.uniform(1, 4))
        elif isinstance(move, Say):
            self.clock.advance(self.rng.uniform(1.5, 4) + (move.latency_ms or 0) / 1000)
        else:
            self.clock.advance(self.rng.uniform(1, 6))
        self._pending.appendleft(move)


def _speaking_seconds(prompt: PromptAudio) -> float:
    return max(1.5, len(prompt.text or "") / 14)


class DayBatchJournal(TimelineCallJournal):
    """The real journal for opening calls and looking customers up; a call's steps and its close are
    kept here and written with the day's batch (see the module docstring)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.steps: dict[int, list[TouchpointCreate]] = defaultdict(list)
        self.closed: dict[int, tuple[Outcome, datetime]] = {}

    async def add_step(self, interaction_id: int, touchpoint: TouchpointCreate) -> None:
        self.steps[interaction_id].append(touchpoint)

    async def close(self, interaction_id: int, outcome: Outcome, ended_at: datetime) -> None:
        self.closed[interaction_id] = (outcome, ended_at)


# --- the plan of a day ---------------------------------------------------------------------------------


@dataclass
class PlannedCall:
    key: str  # the call id's tail
    brand: Brand
    at: datetime
    topic: Topic
    person: Person | None  # None: a withheld or unknown number
    caller: str | None
    story: Story | None = None
    retry: int = 0


@dataclass
class CallResult:
    plan: PlannedCall
    report: CallReport
    port: ScriptedCaller
    ended_at: datetime
    retried: bool = False  # the caller tries again later that day


@dataclass
class Story:
    """One case of one customer, and what is still to happen to it: (when, action) steps; a `call`
    step waits for the call's outcome before the steps after it are dated."""

    key: str  # names the story in the seeds of its draws (case ids depend on the order of writes)
    case_id: int
    person: Person
    customer_id: int
    topic: Topic
    subject: str
    steps: list[tuple[timedelta, str]]
    due: datetime | None = None  # when the next step happens
    email_ref: str | None = None  # the last email of the thread (Message-ID)
    agent: str | None = None
    calls: int = 0
    done: bool = False


@dataclass
class DemoSummary:
    start: datetime
    end: datetime
    seconds: float = 0.0
    customers: int = 0
    contacts: dict[str, int] = field(default_factory=dict)  # "voice inbound" -> count
    ivr_calls: int = 0
    cases_open: int = 0
    cases_resolved: int = 0
    campaigns: list[tuple[str, int, int, int]] = field(
        default_factory=list
    )  # name, attempts, live, abandoned
    agents: int = 0
    queues: int = 0
    callbacks: int = 0
    rich_customer_id: int | None = None
    rich_customer_name: str | None = None

    def lines(self, base_url: str) -> list[str]:
        span = f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"
        out = [f"demo data made in {self.seconds:.1f}s, {span}:"]
        out.append(f"  customers: {self.customers}")
        total = sum(self.contacts.values())
        channels = ", ".join(f"{name} {count}" for name, count in sorted(self.contacts.items()))
        out.append(f"  contacts: {total} ({channels})")
        out.append(f"  IVR calls: {self.ivr_calls}; callbacks made: {self.callbacks}")
        out.append(
            f"  cases: {self.cases_open + self.cases_resolved} ({self.cases_resolved} resolved, "
            f"{self.cases_open} open)"
        )
        for name, dialed, live, abandoned in self.campaigns:
            rate = f"{abandoned / live:.1%}" if live else "n/a"
            out.append(f"  campaign {name!r}: {dialed} dial attempts, {live} live, abandonment {rate}")
        out.append(f"  agents: {self.agents}; queues: {self.queues}")
        out.append("look at (the pages may ask for a key: centralita keys create --role manager):")
        out.append(f"  {base_url}/wallboard")
        out.append(f"  {base_url}/journey-map")
        if self.rich_customer_id is not None:
            who = f" ({self.rich_customer_name})" if self.rich_customer_name else ""
            out.append(f"  {base_url}/customers/{self.rich_customer_id}{who}")
        return out


# --- the generator --------------------------------------------------------------------------------------


def existing_data(db: Session) -> dict[str, int]:
    """Rows of the data the demo makes that are in the database already (API keys do not count)."""
    counts = {
        "customers": db.scalar(select(func.count()).select_from(Customer)) or 0,
        "interactions": db.scalar(select(func.count()).select_from(Interaction)) or 0,
        "cases": db.scalar(select(func.count()).select_from(Case)) or 0,
        "agents": db.scalar(select(func.count()).select_from(Agent)) or 0,
        "queues": db.scalar(select(func.count()).select_from(Queue)) or 0,
        "campaigns": db.scalar(select(func.count()).select_from(Campaign)) or 0,
    }
    return {name: count for name, count in counts.items() if count}


async def generate(container: Container, options: DemoOptions) -> DemoSummary:
    """Fills the container's database with the demo (refusing a database with data unless `force`)."""
    with container.session_factory() as db:
        found = existing_data(db)
    if found and not options.force:
        held = ", ".join(f"{count} {name}" for name, count in found.items())
        raise DatabaseNotEmpty(
            f"the database already holds data ({held}); the demo would mix made-up contacts into it. "
            "Run it on an empty database, or pass --force to add to this one"
        )
    month = DemoMonth(container, options, run=found.get("interactions", 0))
    return await month.run()


class DemoMonth:
    def __init__(self, container: Container, options: DemoOptions, *, run: int) -> None:
        self.container = container
        self.options = options
        self.region = container.settings.default_region
        self.sessions = container.session_factory
        self.rng = random.Random(f"centralita demo {options.seed}")
        self.run_tag = f"{CALL_PREFIX}-{options.seed}-{run}"
        catalogue = container.flows()
        missing = [name for name in BRANDS if name not in catalogue.flows]
        if missing:
            raise Conflict(f"the demo needs the shipped IVR flows; not served here: {', '.join(missing)}")
        self.flows: dict[str, Flow] = {name: catalogue.flows[name] for name in BRANDS}
        self.questions = {name: _questions(flow) for name, flow in self.flows.items()}
        self.now = (options.now or utcnow()).astimezone(UTC)
        last = options.end or self.now.astimezone(BRANDS["banco_es"].zone).date()
        self.days = [last - timedelta(days=options.days - 1 - i) for i in range(options.days)]
        self.start = datetime.combine(self.days[0], time(0), BRANDS["banco_es"].zone).astimezone(UTC)
        day_after = datetime.combine(last + timedelta(days=1), time(0), BRANDS["banco_es"].zone).astimezone(
            UTC
        )
        self.horizon = min(day_after, self.now)  # nothing happens after this instant
        if self.horizon <= self.start:
            raise ValueError(f"the demo's days end in the future: --end {last} is after today")
        link_secret = container.settings.link_secret
        self.tokens = LinkTokens(
            link_secret.get_secret_value().encode() if link_secret is not None else _DEMO_LINK_SECRET
        )
        self.public_url = (
            container.settings.public_url or f"http://{container.settings.host}:{container.settings.port}"
        )
        self.texts = FakeTextSender()
        self.journal = DayBatchJournal(
            session_factory=container.session_factory,
            read_session_factory=container.read_session_factory,
            region=self.region,
            threads=8,
        )
        self.people: list[Person] = []
        self.customer_ids: dict[int, int] = {}  # person index -> customer id
        self.by_brand: dict[str, list[Person]] = {}
        self.cumulative: dict[str, list[float]] = {}
        self.agents: dict[str, AgentSpec] = {a.name: a for a in AGENTS}
        self.agent_ids: dict[str, int] = {}
        self.stories: list[Story] = []
        self.open_story: dict[int, Story] = {}  # person index -> their open story
        self.calls_made = 0
        self.callbacks = 0
        self.sequence = 0
        self._buffered = TouchpointBatch()  # touchpoints written with the day's batch
        self.last_change: dict[str, StateChange] = {}

    # --- the whole run ------------------------------------------------------------------------------

    async def run(self) -> DemoSummary:
        began = asyncio.get_running_loop().time()
        try:
            self._set_up_routing()
            self._make_customers()
            campaigns = await self._set_up_campaigns()
            for day in self.days:
                await self._live_day(day, campaigns)
            self._last_states()
        finally:
            self.journal.close_pool()
        summary = self._summary()
        summary.seconds = asyncio.get_running_loop().time() - began
        return summary

    def _key(self, kind: str) -> str:
        self.sequence += 1
        return f"{self.run_tag}-{kind}-{self.sequence:07d}"

    # --- set-up -------------------------------------------------------------------------------------

    def _set_up_routing(self) -> None:
        with unit_of_work(self.sessions) as db:
            known = {q.name for q in routing.list_queues(db=db)}
            for spec in QUEUES.values():
                if spec.name in known:
                    continue
                routing.create_queue(
                    db=db,
                    data=QueueCreate(
                        name=spec.name,
                        display_name=spec.display,
                        skills=[QueueSkill(skill=spec.name)],
                        service_level_seconds=spec.service_level_seconds,
                        service_level_percent=spec.service_level_percent,
                        wrap_up_seconds=spec.wrap_up_seconds,
                        max_wait_seconds=600,
                    ),
                    actor=ACTOR,
                )
            agents = {a.name: a for a in routing.list_agents(db=db)}
            for person in AGENTS:
                agent = agents.get(person.name)
                if agent is None:
                    agent = routing.create_agent(
                        db=db,
                        data=AgentCreate(
                            name=person.name,
                            display_name=person.display,
                            home_endpoint=f"PJSIP/{person.extension}",
                            skills=[
                                SkillLevel(skill=s, level=5 + (i == 0) * 3)
                                for i, s in enumerate(person.skills)
                            ],
                        ),
                        actor=ACTOR,
                    )
                self.agent_ids[person.name] = agent.id

    def _make_customers(self) -> None:
        """The customers, in two statements per thousand: what `customers.create_customer` writes
        (normalised identities, consent documents), without its one-by-one checks, which a fresh
        set of made-up numbers, checked against those on file, does not need."""
        taken: set[str] = set()
        with self.sessions() as db:
            taken.update(db.scalars(select(Identity.value)))
        self.people = make_people(self.rng, self.options.customers, taken)
        since = self.start - timedelta(days=400)
        rows: list[dict[str, Any]] = []
        for person in self.people:
            recorded = (since + timedelta(days=self.rng.randrange(390))).isoformat()
            source = self.rng.choice(("web", "app", "branch" if person.brand == "banco_es" else "shop"))
            preferred = self.rng.choice(("voice", "voice", "email", "whatsapp" if person.whatsapp else "sms"))
            if person.brand == "banco_es":
                segment = "banca_privada" if person.vip else "particulares"
            else:
                segment = "priority" if person.vip else "residential"
            rows.append(
                {
                    "name": person.name,
                    "name_search": fold(person.name),
                    "preferred_language": person.language,
                    "preferred_channel": preferred,
                    "consents": {
                        ConsentChannel(channel).value: {
                            "granted": granted,
                            "recorded_at": recorded,
                            "legal_basis": LegalBasis.CONSENT.value if granted else None,
                            "source": source,
                        }
                        for channel, granted in person.consents.items()
                    },
                    "attributes": {
                        "vip": person.vip,
                        "segment": segment,
                        "brand": BRANDS[person.brand].company,
                    },
                }
            )
        with unit_of_work(self.sessions) as db:
            for first in range(0, len(rows), 1000):
                batch = self.people[first : first + 1000]
                made = db.scalars(
                    insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                    rows[first : first + 1000],
                ).all()
                identities: list[dict[str, Any]] = []
                for person, customer_id in zip(batch, made, strict=True):
                    self.customer_ids[person.index] = customer_id
                    kinds = [(IdentityKind.PHONE, person.phone)]
                    if person.whatsapp:
                        kinds.append((IdentityKind.WHATSAPP, person.phone))
                    if person.email:
                        kinds.append((IdentityKind.EMAIL, person.email))
                    if person.crm:
                        kinds.append((IdentityKind.CRM, person.crm))
                    identities += [
                        {
                            "customer_id": customer_id,
                            "kind": kind.value,
                            "value": normalise(kind, value, region=self.region),
                        }
                        for kind, value in kinds
                    ]
                db.execute(insert(Identity), identities)
        for brand in BRANDS:
            group = [p for p in self.people if p.brand == brand]
            self.by_brand[brand] = group
            total = 0.0
            running: list[float] = []
            for person in group:
                total += person.weight
                running.append(total)
            self.cumulative[brand] = running

    def _someone(self, brand: str, rng: random.Random) -> Person:
        """A customer of `brand`, the frequent ones more often."""
        running = self.cumulative[brand]
        return self.by_brand[brand][bisect.bisect_left(running, rng.random() * running[-1])]

    # --- a day --------------------------------------------------------------------------------------

    async def _live_day(self, day: date, campaigns: list[CampaignPlan]) -> None:
        day_rng = random.Random(f"{self.options.seed}/{day.isoformat()}")
        plans = self._plan_calls(day, day_rng)
        results = await self._make_calls(plans)
        with unit_of_work(self.sessions) as db:
            events: list[DayEvent] = []
            self._write_calls(db, results, events)
            self._shifts(db, day)
            self._written_first(day, day_rng, events)
            self._story_steps(day, events)
            for at, _, event in sorted(events, key=lambda e: (e[0], e[1])):
                if at < self.horizon:
                    event(db)
            self._story_steps_due(db, day)
            self._buffered.flush(db)
            for plan in campaigns:
                self._dial(db, plan, day, day_rng)

    def _local(self, brand: Brand, day: date, hour: float) -> datetime:
        start = datetime.combine(day, time(0), brand.zone)
        return (start + timedelta(hours=hour)).astimezone(UTC)

    def _plan_calls(self, day: date, rng: random.Random) -> list[PlannedCall]:
        plans: list[PlannedCall] = []
        for key, brand in BRANDS.items():
            flow = self.flows[key]
            schedule = flow.schedules[brand.schedule]
            midday = self._local(brand, day, 12)
            holiday = is_holiday(schedule, midday)
            weekday = day.weekday()
            profile = (
                SUNDAY_HOURS if weekday == 6 or holiday else SATURDAY_HOURS if weekday == 5 else WEEKDAY_HOURS
            )
            volume = (
                len(self.by_brand[key])
                * CALLS_PER_CUSTOMER_DAY
                * DAY_VOLUME[weekday]
                * (0.35 if holiday else 1)
            )
            count = max(0, round(rng.gauss(volume, math.sqrt(volume))))
            topics = [t for t in TOPICS if t.brand == key and t.weight > 0]
            weights = [t.weight for t in topics]
            for _ in range(count):
                hour = rng.choices(range(24), profile)[0] + rng.random()
                at = self._local(brand, day, hour)
                topic = rng.choices(topics, weights)[0]
                person: Person | None = self._someone(key, rng)
                caller = person.phone if person else None
                chance = rng.random()
                if chance < 0.03:
                    person, caller = None, None  # a withheld number
                elif chance < 0.07:
                    person = None  # a number nobody has yet: the call makes its customer
                    caller = (
                        "+346" + str(rng.randint(10**7, 10**8 - 1))
                        if key == "banco_es"
                        else "+4478" + str(rng.randint(10**7, 10**8 - 1))
                    )
                elif person is not None and person.index in self.open_story:
                    continue  # someone with an open case calls about it (their story plans that call)
                plans.append(PlannedCall(self._key("call"), brand, at, topic, person, caller))
        for story in self.stories:  # customers calling about their open case
            if story.done or story.due is None or not story.steps or story.steps[0][1] != "call":
                continue
            brand = BRANDS[story.person.brand]
            if story.due.astimezone(brand.zone).date() > day:
                continue
            topic = TOPIC[FOLLOW_UP_TOPIC[brand.key]]
            at = max(story.due, self._local(brand, day, 9 + rng.random() * 2))
            plans.append(
                PlannedCall(self._key("call"), brand, at, topic, story.person, story.person.phone, story)
            )
            story.steps.pop(0)
            story.due = None
        return [p for p in plans if p.at < self.horizon]

    async def _make_calls(self, plans: list[PlannedCall]) -> list[CallResult]:
        """Every call of the day, each caller's calls one after the other, callers side by side."""
        chains: dict[str, list[PlannedCall]] = defaultdict(list)
        for plan in sorted(plans, key=lambda p: (p.at, p.key)):
            owner = plan.caller or plan.key
            chains[owner].append(plan)
        gate = asyncio.Semaphore(self.options.concurrency)
        results: list[CallResult] = []

        async def chain(calls: list[PlannedCall]) -> None:
            async with gate:
                queue = list(calls)
                while queue:
                    plan = queue.pop(0)
                    result = await self._call(plan)
                    results.append(result)
                    again = self._retry(result)
                    if again is not None:
                        result.retried = True
                        queue.insert(0, again)

        await asyncio.gather(*(chain(calls) for calls in chains.values()))
        self.calls_made += len(results)
        return sorted(results, key=lambda r: (r.plan.at, r.plan.key))

    def _retry(self, result: CallResult) -> PlannedCall | None:
        """A caller who gave up (in the IVR or in a queue) often tries again later that day."""
        plan, port = result.plan, result.port
        gave_up = result.report.outcome == Outcome.ABANDONED or any(not t.answered for t in port.turns)
        rng = random.Random(f"{self.options.seed}/retry/{plan.key}")
        if not gave_up or plan.retry >= 2 or rng.random() > 0.55:
            return None
        at = result.ended_at + timedelta(minutes=rng.uniform(4, 90))
        if (
            at >= self.horizon
            or at.astimezone(plan.brand.zone).date() != plan.at.astimezone(plan.brand.zone).date()
        ):
            return None
        key = f"{plan.key}-again{plan.retry + 1}"  # not from the shared counter: calls run side by side
        return PlannedCall(
            key, plan.brand, at, plan.topic, plan.person, plan.caller, plan.story, plan.retry + 1
        )

    async def _call(self, plan: PlannedCall) -> CallResult:
        rng = random.Random(f"{self.options.seed}/{plan.key}")
        clock = SimulatedClock(plan.at)
        flow = self.flows[plan.brand.key]
        script = self._script(plan, rng)
        port = ScriptedCaller(
            script=script,
            clock=clock,
            questions=self.questions[plan.brand.key],
            queue_model=self._queue_turn,
            rng=rng,
            speech_languages=frozenset(flow.languages) if script.speech else frozenset(),
            hang_up_during=("play", 1) if rng.random() < 0.012 else None,
        )
        sender = TimelineLinkSender(
            session_factory=self.sessions,
            texts=self.texts,
            tokens=self.tokens,
            public_url=self.public_url,
            status_callback=None,
            region=self.region,
            clock=clock,
        )
        runner = CallRunner(self.journal, link_sender=sender, clock=clock)
        call = CallInfo(
            call_id=plan.key,
            ref_kind=RefKind.ASTERISK_LINKEDID.value,
            caller=plan.caller,
            called=plan.brand.called,
            channel=f"PJSIP/trunk-{rng.randrange(16**8):08x}",
            flow=flow.name,
        )
        report = await runner.run(flow, port, call)
        await runner.drain()
        return CallResult(plan, report, port, clock.now)

    def _script(self, plan: PlannedCall, rng: random.Random) -> CallerScript:
        brand, topic, person = plan.brand.key, plan.topic, plan.person
        language = person.language if person else ("es" if brand == "banco_es" else "en")
        speech = rng.random() < 0.45
        keys = {**DEFAULT_KEYS[brand], **topic.keys}
        said = {**DEFAULT_SAID[brand], **topic.said}
        if topic.key == "facturacion" and rng.random() < 0.4:
            keys["ofrecer_llamada_facturacion"] = "2"  # rather leave a message
        if topic.key in ("agente", "agent", "billing") and rng.random() < 0.6:
            keys["ofrecer_llamada" if brand == "banco_es" else "callback_offer"] = "2"  # rather hold
        if brand == "banco_es" and topic.key not in ("saldo", "tarjeta") and rng.random() < 0.25:
            keys["fuera_de_horario"] = "2"  # carry on by WhatsApp
        answers: dict[str, list[CallerMove]] = {}
        for node, key in keys.items():
            value = self._own_digits(key, person, brand, rng)
            first: CallerMove = value
            phrases = (
                said.get(node)
                if language in ("es", "en") and (language == "es") == (brand == "banco_es")
                else None
            )
            if speech and phrases and not value.startswith(("<", "#")) and len(value) == 1:
                confidence = rng.uniform(0.45, 0.98)
                first = Say(rng.choice(phrases), round(confidence, 2), "demo-asr", rng.randint(180, 700))
            moves: list[CallerMove] = [first]
            wobble = rng.random()
            if len(value) == 1 and wobble < 0.07:
                moves.insert(0, "")  # said nothing the first time
            elif len(value) == 1 and wobble < 0.12:
                moves.insert(0, rng.choice("5678"))  # a key the menu does not have
            elif speech and len(value) == 1 and wobble < 0.15:
                moves.insert(0, Say("", 0.0, "demo-asr", 300))  # mumbled
            elif len(value) > 8 and wobble < 0.08:
                moves.insert(0, value[:-3] + value[-2] + value[-3] + value[-1])  # two digits swapped
            answers[node] = moves
        hang_up: tuple[str, int] | None = None
        if rng.random() < 0.06:
            candidates = [node for node in topic.keys if node in answers] or list(answers)
            hang_up = (rng.choice(sorted(candidates)), 1 + (rng.random() < 0.3))
        return CallerScript(answers, language, speech, hang_up)

    def _own_digits(self, key: str, person: Person | None, brand: str, rng: random.Random) -> str:
        if key == "<card>":
            card = person.crm if person and person.crm and brand == "banco_es" else _luhn_number(rng, "4", 16)
            return card + "#"
        if key == "<dob>":
            return person.birth if person else "1503" + str(rng.randint(1950, 2000))
        if key == "<order>":
            own = person.crm if person and person.crm and brand == "support_en" else None
            return (own or "4" + str(rng.randint(10**7, 10**8 - 1))) + "#"
        return key

    # --- queues and agents --------------------------------------------------------------------------

    def _on_shift(self, spec: AgentSpec, at: datetime) -> bool:
        brand = BRANDS[spec.brand]
        local = at.astimezone(brand.zone)
        weekday = local.weekday()
        flow = self.flows[brand.key]
        if is_holiday(flow.schedules[brand.schedule], at) or weekday == 6:
            return False
        if weekday == 5:
            start, end = brand.saturday if spec.saturday else (0, 0)
        else:
            start, end = brand.early if spec.shift == "early" else brand.late
        return start <= local.hour + local.minute / 60 < end

    def _agents_for(self, queue: str, at: datetime) -> list[AgentSpec]:
        return [a for a in AGENTS if queue in a.skills and self._on_shift(a, at)]

    def _queue_turn(
        self, queue: str, at: datetime, skills: Sequence[str], rng: random.Random
    ) -> QueueTurn | QueueRefusal:
        """The queue's answer to a caller: who answers after how long, or how long they wait before
        giving up, or a refusal (nobody logged in, or the queue full at a peak)."""
        spec = QUEUES.get(queue)
        staff = self._agents_for(queue, at)
        if spec is None or not staff:
            return QueueRefusal("no agent logged in")
        brand = BRANDS[staff[0].brand]
        local = at.astimezone(brand.zone)
        profile = SATURDAY_HOURS if local.weekday() == 5 else WEEKDAY_HOURS
        load = profile[local.hour] / max(profile)  # 1 at the busiest hour
        if rng.random() < 0.05 * load**3:
            return QueueRefusal("FULL")
        if rng.random() < 0.6 - 0.35 * load:
            wait = rng.uniform(0, 5)  # an agent was free
        else:
            wait = rng.expovariate(
                1 / (spec.mean_wait * (0.5 + 0.9 * load**2) * (3 / max(1, len(staff))) ** 0.5)
            )
        patience = rng.expovariate(1 / 220)
        if patience < wait:
            return QueueTurn(queue, at, patience, answered=False)
        agent = rng.choice(staff).name
        talk = rng.lognormvariate(math.log(spec.talk_median), 0.5)
        hold = rng.uniform(15, 140) if rng.random() < 0.3 else 0.0
        return QueueTurn(
            queue,
            at,
            wait,
            True,
            agent,
            talk,
            rng.uniform(0.2, 0.7) * talk if hold else 0.0,
            hold,
            max(5.0, rng.gauss(spec.wrap_up_seconds, spec.wrap_up_seconds / 3)),
        )

    def _agent_at(self, brand: Brand, queues: Sequence[str], at: datetime, rng: random.Random) -> str:
        for queue in queues:
            staff = self._agents_for(queue, at)
            if staff:
                return rng.choice(staff).name
        return rng.choice(
            [a.name for a in AGENTS if a.brand == brand.key and any(q in a.skills for q in queues)]
        )

    def _shifts(self, db: Session, day: date) -> None:
        """Each agent logs in at the start of the shift and out at its end (still in, if it is now)."""
        for spec in AGENTS:
            brand = BRANDS[spec.brand]
            probe = self._local(brand, day, 12)
            if day.weekday() == 6 or is_holiday(self.flows[brand.key].schedules[brand.schedule], probe):
                continue
            if day.weekday() == 5:
                if not spec.saturday:
                    continue
                start, end = brand.saturday
            else:
                start, end = brand.early if spec.shift == "early" else brand.late
            endpoint = f"PJSIP/{spec.extension}"
            login = self._local(brand, day, start - 0.1)
            logout = self._local(brand, day, end + 0.15)
            ready = AgentStatus(AgentState.READY, since=login, endpoint=endpoint)
            if login >= self.horizon:
                continue
            self._state(db, spec, AgentStatus(), ready, login)
            if logout < self.horizon:
                self._state(db, spec, ready, AgentStatus(AgentState.LOGGED_OUT, since=logout), logout)

    def _state(
        self, db: Session, spec: AgentSpec, before: AgentStatus, after: AgentStatus, at: datetime
    ) -> None:
        """An agent's change of state. The history is written in bulk; each agent's latest change goes
        through `routing.record_state_change` at the end, so the agent's row says where they are."""
        change = StateChange(self.agent_ids[spec.name], spec.name, before, after, ACTOR, at)
        previous = self.last_change.get(spec.name)
        self.last_change[spec.name] = change
        if previous is not None:
            db.execute(
                insert(AgentStateChange),
                {
                    "agent_id": previous.agent_id,
                    "state": previous.after.state.value,
                    "previous_state": previous.before.state.value,
                    "endpoint": previous.after.endpoint or previous.before.endpoint,
                    "actor": ACTOR,
                    "changed_at": previous.at,
                },
            )

    def _last_states(self) -> None:
        with unit_of_work(self.sessions) as db:
            for change in self.last_change.values():
                routing.record_state_change(db=db, change=change)

    # --- after the calls: the agent's side, cases, callbacks ----------------------------------------

    def _write_calls(self, db: Session, results: list[CallResult], events: list[DayEvent]) -> None:
        """The calls' steps (the IVR's and the agent's) and their ends, then what follows each call."""
        opened = {r.report.interaction_id: r for r in results if r.report.interaction_id is not None}
        if not opened:
            return
        rows = {
            row.id: row
            for row in db.execute(
                select(
                    Interaction.id, Interaction.attributes, Interaction.case_id, Interaction.customer_id
                ).where(Interaction.id.in_(list(opened)))
            )
        }
        updates: list[dict[str, Any]] = []
        for result in results:  # in the order of the day, so that every run of a seed draws alike
            interaction_id = result.report.interaction_id
            if interaction_id is None or interaction_id not in rows:
                continue
            row = rows[interaction_id]
            rng = random.Random(f"{self.options.seed}/after/{result.plan.key}")
            steps = self.journal.steps.pop(interaction_id, [])
            outcome, ended_at = self.journal.closed.pop(
                interaction_id, (result.report.outcome, result.ended_at)
            )
            values: dict[str, Any] = {
                "id": interaction_id,
                "ended_at": ended_at,
                "outcome": outcome.value,
                "intent": result.plan.topic.key,
                "queue": None,
                "agent": None,
                "csat": None,
                "disposition": None,
                "attributes": dict(row.attributes or {}),
            }
            callback_queue = next(
                (str(s.attributes.get("queue")) for s in steps if s.kind == TouchpointKind.CALLBACK_ACCEPTED),
                None,
            )
            for turn in result.port.turns:
                steps += _turn_steps(turn)
                values["queue"] = turn.queue
                if turn.answered:
                    values["agent"] = turn.agent
                    values["attributes"]["wrap_up_seconds"] = round(turn.wrap_up)
                    values["disposition"] = "handled"
                    if rng.random() < 0.28:
                        values["csat"] = _csat(rng, turn.wait)
            if callback_queue and values["queue"] is None:
                values["queue"] = callback_queue
            if result.port.transferred_to:
                values["attributes"]["transferred_to"] = result.port.transferred_to
            self._buffered.add(interaction_id, steps)
            updates.append(values)
            follow = self._after_call(
                result, interaction_id, row.customer_id, row.case_id, callback_queue, rng
            )
            if follow is not None:
                events.append((ended_at, len(events), follow))
        if updates:
            db.execute(update(Interaction), updates)

    def _after_call(
        self,
        result: CallResult,
        interaction_id: int,
        customer_id: int | None,
        case_id: int | None,
        callback_queue: str | None,
        rng: random.Random,
    ) -> DayStep | None:
        """What the call leads to, run in time order with the day's other events."""
        plan, port = result.plan, result.port
        person = plan.person
        answered = next((t for t in port.turns if t.answered), None)
        voicemail = any(c[0] == "record" for c in port.calls)
        end = result.ended_at
        if customer_id is None or person is None:
            return None
        story = plan.story or self.open_story.get(person.index)

        def follow(db: Session) -> None:
            if answered is not None:
                done = end + timedelta(seconds=answered.wrap_up)
                self._handled(
                    db,
                    person,
                    customer_id,
                    plan.topic,
                    [interaction_id],
                    case_id,
                    story,
                    done,
                    answered.agent,
                    rng,
                )
            elif callback_queue is not None or voicemail:
                queue = callback_queue or ("atencion_general" if plan.brand.key == "banco_es" else "support")
                self._callback(
                    db, plan, person, customer_id, interaction_id, case_id, story, queue, end, voicemail, rng
                )
            elif case_id is not None and (story is None or story.case_id != case_id):
                # The IVR texted a link (and put the call on a case): the customer used it.
                if port.transferred_to is None and _case_open(db, case_id):
                    self._resolve(db, case_id, end + timedelta(minutes=rng.uniform(2, 40)), person.language)
            elif port.transferred_to and plan.topic.subjects:
                self._handled(
                    db, person, customer_id, plan.topic, [interaction_id], None, story, end, None, rng
                )
            elif story is not None and plan.story is story and not result.retried:
                story.steps.insert(0, (timedelta(hours=rng.uniform(3, 30)), "call"))
                self._schedule(story, end)

        return follow

    def _handled(
        self,
        db: Session,
        person: Person,
        customer_id: int,
        topic: Topic,
        interaction_ids: list[int],
        case_id: int | None,
        story: Story | None,
        done: datetime,
        agent: str | None,
        rng: random.Random,
    ) -> None:
        """An agent (or the transfer's team) dealt with the contact: a case opened or followed, and
        resolved now or a story of follow-ups started."""
        if story is not None and not story.done:
            for interaction_id in interaction_ids:
                _attach(db, story.case_id, interaction_id)
            story.agent = agent or story.agent
            if story.steps and story.steps[0][1] == "call":
                story.steps.pop(0)
            if story.steps:
                self._schedule(story, done)
            else:
                self._close_story(db, story, done)
            return
        if not topic.subjects or rng.random() > topic.case_share:
            if case_id is not None and _case_open(db, case_id):
                self._resolve(db, case_id, done, person.language)
            return
        subject = rng.choice(topic.subjects)
        if case_id is None:
            case = cases.open_case(
                db=db,
                data=CaseCreate(
                    customer_id=customer_id,
                    subject=subject,
                    interaction_ids=interaction_ids,
                    attributes={"topic": topic.key, "opened_by": agent or "transfer"},
                ),
            )
            case.opened_at = _first_start(db, interaction_ids) or done
            case_id = case.id
        else:
            for interaction_id in interaction_ids:
                _attach(db, case_id, interaction_id)
            db.get(Case, case_id).subject = subject  # type: ignore[union-attr]
        if topic.fcr > 0 and rng.random() < topic.fcr:
            self._resolve(db, case_id, done, person.language)
            return
        self._start_story(person, customer_id, topic, case_id, subject, done, agent, rng)

    def _start_story(
        self,
        person: Person,
        customer_id: int,
        topic: Topic,
        case_id: int,
        subject: str,
        at: datetime,
        agent: str | None,
        rng: random.Random,
    ) -> Story:
        kind = rng.choice(topic.follow_ups)
        if kind == "email" and not person.email:
            kind = "sms"
        if kind == "whatsapp" and not person.whatsapp:
            kind = "sms"
        hour, day = timedelta(hours=1), timedelta(days=1)
        steps: list[tuple[timedelta, str]]
        if kind == "switch":  # a text, then the customer calls about it, then the confirmation by email
            steps = [(rng.uniform(0.5, 3) * hour, "sms_out"), (rng.uniform(0.6, 2) * day, "call")]
            steps += [
                (rng.uniform(1, 5) * hour, "email_out" if person.email else "sms_out"),
                (rng.uniform(2, 8) * hour, "resolve"),
            ]
        elif kind == "call":
            steps = [(rng.uniform(0.8, 3) * day, "call"), (rng.uniform(0.5, 2) * day, "resolve")]
        else:
            out, into = f"{kind}_out", f"{kind}_in"
            steps = [(rng.uniform(0.3, 20) * hour, out), (rng.uniform(0.5, 18) * hour, into)]
            if rng.random() < 0.25:
                steps += [(rng.uniform(2, 26) * hour, out), (rng.uniform(1, 30) * hour, into)]
            steps.append((rng.uniform(2, 30) * hour, "resolve"))
            if kind == "email" and rng.random() < 0.06:
                steps += [(rng.uniform(4, 40) * hour, "email_in"), (rng.uniform(2, 20) * hour, "resolve")]
        key = f"{person.index}.{len(self.stories)}"
        story = Story(key, case_id, person, customer_id, topic, subject, steps, agent=agent)
        self.stories.append(story)
        self.open_story[person.index] = story
        self._schedule(story, at)
        return story

    def _schedule(self, story: Story, after: datetime) -> None:
        """Dates the story's next step; written steps wait for the brand's opening hours."""
        if not story.steps:
            story.due = None
            return
        delay, action = story.steps[0]
        at = after + delay
        if action != "call" and not action.endswith("_in"):
            at = self._opening(BRANDS[story.person.brand], at)
        elif action == "call":  # on a later day: this day's calls have been made
            brand = BRANDS[story.person.brand]
            tomorrow = after.astimezone(brand.zone).date() + timedelta(days=1)
            at = self._opening(
                brand, max(at, self._local(brand, tomorrow, 8.5 + (hash_minutes(at) % 120) / 60)), latest=18.5
            )
        story.due = at

    def _opening(self, brand: Brand, at: datetime, latest: float = 19.5) -> datetime:
        """`at`, or the next moment the brand's agents work (weekdays and Saturday mornings)."""
        local = at.astimezone(brand.zone)
        schedule = self.flows[brand.key].schedules[brand.schedule]
        for _ in range(10):
            hour = local.hour + local.minute / 60
            if is_open(schedule, local) and hour < latest:
                return local.astimezone(UTC)
            if hour >= 8:
                local = datetime.combine(local.date() + timedelta(days=1), time(8, 30), brand.zone)
            else:
                local = datetime.combine(local.date(), time(8, 30), brand.zone)
            local += timedelta(minutes=(hash_minutes(at) % 150))
        return local.astimezone(UTC)

    def _close_story(self, db: Session, story: Story, at: datetime) -> None:
        self._resolve(db, story.case_id, at, story.person.language)
        story.done = True
        story.steps.clear()
        self.open_story.pop(story.person.index, None)

    def _resolve(self, db: Session, case_id: int, at: datetime, language: str) -> None:
        if at >= self.horizon or not _case_open(db, case_id):
            return
        case = cases.resolve_case(db=db, case_id=case_id, resolution=self.rng.choice(RESOLUTIONS[language]))
        case.resolved_at = max(at, case.opened_at)
        case.updated_at = case.resolved_at

    def _callback(
        self,
        db: Session,
        plan: PlannedCall,
        person: Person,
        customer_id: int,
        interaction_id: int,
        case_id: int | None,
        story: Story | None,
        queue: str,
        after: datetime,
        voicemail: bool,
        rng: random.Random,
    ) -> None:
        """Calls the customer back (twice at most): an outbound call whose `callback_for` names the call."""
        brand = plan.brand
        at = self._opening(brand, after + timedelta(minutes=rng.uniform(4, 50)), latest=19.0)
        for attempt in (1, 2):
            if at >= self.horizon:
                return
            reached = rng.random() < 0.82
            ring = rng.uniform(6, 22)
            agent = self._agent_at(brand, [queue], at, rng)
            talk = rng.lognormvariate(math.log(QUEUES[queue].talk_median * 0.9), 0.45) if reached else 0.0
            end = at + timedelta(seconds=ring + talk)
            wrap = rng.uniform(10, 60) if reached else 0.0
            interaction, _ = timeline.record_interaction(
                db=db,
                data=InteractionCreate(
                    customer_id=customer_id,
                    case_id=case_id if case_id is not None and _case_open(db, case_id) else None,
                    channel=Channel.VOICE,
                    direction=Direction.OUTBOUND,
                    started_at=at,
                    ended_at=end,
                    queue=queue,
                    agent=agent,
                    outcome=Outcome.COMPLETED if reached else Outcome.NO_ANSWER,
                    intent=plan.topic.key,
                    language=person.language,
                    csat=_csat(rng, 30) if reached and rng.random() < 0.2 else None,
                    attributes={
                        "callback_for": interaction_id,
                        "reason": "voicemail" if voicemail else "callback",
                        "attempt": attempt,
                        "number": person.phone,
                        **({"wrap_up_seconds": round(wrap)} if reached else {}),
                    },
                ),
                region=self.region,
            )
            self.callbacks += 1
            if reached:
                connect = at + timedelta(seconds=ring)
                self._buffered.add(
                    interaction.id,
                    [
                        TouchpointCreate(
                            kind=TouchpointKind.AGENT_CONNECT,
                            occurred_at=connect,
                            attributes={"agent": agent, "queue": queue, "callback_for": interaction_id},
                        )
                    ],
                )
                self._handled(
                    db,
                    person,
                    customer_id,
                    plan.topic,
                    [interaction_id, interaction.id],
                    case_id,
                    story,
                    end + timedelta(seconds=wrap),
                    agent,
                    rng,
                )
                return
            at = self._opening(brand, end + timedelta(minutes=rng.uniform(45, 180)), latest=19.0)

    # --- written contacts ---------------------------------------------------------------------------

    def _written_first(self, day: date, rng: random.Random, events: list[DayEvent]) -> None:
        """Problems first raised in writing: an email, a WhatsApp or SMS message, a web form."""
        for key, brand in BRANDS.items():
            volume = len(self.by_brand[key]) * WRITTEN_PER_CUSTOMER_DAY * DAY_VOLUME[day.weekday()] * 1.4
            for n in range(max(0, round(rng.gauss(volume, math.sqrt(volume))))):
                person = self._someone(key, rng)
                topic = rng.choice([t for t in TOPICS if t.brand == key and t.subjects])
                hour = rng.choices(range(24), WEEKDAY_HOURS if day.weekday() < 5 else SUNDAY_HOURS)[0]
                at = self._local(brand, day, hour + rng.random())
                weights = (0.45, 0.25 if key == "banco_es" else 0.05, 0.1, 0.2)
                channel = rng.choices(("email", "whatsapp", "sms", "web"), weights)[0]
                if channel == "email" and not person.email:
                    channel = "web"
                if channel == "whatsapp" and not person.whatsapp:
                    channel = "sms"
                seed = f"{self.options.seed}/written/{day.isoformat()}/{key}/{n}"
                events.append(
                    (at, len(events), self._first_message(person, topic, channel, at, random.Random(seed)))
                )

    def _first_message(
        self, person: Person, topic: Topic, channel: str, at: datetime, rng: random.Random
    ) -> DayStep:
        def write(db: Session) -> None:
            if person.index in self.open_story:
                return  # they are writing about the case they have open: its story says so
            customer_id = self.customer_ids[person.index]
            subject = rng.choice(topic.subjects)
            if channel == "web":
                interaction, _ = timeline.record_interaction(
                    db=db,
                    data=InteractionCreate(
                        customer_id=customer_id,
                        channel=Channel.WEB,
                        direction=Direction.INBOUND,
                        started_at=at,
                        ended_at=at + timedelta(minutes=rng.uniform(1, 6)),
                        outcome=Outcome.COMPLETED,
                        subject=subject,
                        intent=topic.key,
                        summary=self._text("web_in", person, subject, None),
                        language=person.language,
                        attributes={
                            "form": "contact",
                            "page": "/contacto" if person.brand == "banco_es" else "/help",
                        },
                    ),
                    region=self.region,
                )
            else:
                interaction = self._inbound(db, person, channel, at, subject, None, first=True)
            case_id = interaction.case_id
            if case_id is None or not _case_open(db, case_id):
                case = cases.open_case(
                    db=db,
                    data=CaseCreate(
                        customer_id=customer_id,
                        subject=subject,
                        attributes={"topic": topic.key, "opened_by": channel},
                    ),
                )
                case.opened_at = at
                if interaction.case_id is None:
                    _attach(db, case.id, interaction.id)
                case_id = case.id
            agent = self._agent_at(BRANDS[person.brand], _queues_of(topic), at, rng)
            kind = WRITTEN_FOLLOW_UP[channel] if channel != "web" else "email" if person.email else "sms"
            written = Topic(topic.key, topic.brand, 0, {}, subjects=(subject,), follow_ups=(kind,))
            story = self._start_story(person, customer_id, written, case_id, subject, at, agent, rng)
            if rng.random() < 0.25:  # the customer also calls about it, after the first answer
                story.steps.insert(min(2, len(story.steps)), (timedelta(hours=rng.uniform(2, 30)), "call"))

        return write

    def _story_steps(self, day: date, events: list[DayEvent]) -> None:
        """The written steps of the open stories due today (each step dates the next; those that fall
        today are taken at once, at their own times)."""
        for story in self.stories:
            if story.done or story.due is None or not story.steps or story.steps[0][1] == "call":
                continue
            if story.due.astimezone(BRANDS[story.person.brand].zone).date() <= day:
                events.append((story.due, len(events), self._story_step(story, day)))

    def _story_steps_due(self, db: Session, day: date) -> None:
        """Steps that fell due today in stories begun today, after the day's other events."""
        for story in list(self.stories):
            if story.done or story.due is None or not story.steps or story.steps[0][1] == "call":
                continue
            if story.due.astimezone(BRANDS[story.person.brand].zone).date() <= day:
                self._story_step(story, day)(db)

    def _story_step(self, story: Story, day: date) -> DayStep:
        def step(db: Session) -> None:
            rng = random.Random(f"{self.options.seed}/story/{story.key}/{len(story.steps)}")
            zone = BRANDS[story.person.brand].zone
            while not story.done and story.steps and story.due is not None and story.steps[0][1] != "call":
                if story.due >= self.horizon or story.due.astimezone(zone).date() > day:
                    return
                at = story.due
                _, action = story.steps.pop(0)
                self._act(db, story, action, at, rng)
                if story.done:
                    return
                self._schedule(story, at)

        return step

    def _act(self, db: Session, story: Story, action: str, at: datetime, rng: random.Random) -> None:
        person = story.person
        if action == "resolve":
            if story.person.email and rng.random() < 0.3:
                self._outbound(db, story, "email", at, "email_resolved", rng)
            self._close_story(db, story, at)
            if rng.random() < 0.15:
                last = db.scalar(
                    select(Interaction)
                    .where(
                        Interaction.case_id == story.case_id,
                        Interaction.direction == Direction.OUTBOUND.value,
                    )
                    .order_by(Interaction.started_at.desc())
                    .limit(1)
                )
                if last is not None:
                    last.csat = _csat(rng, 0)
            return
        channel, way = action.rsplit("_", 1)
        if way == "out":
            self._outbound(db, story, channel, at, action, rng)
            return
        if _case_open(db, story.case_id) or channel == "email":
            interaction = self._inbound(db, person, channel, at, story.subject, story, first=False)
            if interaction.case_id is None:
                _attach(db, story.case_id, interaction.id)
            if story.done:  # an email that reopened a resolved case: the story goes on
                story.done = False
                self.open_story[person.index] = story

    def _outbound(
        self, db: Session, story: Story, channel: str, at: datetime, template: str, rng: random.Random
    ) -> None:
        person = story.person
        brand = BRANDS[person.brand]
        if channel in ("sms", "whatsapp") and not person.consents.get(channel, True):
            channel = "email" if person.email else channel
        if channel == "email" and not person.email:
            channel = "sms"
        agent = story.agent or self._agent_at(brand, _queues_of(story.topic), at, rng)
        story.agent = agent
        name = self.agents[agent].display if agent in self.agents else brand.company
        if channel == "email":
            body = self._text(
                template if template.startswith("email") else "email_out", person, story.subject, name
            )
            reference = f"<{self._key('mail')}@{brand.email_domain}>"
            subject = (
                f"Re: {story.subject} {messages.case_tag(story.case_id)}"
                if story.email_ref
                else f"{story.subject} {messages.case_tag(story.case_id)}"
            )
            messages.record_outbound(
                db=db,
                channel=Channel.EMAIL,
                customer_id=story.customer_id,
                case_id=story.case_id,
                ref=ExternalRef(kind=RefKind.EMAIL_MESSAGE_ID, value=reference),
                body=body,
                to=person.email or "",
                sender=f"atencion@{brand.email_domain}",
                status="sent",
                subject=subject,
                agent=agent,
                language=person.language,
                attributes={
                    "in_reply_to": story.email_ref,
                    "references": [story.email_ref] if story.email_ref else None,
                },
                now=at,
                region=self.region,
            )
            story.email_ref = reference
            return
        sid = "SM" + self._key("sms").replace("-", "")[-32:]
        kind = Channel.WHATSAPP if channel == "whatsapp" else Channel.SMS
        sent = messages.record_outbound(
            db=db,
            channel=kind,
            customer_id=story.customer_id,
            case_id=story.case_id,
            ref=ExternalRef(kind=RefKind.TWILIO_SID, value=sid),
            body=self._text(f"{channel}_out", person, story.subject, name),
            to=person.phone,
            sender=brand.sms_from,
            status="delivered",
            agent=agent,
            language=person.language,
            now=at,
            region=self.region,
        )
        # Delivered at once, as nearly every one is: a status report per message would double the writes.
        sent.outcome = Outcome.DELIVERED.value

    def _inbound(
        self,
        db: Session,
        person: Person,
        channel: str,
        at: datetime,
        subject: str,
        story: Story | None,
        *,
        first: bool,
    ) -> Interaction:
        brand = BRANDS[person.brand]
        rng = random.Random(f"{self.options.seed}/in/{person.index}/{at.isoformat()}")
        template = f"{channel}_new" if first else f"{channel}_in"
        if channel == "email":
            answered = story.email_ref if story else None
            message = InboundEmail(
                message_id=f"<{self._key('mail')}@{(person.email or 'x@mail.example').split('@')[1]}>",
                sender=person.email or "",
                sender_name=person.name,
                to=(f"atencion@{brand.email_domain}",),
                subject=(
                    f"Re: {subject} {messages.case_tag(story.case_id)}"
                    if story and story.email_ref
                    else subject
                ),
                text=self._text(template, person, subject, None, rng),
                in_reply_to=answered,
                references=(answered,) if answered else (),
            )
            recorded = messages.record_inbound_email(db=db, message=message, region=self.region, now=at)
            if story is not None:
                story.email_ref = message.message_id
            return recorded.interaction
        body = self._text(template, person, subject, None, rng)
        inbound = InboundText(
            sid="SM" + self._key("in").replace("-", "")[-32:],
            account_sid=None,
            channel=Channel.WHATSAPP if channel == "whatsapp" else Channel.SMS,
            sender=person.phone,
            recipient=brand.sms_from,
            body=body,
            profile_name=person.first if channel == "whatsapp" else None,
        )
        return messages.record_inbound_text(db=db, message=inbound, region=self.region, now=at).interaction

    def _text(
        self, template: str, person: Person, subject: str, agent: str | None, rng: random.Random | None = None
    ) -> str:
        brand = BRANDS[person.brand]
        choices = MESSAGE_TEXTS[person.language][template]
        text = rng.choice(choices) if rng is not None else choices[0]
        return text.format(
            company=brand.company,
            first=person.first,
            name=person.name,
            subject=subject,
            agent=agent or brand.company,
        )

    # --- outbound campaigns -------------------------------------------------------------------------

    async def _set_up_campaigns(self) -> list[CampaignPlan]:
        plans = []
        for brand in BRANDS.values():
            plans.append(await self._campaign(brand))
        return plans

    async def _campaign(self, brand: Brand) -> CampaignPlan:
        spanish = brand.key == "banco_es"
        copy = CAMPAIGNS[brand.key]
        queue = copy.queue
        agents = [a for a in AGENTS if queue in a.skills]
        name = copy.name
        with self.sessions() as db:
            taken = set(db.scalars(select(Campaign.name)))
        while name in taken:
            name = f"{name} ({self.run_tag})"[:100]
        settings = CampaignSettings(
            name=name,
            mode=DialMode.PROGRESSIVE if spanish else DialMode.PREDICTIVE,
            country=brand.country,
            caller_id=brand.sms_from if spanish else brand.called,
            company_name=brand.company,
            queue=queue,
            schedule=CampaignSchedule(
                time_zone=brand.zone.key,
                weekly={
                    **{
                        d: ["10:00-14:00", "16:00-20:00"] if spanish else ["09:30-20:00"]
                        for d in WEEKDAYS[:5]
                    },
                    **({} if spanish else {"sat": ["10:00-16:00"]}),
                },
                start_date=self.days[0],
                end_date=max(self.days[-1], self.now.date()) + timedelta(days=30),
            ),
            abandon_message=copy.abandon_message,
            amd=not spanish,
            agents=[f"PJSIP/{a.extension}" for a in agents],
            max_attempts=3,
        )
        now = self.now  # the law is checked as of the demo's present
        with unit_of_work(self.sessions) as db:
            campaign = dialer_campaigns.create_campaign(db=db, settings=settings, actor=ACTOR, now=now)
            campaign_id = campaign.id
        people = [p for p in self.by_brand[brand.key] if p.consents.get("calls")]
        rng = random.Random(f"{self.options.seed}/list/{brand.key}")
        chosen = rng.sample(people, min(len(people), max(10, len(people) // 5)))
        rows = ["phone,name,email,segment"]
        for person in chosen:
            rows.append(
                f"{person.phone},{person.name},{person.email or ''},{'vip' if person.vip else 'standard'}"
            )
        for _ in range(max(3, len(chosen) // 6)):  # prospects: numbers nobody on file has
            number = (
                "+346" + str(rng.randint(10**7, 10**8 - 1))
                if spanish
                else "+4477" + str(rng.randint(10**7, 10**8 - 1))
            )
            first, last = (
                rng.choice(ES_FIRST_NAMES if spanish else GB_FIRST_NAMES),
                rng.choice(ES_SURNAMES if spanish else GB_SURNAMES),
            )
            rows.append(f"{number},{first} {last},,prospect")
        listed = chosen[0].phone if chosen else None
        rows += [copy.bad_row, rows[1]]  # a bad row, a duplicate
        with unit_of_work(self.sessions) as db:
            if listed is not None:  # someone asked never to be called: the import reports it
                do_not_call_store.add_numbers(
                    db=db,
                    numbers=[listed],
                    campaign_id=None,
                    reason="asked by phone",
                    actor=ACTOR,
                    region=self.region,
                )
        body = ("\n".join(rows) + "\n").encode()

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        await import_contact_list(
            chunks(),
            sessions=self.sessions,
            campaign_id=campaign_id,
            filename=copy.list_filename,
            region=brand.country,
        )
        with unit_of_work(self.sessions) as db:
            dialer_campaigns.change_status(
                db=db, campaign_id=campaign_id, action="start", actor=ACTOR, now=now
            )
        return CampaignPlan(
            campaign_id, name, brand, settings, [f"PJSIP/{a.extension}" for a in agents], len(chosen)
        )

    def _dial(self, db: Session, plan: CampaignPlan, day: date, rng: random.Random) -> None:
        """A day of the campaign: claims as the dialer claims, calls that end as calls end."""
        brand = plan.brand
        weekly = plan.settings.schedule.weekly
        hours = weekly.get(WEEKDAYS[day.weekday()])
        if not hours or is_holiday(
            self.flows[brand.key].schedules[brand.schedule], self._local(brand, day, 12)
        ):
            return
        campaign = db.get(Campaign, plan.campaign_id)
        assert campaign is not None
        policy = plan.settings.calling_policy()
        windows: list[tuple[float, float]] = []
        for span in hours:
            opens, closes = span.split("-")
            windows.append((_hours(opens), _hours(closes)))
        total = sum(end - start for start, end in windows)
        batches = max(3, round(total))  # a claim an hour, as a paced dialer claims several at a time
        per_batch = max(1, round(plan.size / 6 / batches)) + (plan.settings.mode == DialMode.PREDICTIVE)
        for n in range(batches):
            offset = (n + rng.random()) / batches * total
            for start, end in windows:
                if offset < end - start:
                    hour = start + offset
                    break
                offset -= end - start
            now = self._local(brand, day, hour)
            if now >= self.horizon:
                return
            claim = dialer_attempts.claim_calls(
                db=db, campaign=campaign, settings=plan.settings, policy=policy, wanted=per_batch, now=now
            )
            for call in claim.calls:
                self._place(db, plan, call.attempt_id, now + timedelta(seconds=rng.uniform(0, 60)), rng)

    def _place(
        self, db: Session, plan: CampaignPlan, attempt_id: int, dialed: datetime, rng: random.Random
    ) -> None:
        settings = plan.settings
        draw = rng.random()
        answered = dialed + timedelta(seconds=rng.uniform(5, 20))
        greeting = answered + timedelta(seconds=rng.uniform(0.8, 2.5))
        kind: str
        if draw < 0.34:
            kind = "no_answer"
        elif draw < 0.42:
            kind = "busy"
        elif draw < 0.44:
            kind = "failed"
        elif draw < 0.58:
            kind = "machine"
        else:
            kind = "abandoned" if rng.random() < 0.03 and plan.may_abandon(answered) else "connected"
        agent: str | None = None
        if kind == "no_answer":
            result = dialer_attempts.CallResult(
                attempt_id,
                dialed + timedelta(seconds=settings.ring_timeout_seconds),
                CallEnd.NO_ANSWER,
                "no answer",
            )
        elif kind in ("busy", "failed"):
            end = CallEnd.BUSY if kind == "busy" else CallEnd.FAILED
            result = dialer_attempts.CallResult(
                attempt_id,
                dialed + timedelta(seconds=rng.uniform(1, 4)),
                end,
                "user busy" if kind == "busy" else "congestion",
            )
        elif kind == "machine" and settings.amd:
            result = dialer_attempts.CallResult(
                attempt_id,
                greeting + timedelta(seconds=0.5),
                CallEnd.COMPLETED,
                "AMD: machine",
                answered_at=answered,
                greeting_ended_at=greeting,
                amd=AmdVerdict.MACHINE,
            )
        elif kind == "abandoned":
            played = greeting + timedelta(seconds=settings.drop_wait_seconds)
            result = dialer_attempts.CallResult(
                attempt_id,
                played + timedelta(seconds=9),
                CallEnd.COMPLETED,
                "no agent free: message played",
                answered_at=answered,
                greeting_ended_at=greeting,
                amd=AmdVerdict.HUMAN if settings.amd else None,
                message_played_at=played,
            )
        else:
            agent = rng.choice(plan.agents)
            connected = greeting + timedelta(seconds=rng.uniform(0.2, 1.4))
            talk = (
                25.0
                if kind == "machine"
                else rng.lognormvariate(math.log(QUEUES[settings.queue].talk_median), 0.55)
            )
            result = dialer_attempts.CallResult(
                attempt_id,
                connected + timedelta(seconds=talk),
                CallEnd.COMPLETED,
                "normal clearing",
                answered_at=answered,
                greeting_ended_at=greeting,
                amd=AmdVerdict.HUMAN if settings.amd else None,
                connected_at=connected,
                agent=agent,
            )
        if result.ended_at >= self.horizon:
            return
        call_class = dialer_attempts.finish_call(
            db=db, result=result, settings=settings, campaign_name=plan.name, region=self.region
        )
        if call_class is not None and result.answered_at is not None and kind != "machine":
            plan.answered(result.answered_at, call_class == dialer_attempts.CallClass.ABANDONED)
        if agent is None:
            return
        choice = dispositions.AgentDisposition.NO_CONTACT
        call_back = None
        if kind != "machine":
            choice = rng.choices(
                list(dispositions.AgentDisposition),
                (
                    0.16,
                    0.45,
                    0.18,
                    0.03,
                    0.04,
                    0.14,
                ),  # sale, not interested, call back, wrong number, DNC, none
            )[0]
        if choice is dispositions.AgentDisposition.CALL_BACK:
            local = result.ended_at.astimezone(plan.brand.zone) + timedelta(days=rng.randint(1, 3))
            call_back = datetime.combine(local.date(), time(17, rng.choice((0, 15, 30))), plan.brand.zone)
        dispositions.set_disposition(
            db=db,
            campaign_id=plan.campaign_id,
            attempt_id=attempt_id,
            agent=agent,
            disposition=choice,
            call_back_at=call_back,
            note=None,
            do_not_call_scope=None,
            actor=ACTOR,
            now=result.ended_at + timedelta(seconds=rng.uniform(5, 40)),
            region=self.region,
        )

    # --- the summary --------------------------------------------------------------------------------

    def _summary(self) -> DemoSummary:
        with self.sessions() as db:
            in_range = (Interaction.started_at >= self.start, Interaction.started_at < self.horizon)
            contacts = {
                f"{channel} {direction}": count
                for channel, direction, count in db.execute(
                    select(Interaction.channel, Interaction.direction, func.count())
                    .where(*in_range)
                    .group_by(Interaction.channel, Interaction.direction)
                )
            }
            first, last = db.execute(
                select(func.min(Interaction.started_at), func.max(Interaction.started_at)).where(*in_range)
            ).one()
            statuses = dict(db.execute(select(Case.status, func.count()).group_by(Case.status)).all())
            campaigns = []
            for campaign in db.scalars(select(Campaign).order_by(Campaign.id)):
                classes = dict(
                    db.execute(
                        select(DialAttempt.call_class, func.count())
                        .where(DialAttempt.campaign_id == campaign.id)
                        .group_by(DialAttempt.call_class)
                    ).all()
                )
                live = classes.get("connected", 0) + classes.get("abandoned", 0)
                campaigns.append((campaign.name, sum(classes.values()), live, classes.get("abandoned", 0)))
            channels = func.count(distinct(Interaction.channel))
            rich = db.execute(
                select(Interaction.customer_id, Customer.name)
                .join(Customer, Customer.id == Interaction.customer_id)
                .where(Interaction.case_id.is_not(None), *in_range)
                .group_by(Interaction.customer_id, Customer.name)
                .order_by(channels.desc(), func.count().desc(), Interaction.customer_id)
                .limit(1)
            ).first()
            ivr_calls = db.scalar(
                select(func.count()).where(
                    *in_range,
                    Interaction.channel == Channel.VOICE.value,
                    Interaction.direction == Direction.INBOUND.value,
                )
            )
            return DemoSummary(
                start=first or self.start,
                end=last or self.horizon,
                customers=db.scalar(select(func.count()).select_from(Customer)) or 0,
                contacts=contacts,
                ivr_calls=ivr_calls or 0,
                cases_open=sum(n for s, n in statuses.items() if s != CaseStatus.RESOLVED.value),
                cases_resolved=statuses.get(CaseStatus.RESOLVED.value, 0),
                campaigns=campaigns,
                agents=db.scalar(select(func.count()).select_from(Agent)) or 0,
                queues=db.scalar(select(func.count()).select_from(Queue)) or 0,
                callbacks=self.callbacks,
                rich_customer_id=rich.customer_id if rich else None,
                rich_customer_name=rich.name if rich else None,
            )


@dataclass
class CampaignPlan:
    campaign_id: int
    name: str
    brand: Brand
    settings: CampaignSettings
    agents: list[str]
    size: int
    live: list[tuple[datetime, bool]] = field(default_factory=list)  # answered at, abandoned

    def may_abandon(self, at: datetime) -> bool:
        """Whether one more abandoned call keeps the rate under 2% over the last 24 hours and over all:
        well inside the 3% the law allows, as the dialer's pacing keeps it."""
        day = [abandoned for answered, abandoned in self.live if answered > at - timedelta(hours=24)]
        every = [abandoned for _, abandoned in self.live]
        return all((sum(group) + 1) / (len(group) + 1) <= 0.02 for group in (day, every))

    def answered(self, at: datetime, abandoned: bool) -> None:
        self.live.append((at, abandoned))


class TouchpointBatch:
    """Touchpoints kept for the day's one insert, numbered after what each interaction has."""

    def __init__(self) -> None:
        self.pending: dict[int, list[TouchpointCreate]] = defaultdict(list)

    def add(self, interaction_id: int, steps: Iterable[TouchpointCreate]) -> None:
        self.pending[interaction_id].extend(steps)

    def flush(self, db: Session) -> None:
        if not self.pending:
            return
        ids = list(self.pending)
        last = dict(
            db.execute(
                select(Touchpoint.interaction_id, func.max(Touchpoint.seq))
                .where(Touchpoint.interaction_id.in_(ids))
                .group_by(Touchpoint.interaction_id)
            ).all()
        )
        rows = []
        for interaction_id, steps in self.pending.items():
            for seq, step in enumerate(steps, start=(last.get(interaction_id) or 0) + 1):
                rows.append(
                    {
                        "interaction_id": interaction_id,
                        "seq": seq,
                        "occurred_at": step.occurred_at or utcnow(),
                        **step.model_dump(exclude={"occurred_at"}),
                    }
                )
        db.execute(insert(Touchpoint), rows)
        self.pending.clear()


# --- small pieces -----------------------------------------------------------------------------------------


def _questions(flow: Flow) -> dict[str, tuple[str, str]]:
    """Prompt file -> (node, prompt field): how a scripted caller knows which question it hears."""
    found: dict[str, tuple[str, str]] = {}
    for prompt in flow_prompts(flow):
        found.setdefault(prompt.file, (prompt.node, prompt.field))
    return found


def _turn_steps(turn: QueueTurn) -> list[TouchpointCreate]:
    """The agent's side of a queue visit, as `reporting.rows` reads it."""
    left = turn.entered_at + timedelta(seconds=turn.wait)
    if not turn.answered:
        return [
            TouchpointCreate(
                kind=TouchpointKind.QUEUE_LEAVE,
                occurred_at=left,
                node=None,
                attributes={
                    "queue": turn.queue,
                    "reason": "abandoned",
                    "waited_seconds": round(turn.wait, 1),
                },
            )
        ]
    steps = [
        TouchpointCreate(
            kind=TouchpointKind.QUEUE_LEAVE,
            occurred_at=left,
            attributes={"queue": turn.queue, "reason": "answered", "waited_seconds": round(turn.wait, 1)},
        ),
        TouchpointCreate(
            kind=TouchpointKind.AGENT_CONNECT,
            occurred_at=left,
            attributes={"agent": turn.agent, "queue": turn.queue},
        ),
    ]
    if turn.hold:
        held = left + timedelta(seconds=turn.hold_after)
        steps += [
            TouchpointCreate(kind=TouchpointKind.HOLD, occurred_at=held, attributes={"agent": turn.agent}),
            TouchpointCreate(
                kind=TouchpointKind.RESUME,
                occurred_at=held + timedelta(seconds=turn.hold),
                attributes={"agent": turn.agent, "held_seconds": round(turn.hold, 1)},
            ),
        ]
    return steps


def _csat(rng: random.Random, waited: float) -> int:
    """A survey answer: mostly 4s and 5s, worse after a long wait."""
    weights = [0.05, 0.06, 0.12, 0.32, 0.45]
    if waited > 90:
        weights = [0.12, 0.12, 0.2, 0.3, 0.26]
    return rng.choices(range(1, 6), weights)[0]


def _queues_of(topic: Topic) -> list[str]:
    fallback = ("atencion_general",) if topic.brand == "banco_es" else ("support",)
    return list(TOPIC_QUEUES.get(topic.key, fallback))


def _case_open(db: Session, case_id: int) -> bool:
    case = db.get(Case, case_id)
    return case is not None and case.status != CaseStatus.RESOLVED.value


def _attach(db: Session, case_id: int, interaction_id: int) -> None:
    interaction = db.get(Interaction, interaction_id)
    if interaction is not None and interaction.case_id is None:
        cases.add_interaction(db=db, case_id=case_id, interaction_id=interaction_id)


def _first_start(db: Session, interaction_ids: Sequence[int]) -> datetime | None:
    if not interaction_ids:
        return None
    return db.scalar(select(func.min(Interaction.started_at)).where(Interaction.id.in_(interaction_ids)))


def _hours(text: str) -> float:
    hour, minute = text.split(":")
    return int(hour) + int(minute) / 60


def hash_minutes(at: datetime) -> int:
    """A stable spread of minutes for openings (so a morning's first replies do not all land at 08:30)."""
    return (at.minute * 7 + at.second * 13 + at.hour * 3) % 150
