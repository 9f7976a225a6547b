"""The pages in a real browser: one `centralita serve` on SQLite and one headless Chromium for the whole
session, a fresh browser context (no cookies) per test.

Chromium is Debian's (`apt-get install chromium`), driven by Playwright without its own browser download.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pages_site import Site
from served import free_port, http, run_cli, serving

CHROMIUM = os.environ.get("CENTRALITA_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("pages")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CENTRALITA_")}
    env = clean | {
        "CENTRALITA_DATABASE_URL": f"sqlite:///{home / 'cc.db'}",
        "CENTRALITA_LOG_LEVEL": "WARNING",
        "CENTRALITA_AGI_PORT": str(free_port()),
        "CENTRALITA_AUDIOSOCKET_PORT": str(free_port()),
    }
    created = run_cli("keys", "create", "--role", "admin", "--name", "pages admin", env=env, cwd=home)
    assert created.returncode == 0, created.stderr
    admin = created.stdout.strip().splitlines()[-1]
    with serving(env=env, cwd=home) as (_, base):
        manager = http("POST", f"{base}/api/v1/keys", admin, {"role": "manager", "name": "floor manager"})[1]
        agent = http("POST", f"{base}/api/v1/keys", admin, {"role": "agent", "name": "ana's desk"})[1]
        yield Site(base, admin, manager["key"], agent["key"])


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread while it
# is open, and every later test calling asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
        pytest.fail(f"the page tests need Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    """A new tab with no cookies; fails the test on any script error in the page."""
    context = browser.new_context(base_url=site.base, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, errors
