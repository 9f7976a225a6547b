from datetime import UTC, datetime

import pytest

from core.errors import InvalidInput
from core.timeline.service import decode_cursor, encode_cursor


def test_a_cursor_carries_the_position_of_the_last_item() -> None:
    when = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    cursor = encode_cursor(when, 42)
    assert decode_cursor(cursor) == (when, 42)


@pytest.mark.parametrize("garbage", ["", "abc", "W10", "WyIyMDI2LTExLTI0VDA5OjMwOjAwIiwgNDJd", "%%%"])
def test_a_cursor_the_api_did_not_make_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidInput, match="cursor"):
        decode_cursor(garbage)
