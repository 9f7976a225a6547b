"""The contact-list writer's pure parts: the customer's search name, folded word by word."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.text_folding import fold
from dialer.contact_lists import _name_search

# Letters that fold in every way: accents, case folding that grows (ß), ligatures and fullwidth
# digits, a diaeresis that decomposes to a space, combining marks with nothing before them.
_LETTERS = "aAbZ ñÑéÉüÜçÇßẞﬁ¨Σσςİıŉǅ\u0301\u00a0\u2002…ﬀ１٣"


@given(st.text(alphabet=_LETTERS, max_size=16) | st.text(max_size=16))
def test_the_search_name_is_the_whole_name_folded(raw: str) -> None:
    name = " ".join(raw.split())  # as the parser leaves a name
    if name:
        assert _name_search(name) == fold(name)


def test_a_search_name_ignores_case_and_accents() -> None:
    assert _name_search("María José NÚÑEZ 12") == "maria jose nunez 12"
