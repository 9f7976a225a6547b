from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy.orm import Session

from api.deps import (
    MergeCustomers,
    PrivacyOfficer,
    ReadCustomers,
    ReadDB,
    ReadTimeline,
    SettingsDep,
    WriteCustomers,
    WriteDB,
    get_settings,
    in_read_session,
)
from api.responses import json_response
from core.cases import service as cases
from core.cases.schemas import CaseRead, CaseStatus
from core.channels import Channel
from core.customers import privacy, screen_pop
from core.customers import service as customers
from core.customers.identities import IdentityKind
from core.customers.schemas import (
    CustomerCreate,
    CustomerList,
    CustomerRead,
    CustomerUpdate,
    IdentityIn,
    IdentityRead,
    Lookup,
    MergeRequest,
    MergeResult,
)
from core.timeline import service as timeline
from core.timeline.schemas import TimelinePage

router = APIRouter(prefix="/customers", tags=["customers"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CustomerRead)
def create_customer(data: CustomerCreate, db: WriteDB, settings: SettingsDep, _: WriteCustomers) -> Any:
    return customers.create_customer(db=db, data=data, region=settings.default_region)


@router.get("", response_model=CustomerList)
def search_customers(
    db: ReadDB,
    settings: SettingsDep,
    _: ReadCustomers,
    name: Annotated[str | None, Query(max_length=200)] = None,
    phone: Annotated[str | None, Query(max_length=64)] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    found = customers.search_customers(
        db=db, region=settings.default_region, name=name, phone=phone, email=email, limit=limit
    )
    return {"items": found}


@router.get("/lookup", response_model=Lookup)
async def lookup(
    request: Request,
    _: ReadCustomers,
    phone: Annotated[str | None, Query(max_length=64)] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    whatsapp: Annotated[str | None, Query(max_length=64)] = None,
    crm: Annotated[str | None, Query(max_length=320)] = None,
    recent: Annotated[int, Query(ge=1, le=50, description="how many recent interactions")] = 10,
) -> Response:
    """The screen pop: the customer, open cases and latest interactions, found by any identity."""
    given = {
        kind: value
        for kind, value in (
            (IdentityKind.PHONE, phone),
            (IdentityKind.EMAIL, email),
            (IdentityKind.WHATSAPP, whatsapp),
            (IdentityKind.CRM, crm),
        )
        if value
    }
    if len(given) != 1:
        raise HTTPException(422, "give exactly one of phone, email, whatsapp or crm")
    [(kind, value)] = given.items()
    region = (await get_settings(request)).default_region
    found = await in_read_session(
        request, lambda db: screen_pop.lookup(db=db, kind=kind, value=value, region=region, recent=recent)
    )
    if found is None:
        raise HTTPException(404, f"no customer has {kind.value} {value!r}")
    return json_response(found.document())


@router.get("/{customer_id}", response_model=CustomerRead)
def get_customer(customer_id: int, db: ReadDB, _: ReadCustomers) -> Any:
    return customers.get_customer(db=db, customer_id=customer_id)


@router.patch("/{customer_id}", response_model=CustomerRead)
def update_customer(customer_id: int, data: CustomerUpdate, db: WriteDB, _: WriteCustomers) -> Any:
    return customers.update_customer(db=db, customer_id=customer_id, data=data)


@router.post("/{customer_id}/identities", status_code=status.HTTP_201_CREATED, response_model=IdentityRead)
def add_identity(
    customer_id: int,
    data: IdentityIn,
    db: WriteDB,
    settings: SettingsDep,
    _: WriteCustomers,
) -> Any:
    return customers.add_identity(
        db=db, customer_id=customer_id, identity=data, region=settings.default_region
    )


@router.delete("/{customer_id}/identities/{identity_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_identity(customer_id: int, identity_id: int, db: WriteDB, _: WriteCustomers) -> None:
    customers.remove_identity(db=db, customer_id=customer_id, identity_id=identity_id)


@router.post("/{customer_id}/merge", response_model=MergeResult)
def merge(customer_id: int, data: MergeRequest, db: WriteDB, who: MergeCustomers) -> Any:
    """Merges the duplicate `source_id` into this customer: identities, interactions and cases move."""
    target, moved = customers.merge_customers(
        db=db, target_id=customer_id, source_id=data.source_id, actor=who.name
    )
    return {"customer": target, "merged_customer_id": data.source_id, "moved": moved}


@router.get("/{customer_id}/timeline", response_model=TimelinePage)
async def get_timeline(
    customer_id: int,
    request: Request,
    _: ReadTimeline,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    channel: Annotated[list[Channel] | None, Query(description="repeat to include several")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include: Annotated[str | None, Query(pattern="^touchpoints$")] = None,
) -> Response:
    """The customer's interactions on every channel, newest first; `next_cursor` fetches the next page.
    `include=touchpoints` adds each interaction's steps (IVR nodes, choices, speech)."""
    for bound in (since, until):
        if bound is not None and bound.tzinfo is None:
            raise HTTPException(422, "since and until need a time zone, e.g. 2026-11-24T10:00:00Z")

    def read(db: Session) -> dict[str, Any]:
        items, next_cursor = timeline.timeline_page(
            db=db,
            customer_id=customer_id,
            limit=limit,
            cursor=cursor,
            channels=[c.value for c in channel or ()],
            since=since,
            until=until,
        )
        steps = timeline.touchpoints_of(db=db, interaction_ids=[i["id"] for i in items]) if include else {}
        for item in items:
            item["touchpoints"] = steps.get(item["id"])
        return {"items": items, "next_cursor": next_cursor}

    return json_response(await in_read_session(request, read))


@router.get("/{customer_id}/cases", response_model=list[CaseRead])
def list_cases(
    customer_id: int,
    db: ReadDB,
    _: ReadCustomers,
    status: CaseStatus | None = None,
) -> Any:
    customers.get_customer(db=db, customer_id=customer_id)
    return cases.cases_of(db=db, customer_id=customer_id, statuses=[status.value] if status else ())


@router.get("/{customer_id}/export")
def export(customer_id: int, db: WriteDB, who: PrivacyOfficer) -> dict[str, Any]:
    """Right of access: everything held about the customer in one JSON document (audited)."""
    return privacy.export_customer(db=db, customer_id=customer_id, actor=who.name)


@router.delete("/{customer_id}")
def erase(customer_id: int, db: WriteDB, who: PrivacyOfficer) -> dict[str, Any]:
    """Right to erasure: identities and content go, aggregate counts stay (audited)."""
    return {
        "customer_id": customer_id,
        "erased": privacy.erase_customer(db=db, customer_id=customer_id, actor=who.name),
    }
