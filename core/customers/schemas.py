from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from core.cases.schemas import CaseRead
from core.channels import Channel, ConsentChannel
from core.customers.identities import IdentityKind
from core.timeline.schemas import InteractionRead

Name = Annotated[str, Field(min_length=1, max_length=200)]
# BCP 47, as short as Asterisk and the speech engines use it: "es", "en", "es-MX".
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$", examples=["es", "en-GB"])]


class LegalBasis(StrEnum):
    """GDPR article 6 bases (LOPDGDD follows them)."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTEREST = "legitimate_interest"


class Consent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    granted: bool
    recorded_at: AwareDatetime | None = Field(
        default=None, description="when it was given or withdrawn; now if omitted"
    )
    legal_basis: LegalBasis | None = None
    source: str | None = Field(
        default=None, max_length=100, description="where it was collected, e.g. 'web form'"
    )


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind
    value: str = Field(min_length=1, max_length=320)


class IdentityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: IdentityKind
    value: str


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    preferred_language: Language | None = None
    preferred_channel: Channel | None = None
    consents: dict[ConsentChannel, Consent] = Field(default_factory=dict)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)
    attributes: dict[str, Any] = Field(default_factory=dict)


class CustomerUpdate(BaseModel):
    """Only the fields sent are changed; consents are merged per channel."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    preferred_language: Language | None = None
    preferred_channel: Channel | None = None
    consents: dict[ConsentChannel, Consent] | None = None
    attributes: dict[str, Any] | None = None


class CustomerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str | None
    preferred_language: str | None
    preferred_channel: str | None
    consents: dict[str, Any]
    attributes: dict[str, Any]
    identities: list[IdentityRead]
    created_at: datetime
    updated_at: datetime


class CustomerList(BaseModel):
    items: list[CustomerRead]


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_id: int = Field(description="the duplicate; everything it holds moves to the customer in the path")


class MergeResult(BaseModel):
    customer: CustomerRead
    merged_customer_id: int
    moved: dict[str, int]


class Lookup(BaseModel):
    """The screen pop: who is calling, what is open, what happened lately on any channel."""

    customer: CustomerRead
    matched_identity: IdentityRead
    preferred_language: str | None
    preferred_channel: str | None
    open_cases: list[CaseRead]
    recent_interactions: list[InteractionRead]
