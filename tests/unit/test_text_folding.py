import pytest

from core.text_folding import fold


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Facturación", "facturacion"),
        ("  Ana   PÉREZ ", "ana perez"),
        ("Núñez", "nunez"),
        ("Straße", "strasse"),
    ],
)
def test_fold_ignores_case_accents_and_spacing(text: str, folded: str) -> None:
    assert fold(text) == folded
