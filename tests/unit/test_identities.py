import pytest

from core.customers.identities import IdentityKind, normalise, normalise_phone
from core.errors import InvalidInput


@pytest.mark.parametrize(
    "written",
    [
        "600 111 222",
        "+34600111222",
        "0034 600-111-222",
        "+34 600 11 12 22",
        "(+34) 600.111.222",
        "tel:+34600111222",
    ],
)
def test_every_common_way_of_writing_a_spanish_mobile_is_one_number(written: str) -> None:
    assert normalise_phone(written, region="ES") == "+34600111222"


def test_national_numbers_are_read_in_the_configured_region() -> None:
    assert normalise_phone("(55) 1234 5678", region="MX") == "+525512345678"
    assert normalise_phone("202-555-0143", region="US") == "+12025550143"


def test_whatsapp_prefix_is_the_same_number() -> None:
    assert normalise(IdentityKind.WHATSAPP, "whatsapp:+34600111222", region="ES") == "+34600111222"


@pytest.mark.parametrize("garbage", ["abc", "12", "+34 6001112223334445", "", "++34"])
def test_unparseable_numbers_are_refused_with_the_reason(garbage: str) -> None:
    with pytest.raises(InvalidInput, match="phone number"):
        normalise_phone(garbage, region="ES")


def test_emails_are_lower_cased_and_trimmed() -> None:
    assert normalise(IdentityKind.EMAIL, "  Ana@Example.COM ", region="ES") == "ana@example.com"


@pytest.mark.parametrize("garbage", ["ana", "ana@", "@example.com", "ana@example", "a b@example.com"])
def test_what_cannot_be_an_email_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidInput, match="not an email"):
        normalise(IdentityKind.EMAIL, garbage, region="ES")


def test_crm_ids_keep_their_case_but_not_surrounding_space() -> None:
    assert normalise(IdentityKind.CRM, " SF-00Q12x ", region="ES") == "SF-00Q12x"
    with pytest.raises(InvalidInput):
        normalise(IdentityKind.CRM, "   ", region="ES")
