"""What whole-call IVR tests share, whatever carries the call (FastAGI or ARI): the test clock's moments,
the caller, a link sender that keeps what it sent, and the call as the timeline recorded it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from centralita.container import Container
from core.customers import service as customers
from core.customers.identities import IdentityKind
from core.customers.schemas import CustomerCreate, IdentityIn
from core.db import unit_of_work
from core.timeline.models import Interaction, InteractionRef, Touchpoint
from voice.ivr.actions import SendLink
from voice.ivr.voice_port import CallInfo

MADRID_MONDAY_10 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LONDON_TUESDAY_11 = datetime(2025, 3, 4, 11, 0, tzinfo=UTC)
SUNDAY = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
CALLER = "+34600111222"
CARD = "4539578763621486"


@dataclass
class Recorded:
    interaction: Interaction
    touchpoints: list[Touchpoint]

    def steps(self) -> list[tuple[str, str | None, str | None]]:
        return [(t.kind, t.node, t.input) for t in self.touchpoints]

    def nodes(self) -> list[str | None]:
        """The nodes entered, in order."""
        return [
            t.node
            for t in self.touchpoints
            if t.input is None
            and "node_kind" in t.attributes
            and not str(t.attributes.get("result")).startswith("failed")
        ]


class Sender:
    def __init__(self) -> None:
        self.sent: list[SendLink] = []

    async def send_link(self, link: SendLink, call: CallInfo) -> None:
        self.sent.append(link)


def recorded(container: Container, call_id: str) -> Recorded:
    with container.session_factory() as db:
        interaction_id = db.scalars(
            select(InteractionRef.interaction_id).where(InteractionRef.value == call_id)
        ).one()
        interaction = db.get(Interaction, interaction_id)
        assert interaction is not None
        touchpoints = db.scalars(
            select(Touchpoint).where(Touchpoint.interaction_id == interaction_id).order_by(Touchpoint.seq)
        ).all()
        return Recorded(interaction, list(touchpoints))


def new_customer(container: Container, *identities: tuple[IdentityKind, str], **fields: object) -> int:
    with unit_of_work(container.session_factory) as db:
        data = CustomerCreate(identities=[IdentityIn(kind=k, value=v) for k, v in identities], **fields)  # type: ignore[arg-type]
        return customers.create_customer(db=db, data=data, region="ES").id
