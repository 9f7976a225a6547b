"""The HTML the service serves itself (api/pages/*.html): read once, filled in one pass with escaping.

Used by the staff pages (`api.routers.pages`) and the customers' continuation page
(`api.continuation_page`). No template engine: the pages are shells whose data the browser fetches,
so `{{name}}` slots are all they need.
"""

from __future__ import annotations

import html
import re
from functools import cache
from pathlib import Path

PAGES_DIR = Path(__file__).resolve().parent / "pages"
_SLOT = re.compile(r"\{\{(\w+)\}\}")


@cache
def page_template(name: str) -> str:
    return (PAGES_DIR / name).read_text(encoding="utf-8")


def fill(template: str, values: dict[str, str]) -> str:
    """Replaces each `{{name}}` with its value, escaped unless the name starts with `raw_`. One pass:
    a value that happens to contain `{{...}}` stays as it is."""

    def value(slot: re.Match[str]) -> str:
        name = slot.group(1)
        return values[name] if name.startswith("raw_") else html.escape(values[name])

    return _SLOT.sub(value, template)
