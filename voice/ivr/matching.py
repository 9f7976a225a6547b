"""What the caller said or keyed, checked: speech against phrases, yes/no, and digit validations."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date

from core.text_folding import fold

_NOT_WORD = re.compile(r"[\W_]+")

# Built-in answers to "did you say …?" and "shall we call you back?", by primary language subtag.
# Spelt as a recogniser would write them; matching folds accents and punctuation away.
_YES: dict[str, tuple[str, ...]] = {
    "es": ("sí", "vale", "correcto", "de acuerdo", "eso es", "exacto", "claro"),
    "en": ("yes", "yeah", "yep", "correct", "right", "sure", "that's right"),
    "ca": ("sí", "correcte", "d'acord", "exacte"),
    "gl": ("si", "correcto", "vale"),
    "eu": ("bai", "ados"),
    "pt": ("sim", "certo", "correto", "isso"),
    "fr": ("oui", "d'accord", "exact", "c'est ça"),
    "it": ("sì", "certo", "esatto", "va bene"),
    "de": ("ja", "genau", "richtig"),
}
_NO: dict[str, tuple[str, ...]] = {
    "es": ("no", "no es correcto", "no es eso", "incorrecto", "no, gracias"),
    "en": ("no", "nope", "wrong", "not right", "that's not right", "no thanks", "incorrect"),
    "ca": ("no", "no és correcte", "incorrecte"),
    "gl": ("non", "non é correcto"),
    "eu": ("ez",),
    "pt": ("não", "errado", "não, obrigado"),
    "fr": ("non", "pas ça", "non merci"),
    "it": ("no", "sbagliato", "no grazie"),
    "de": ("nein", "falsch", "nein danke"),
}


def words(text: str) -> str:
    """Folded words separated by single spaces: "¿Facturación?" -> "facturacion"."""
    return " ".join(_NOT_WORD.sub(" ", fold(text)).split())


def says(said: str, phrase: str) -> bool:
    """Whether the folded words `said` are `phrase` or contain it as whole words."""
    return bool(phrase) and f" {phrase} " in f" {said} "


def best_match(text: str, candidates: Mapping[str, Sequence[str]]) -> str | None:
    """The key whose phrases match `text`, the longest matching phrase winning; None when nothing
    matches or two keys tie (an ambiguous answer is no answer)."""
    said = words(text)
    scores: dict[str, int] = {}
    for key, phrases in candidates.items():
        score = max((len(p.split()) for p in map(words, phrases) if says(said, p)), default=0)
        if score:
            scores[key] = score
    if not scores:
        return None
    top = max(scores.values())
    winners = [key for key, score in scores.items() if score == top]
    return winners[0] if len(winners) == 1 else None


def yes_no_phrases(language: str) -> dict[str, list[str]]:
    """{"yes": [...], "no": [...]} for `language`; both built-in languages' words for one we lack."""
    primary = language.split("-")[0]
    if primary in _YES:
        return {"yes": list(_YES[primary]), "no": list(_NO[primary])}
    return {"yes": [*_YES["es"], *_YES["en"]], "no": [*_NO["es"], *_NO["en"]]}


def yes_or_no(text: str, language: str) -> bool | None:
    answer = best_match(text, yes_no_phrases(language))
    return None if answer is None else answer == "yes"


def luhn_ok(digits: str) -> bool:
    """The Luhn check digit of card and many account numbers."""
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def date_ddmmyyyy_ok(digits: str) -> bool:
    """A real calendar date written DDMMYYYY, years 1900 to 2099 (31121980 yes, 31021980 no)."""
    if len(digits) != 8 or not digits.isascii() or not digits.isdigit():
        return False
    day, month, year = int(digits[:2]), int(digits[2:4]), int(digits[4:])
    if not 1900 <= year <= 2099:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True
