"""Speech matching, yes/no answers and digit checks used by the IVR flows."""

from __future__ import annotations

import pytest

from voice.ivr.matching import best_match, date_ddmmyyyy_ok, luhn_ok, says, words, yes_no_phrases, yes_or_no

OPTIONS = {
    "1": ["saldo", "consultar saldo"],
    "2": ["facturación", "facturas", "recibo"],
    "3": ["tarjeta bloqueada", "avería"],
    "4": ["tarjeta"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Facturación", "facturacion"),
        ("  ¿FACTURACIÓN?  ", "facturacion"),
        ("Señor Muñoz, ¡avería!", "senor munoz averia"),
        ("that's right", "that s right"),
        ("no_input", "no input"),
        ("", ""),
    ],
)
def test_flow_words_fold_case_accents_and_punctuation(text: str, expected: str) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("said", "phrase", "expected"),
    [
        ("facturacion", "facturacion", True),
        ("quiero ver mi facturacion", "facturacion", True),
        ("facturacion electronica", "facturacion", True),
        ("facturaciones", "facturacion", False),
        ("autofacturacion", "facturacion", False),
        ("consultar el saldo", "consultar saldo", False),
        ("", "saldo", False),
        ("saldo", "", False),
    ],
)
def test_flow_phrase_matches_whole_words_only(said: str, phrase: str, expected: bool) -> None:
    assert says(said, phrase) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("facturacion", "2"),
        ("Facturación", "2"),
        ("me ha llegado un RECIBO raro", "2"),
        ("Consultar saldo", "1"),
        ("mi tarjeta bloqueada", "3"),  # two words beat option 4's one
        ("la tarjeta", "4"),
        ("saldo y facturas", None),  # a tie between two options
        ("buenos días", None),
        ("", None),
    ],
)
def test_flow_best_match(text: str, expected: str | None) -> None:
    assert best_match(text, OPTIONS) == expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Sí", "es", True),
        ("si, correcto", "es", True),
        ("vale", "es", True),
        ("No", "es", False),
        ("no, gracias", "es", False),
        ("no es correcto", "es", False),  # longer than "correcto"
        ("Yes please", "en", True),
        ("That's right", "en", True),
        ("nope", "en", False),
        ("that's not right", "en", False),
        ("não", "pt-BR", False),
        ("oui", "fr", True),
        ("yes", "sv", True),  # a language without its own words gets Spanish and English
        ("quizás", "es", None),
        ("", "en", None),
    ],
)
def test_flow_yes_or_no(text: str, language: str, expected: bool | None) -> None:
    assert yes_or_no(text, language) is expected


def test_flow_yes_no_phrases_are_offered_to_the_recogniser_as_written() -> None:
    assert yes_no_phrases("es")["yes"][0] == "sí"
    assert set(yes_no_phrases("en-GB")) == {"yes", "no"}


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("4539578763621486", True),
        ("4111111111111111", True),
        ("5500005555555559", True),
        ("79927398713", True),
        ("4539578763621487", False),
        ("4111111111111112", False),
        ("0", False),
        ("", False),
        ("4539 5787 6362 1486", False),
        ("٤٥٣٩", False),  # Arabic-Indic digits are digits to Python, not to a phone keypad
    ],
)
def test_flow_luhn(digits: str, expected: bool) -> None:
    assert luhn_ok(digits) is expected


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("31121980", True),
        ("29022000", True),  # divisible by 400: leap
        ("29021900", False),  # divisible by 100: not leap
        ("29022024", True),
        ("29022023", False),
        ("31041990", False),
        ("00011990", False),
        ("01001990", False),
        ("01131990", False),
        ("01011899", False),
        ("0101199", False),
        ("010119900", False),
        ("0101199x", False),
    ],
)
def test_flow_date_ddmmyyyy(digits: str, expected: bool) -> None:
    assert date_ddmmyyyy_ok(digits) is expected
