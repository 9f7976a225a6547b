"""Customers and their identities. Functions flush but never commit: the edge owns the transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from core.audit import service as audit
from core.cases.models import Case
from core.customers.identities import IdentityKind, matching_kinds, normalise
from core.customers.models import Customer, Identity
from core.customers.schemas import Consent, CustomerCreate, CustomerUpdate, IdentityIn
from core.db import affected_rows, utcnow
from core.errors import Conflict, InvalidInput, NotFound
from core.events import stage
from core.text_folding import fold
from core.timeline.models import Interaction


def _consent_docs(consents: dict[Any, Consent]) -> dict[str, Any]:
    now = utcnow()
    return {
        str(channel): {
            "granted": consent.granted,
            "recorded_at": (consent.recorded_at or now).isoformat(),
            "legal_basis": consent.legal_basis.value if consent.legal_basis else None,
            "source": consent.source,
        }
        for channel, consent in consents.items()
    }


def _normalised(identities: Iterable[IdentityIn], region: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for identity in identities:
        pair = (identity.kind.value, normalise(identity.kind, identity.value, region=region))
        if pair in pairs:
            raise InvalidInput(f"{pair[0]} {pair[1]} is listed twice")
        pairs.append(pair)
    return pairs


def _refuse_taken(db: Session, pairs: list[tuple[str, str]]) -> None:
    if not pairs:
        return
    taken = db.execute(
        select(Identity.kind, Identity.value, Identity.customer_id).where(
            tuple_(Identity.kind, Identity.value).in_(pairs)
        )
    ).first()
    if taken is not None:
        raise Conflict(f"{taken.kind} {taken.value} already belongs to customer {taken.customer_id}")


def _flush_identities(db: Session) -> None:
    try:
        db.flush()
    except IntegrityError as exc:  # a concurrent request took the identity first
        raise Conflict("one of these identities was just taken by another customer") from exc


def _summary(customer: Customer) -> dict[str, Any]:
    return {"customer_id": customer.id, "identities": [[i.kind, i.value] for i in customer.identities]}


def create_customer(*, db: Session, data: CustomerCreate, region: str) -> Customer:
    pairs = _normalised(data.identities, region)
    _refuse_taken(db, pairs)
    customer = Customer(
        name=data.name,
        name_search=fold(data.name) if data.name else None,
        preferred_language=data.preferred_language,
        preferred_channel=data.preferred_channel.value if data.preferred_channel else None,
        consents=_consent_docs(data.consents),
        attributes=data.attributes,
        identities=[Identity(kind=kind, value=value) for kind, value in pairs],
    )
    db.add(customer)
    _flush_identities(db)
    stage(db, "customer.created", _summary(customer))
    return customer


class CustomerState(Protocol):
    """What says whether a customer can be used: a `Customer`, or a row of these two columns."""

    @property
    def merged_into_id(self) -> int | None: ...

    @property
    def erased_at(self) -> datetime | None: ...


State = TypeVar("State", bound=CustomerState)


def usable(customer_id: int, found: State | None) -> State:
    """`found`, if it is a customer that exists, unmerged and unerased; else NotFound saying why."""
    if found is None:
        raise NotFound(f"customer {customer_id} not found")
    if found.merged_into_id is not None:
        raise NotFound(f"customer {customer_id} was merged into customer {found.merged_into_id}")
    if found.erased_at is not None:
        raise NotFound(f"customer {customer_id} was erased")
    return found


def get_customer(*, db: Session, customer_id: int) -> Customer:
    return usable(customer_id, db.get(Customer, customer_id, options=[joinedload(Customer.identities)]))


def require_customer(*, db: Session, customer_id: int) -> None:
    """Raises NotFound unless the customer exists, unmerged and unerased; one small statement."""
    state = select(Customer.merged_into_id, Customer.erased_at).where(Customer.id == customer_id)
    usable(customer_id, db.execute(state).first())


def update_customer(*, db: Session, customer_id: int, data: CustomerUpdate) -> Customer:
    customer = get_customer(db=db, customer_id=customer_id)
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes:
        customer.name = data.name
        customer.name_search = fold(data.name) if data.name else None
    if "preferred_language" in changes:
        customer.preferred_language = data.preferred_language
    if "preferred_channel" in changes:
        customer.preferred_channel = data.preferred_channel.value if data.preferred_channel else None
    if data.consents is not None:
        customer.consents = {**customer.consents, **_consent_docs(data.consents)}
    if data.attributes is not None:
        customer.attributes = data.attributes
    db.flush()
    stage(db, "customer.updated", {"customer_id": customer.id, "fields": sorted(changes)})
    return customer


def add_identity(*, db: Session, customer_id: int, identity: IdentityIn, region: str) -> Identity:
    customer = get_customer(db=db, customer_id=customer_id)
    [(kind, value)] = _normalised([identity], region)
    _refuse_taken(db, [(kind, value)])
    added = Identity(kind=kind, value=value)
    customer.identities.append(added)
    _flush_identities(db)
    stage(db, "customer.identity_added", {"customer_id": customer.id, "kind": kind, "value": value})
    return added


def remove_identity(*, db: Session, customer_id: int, identity_id: int) -> None:
    customer = get_customer(db=db, customer_id=customer_id)
    identity = next((i for i in customer.identities if i.id == identity_id), None)
    if identity is None:
        raise NotFound(f"customer {customer_id} has no identity {identity_id}")
    customer.identities.remove(identity)
    db.flush()
    stage(db, "customer.identity_removed", {"customer_id": customer.id, "kind": identity.kind})


def customer_id_holding(*, db: Session, kind: IdentityKind, value: str, region: str) -> int | None:
    """The id of the customer holding an identity (see `matching_kinds`; an exact kind wins)."""
    normalised = normalise(kind, value, region=region)
    rows = db.execute(
        select(Identity.customer_id, Identity.kind).where(
            Identity.kind.in_(matching_kinds(kind)), Identity.value == normalised
        )
    ).all()
    if not rows:
        return None
    return int(min(rows, key=lambda row: row.kind != kind.value).customer_id)


def find_or_create_by_identity(*, db: Session, kind: IdentityKind, value: str, region: str) -> int:
    """The id of the customer holding the identity; a new customer with just that identity if none."""
    found = customer_id_holding(db=db, kind=kind, value=value, region=region)
    if found is not None:
        return found
    return create_customer(
        db=db, data=CustomerCreate(identities=[IdentityIn(kind=kind, value=value)]), region=region
    ).id


def search_customers(
    *,
    db: Session,
    region: str,
    name: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    limit: int = 20,
) -> list[Customer]:
    if not (name or phone or email):
        raise InvalidInput("search needs name, phone or email")
    query = (
        select(Customer)
        .where(Customer.merged_into_id.is_(None), Customer.erased_at.is_(None))
        .options(selectinload(Customer.identities))
        .order_by(Customer.id)
        .limit(limit)
    )
    if name:
        words = fold(name).split()
        query = query.where(*(Customer.name_search.contains(word, autoescape=True) for word in words))
    identity_filters = []
    if phone:
        number = normalise(IdentityKind.PHONE, phone, region=region)
        identity_filters.append(
            Identity.kind.in_([IdentityKind.PHONE.value, IdentityKind.WHATSAPP.value])
            & (Identity.value == number)
        )
    if email:
        identity_filters.append(
            (Identity.kind == IdentityKind.EMAIL.value)
            & (Identity.value == normalise(IdentityKind.EMAIL, email, region=region))
        )
    if identity_filters:
        holders = select(Identity.customer_id).where(or_(*identity_filters))
        query = query.where(Customer.id.in_(holders))
    return list(db.scalars(query))


def _merged_consents(target: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """Per channel the most recent statement wins, so a withdrawal on either record is kept."""
    merged = dict(target)
    for channel, statement in source.items():
        current = merged.get(channel)
        if current is None or datetime.fromisoformat(statement["recorded_at"]) > datetime.fromisoformat(
            current["recorded_at"]
        ):
            merged[channel] = statement
    return merged


def merge_customers(
    *, db: Session, target_id: int, source_id: int, actor: str
) -> tuple[Customer, dict[str, int]]:
    """Moves everything `source_id` holds to `target_id`; the source remains as a pointer to it."""
    if target_id == source_id:
        raise InvalidInput("cannot merge a customer with itself")
    target = get_customer(db=db, customer_id=target_id)
    source = get_customer(db=db, customer_id=source_id)
    moved = {
        "identities": affected_rows(
            db, update(Identity).where(Identity.customer_id == source.id).values(customer_id=target.id)
        ),
        "interactions": affected_rows(
            db, update(Interaction).where(Interaction.customer_id == source.id).values(customer_id=target.id)
        ),
        "cases": affected_rows(
            db, update(Case).where(Case.customer_id == source.id).values(customer_id=target.id)
        ),
    }
    target.name = target.name or source.name
    target.name_search = fold(target.name) if target.name else None
    target.preferred_language = target.preferred_language or source.preferred_language
    target.preferred_channel = target.preferred_channel or source.preferred_channel
    target.consents = _merged_consents(target.consents, source.consents)
    target.attributes = {**source.attributes, **target.attributes}
    source.merged_into_id = target.id
    db.flush()
    db.expire(target, ["identities"])
    db.expire(source, ["identities"])
    audit.record(
        db=db,
        actor=actor,
        action="customer.merged",
        subject_type="customer",
        subject_id=target.id,
        details={"source_id": source.id, "moved": moved},
    )
    stage(db, "customer.merged", {"customer_id": target.id, "source_id": source.id, "moved": moved})
    return target, moved
