"""Identities in one canonical form, so "600 111 222", "+34600111222" and "0034 600-111-222" are one."""

from __future__ import annotations

import re
from enum import StrEnum

import phonenumbers

from core.errors import InvalidInput


class IdentityKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    WHATSAPP = "whatsapp"
    CRM = "crm"  # the customer's id in an external CRM


# Deliberately loose: the mailbox's own server is the judge; this only refuses what cannot be one.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_PREFIXES = ("whatsapp:", "tel:", "sip:")


def normalise_phone(value: str, *, region: str) -> str:
    """E.164 form of a phone number; numbers without a country code are read in `region`."""
    text = value.strip()
    for prefix in _PHONE_PREFIXES:
        if text.lower().startswith(prefix):
            text = text[len(prefix) :].split("@", 1)[0]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(f"{value!r} is not a phone number: {exc}") from None
    # "possible" (right length for the country), not "valid": the metadata lags behind new ranges,
    # and refusing a real caller's number is worse than accepting an unallocated one.
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput(
            f"{value!r} is not a possible phone number for its country (read in region {region})"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_HANDSET_KINDS = (IdentityKind.PHONE.value, IdentityKind.WHATSAPP.value)


def matching_kinds(kind: IdentityKind) -> list[str]:
    """The identity kinds a look-up by `kind` searches: a phone number and a WhatsApp number are
    the same handset, so each finds the other."""
    return list(_HANDSET_KINDS) if kind.value in _HANDSET_KINDS else [kind.value]


def normalise(kind: IdentityKind, value: str, *, region: str) -> str:
    if kind in (IdentityKind.PHONE, IdentityKind.WHATSAPP):
        return normalise_phone(value, region=region)
    if kind is IdentityKind.EMAIL:
        email = value.strip().lower()
        if not _EMAIL.match(email) or len(email) > 320:
            raise InvalidInput(f"{value!r} is not an email address")
        return email
    crm_id = value.strip()
    if not crm_id or len(crm_id) > 320:
        raise InvalidInput("a CRM id must have 1 to 320 characters")
    return crm_id
