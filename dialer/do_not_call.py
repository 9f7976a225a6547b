"""Do-not-call, decided at dial time for one number (and in batches at import time).

Pure: the lists come in through a one-method port, `NumberList`, so the same decision runs over an
in-memory set (tests, an import that loaded the lists once) and over the database (a query per batch).
Checking at dial time, not only at import, is what keeps a number added to a list today from being
dialed from a list imported last week.

A number is refused when it is on the global list, on the campaign's list, when the customer withdrew
their consent to calls, when their data was erased, or, for campaigns that need it (marketing), when no
consent to calls was recorded. A listing always wins over a consent: removing a number from a list is
the way to call it again, and that is a deliberate act with its own audit trail.

    lists = DoNotCallLists(global_list=InMemoryNumberList.of(["+34600111222"]),
                           campaign_list=InMemoryNumberList.of([]))
    permission = dial_permission("+34600111222", lists=lists, consents=customer.consents)
    permission.allowed  # False; permission.reasons == (DialBlock.GLOBAL_DO_NOT_CALL,)
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from core.channels import ConsentChannel

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


class NumberList(Protocol):
    """A list of E.164 numbers, asked in batches so that a database answers many numbers per query."""

    def listed(self, numbers: Collection[str]) -> AbstractSet[str]:
        """Those of `numbers` that are on the list."""
        ...


@dataclass(frozen=True, slots=True)
class InMemoryNumberList:
    """A `NumberList` held in memory: the fake for tests, and the real thing for lists loaded once."""

    numbers: frozenset[str]

    @classmethod
    def of(cls, numbers: Iterable[str]) -> InMemoryNumberList:
        return cls(frozenset(numbers))

    def listed(self, numbers: Collection[str]) -> AbstractSet[str]:
        return self.numbers.intersection(numbers)


class DialBlock(StrEnum):
    """Why a number may not be dialed."""

    GLOBAL_DO_NOT_CALL = "global_do_not_call"
    CAMPAIGN_DO_NOT_CALL = "campaign_do_not_call"
    CUSTOMER_ERASED = "customer_erased"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    NO_CONSENT = "no_consent"  # the campaign needs a consent to calls and none is recorded
    CONSENT_UNREADABLE = "consent_unreadable"  # a consent record that is not {"granted": bool, ...}


class CallConsent(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    NOT_RECORDED = "not_recorded"
    UNREADABLE = "unreadable"


_EXPLANATIONS = {
    DialBlock.GLOBAL_DO_NOT_CALL: "is on the global do-not-call list",
    DialBlock.CAMPAIGN_DO_NOT_CALL: "is on this campaign's do-not-call list",
    DialBlock.CUSTOMER_ERASED: "belongs to a customer whose data was erased",
    DialBlock.CONSENT_WITHDRAWN: "belongs to a customer who withdrew consent to calls",
    DialBlock.NO_CONSENT: "has no recorded consent to calls, which this campaign requires",
    DialBlock.CONSENT_UNREADABLE: "has a consent record for calls that cannot be read (treated as no)",
}


@dataclass(frozen=True, slots=True)
class DoNotCallLists:
    """The lists one campaign obeys: the global one and its own."""

    global_list: NumberList
    campaign_list: NumberList

    def screen(self, numbers: Collection[str]) -> dict[str, tuple[DialBlock, ...]]:
        """The listed numbers among `numbers` and the lists they are on (two queries for the batch)."""
        for number in numbers:
            _require_e164(number)
        found: dict[str, tuple[DialBlock, ...]] = {}
        if not numbers:
            return found
        for number in self.global_list.listed(numbers):
            found[number] = (DialBlock.GLOBAL_DO_NOT_CALL,)
        for number in self.campaign_list.listed(numbers):
            found[number] = (*found.get(number, ()), DialBlock.CAMPAIGN_DO_NOT_CALL)
        return found


@dataclass(frozen=True, slots=True)
class DialPermission:
    number: str
    reasons: tuple[DialBlock, ...]  # every reason that applies, for the audit; empty when allowed

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def reason(self) -> DialBlock | None:
        return self.reasons[0] if self.reasons else None

    @property
    def detail(self) -> str:
        if not self.reasons:
            return f"{self.number} may be dialed"
        return f"{self.number} " + "; ".join(_EXPLANATIONS[reason] for reason in self.reasons)


def call_consent(consents: Mapping[str, Any] | None) -> CallConsent:
    """The customer's consent to calls, from `Customer.consents` ({"calls": {"granted": true, ...}})."""
    if not consents:
        return CallConsent.NOT_RECORDED
    record = consents.get(ConsentChannel.CALLS.value)
    if record is None:
        return CallConsent.NOT_RECORDED
    granted = record.get("granted") if isinstance(record, Mapping) else None
    if not isinstance(granted, bool):
        return CallConsent.UNREADABLE
    return CallConsent.GRANTED if granted else CallConsent.WITHDRAWN


def dial_permission(
    number: str,
    *,
    lists: DoNotCallLists,
    consents: Mapping[str, Any] | None = None,
    require_consent: bool = False,
    customer_erased: bool = False,
) -> DialPermission:
    """May `number` (E.164) be dialed for this campaign? `consents` is the customer's `consents`
    document (None: no customer record); `require_consent` is the campaign's (marketing campaigns
    need an explicit consent; collections and reminders run on a contract or legitimate interest)."""
    reasons = list(lists.screen([number]).get(number, ()))
    if customer_erased:
        reasons.append(DialBlock.CUSTOMER_ERASED)
    consent = call_consent(consents)
    if consent is CallConsent.WITHDRAWN:
        reasons.append(DialBlock.CONSENT_WITHDRAWN)
    elif consent is CallConsent.UNREADABLE:
        reasons.append(DialBlock.CONSENT_UNREADABLE)
    elif consent is CallConsent.NOT_RECORDED and require_consent:
        reasons.append(DialBlock.NO_CONSENT)
    return DialPermission(number, tuple(reasons))


def _require_e164(number: str) -> None:
    # A list holds E.164 numbers: a number in another form would never match and slip through.
    if not _E164.match(number):
        raise ValueError(f"{number!r} is not in E.164 form (+ and digits); normalise it before checking")
