"""The end-to-end suite: real calls through a real Asterisk running the configuration that
`centralita asterisk config` renders (asterisk/README.md says how to set one up).

It runs when CENTRALITA_ASTERISK_ARI_URL (and, for the AMI tests, CENTRALITA_ASTERISK_AMI_HOST) name an
Asterisk, with the ARI and AMI users and passwords that configuration was rendered with; otherwise every
test here is skipped, saying so. Asterisk must reach this machine's FastAGI server at
CENTRALITA_AGI_HOST (127.0.0.1 when that is a wildcard): each call tells the dialplan which port
(the channel variable CENTRALITA_AGI), so the suite serves on a free one. Tests that read Asterisk's
files need CENTRALITA_ASTERISK_RECORDINGS_DIR (call recordings) or CENTRALITA_PROMPTS_DIR (Asterisk's
sounds directory: the speech tests' caller words) as this machine sees them, and are skipped without.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings

# The helpers that run the real `centralita` command (tests/integration/served.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

NO_ASTERISK = "CENTRALITA_ASTERISK_ARI_URL is not set: no real Asterisk to test against"
NO_AMI = "CENTRALITA_ASTERISK_AMI_HOST is not set: no Asterisk manager interface to test against"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test of this directory is an e2e test, skipped with the reason when there is no Asterisk."""
    here = Path(__file__).resolve().parent
    settings = Settings()
    for item in items:
        if here not in Path(str(item.path)).resolve().parents:
            continue
        item.add_marker(pytest.mark.e2e)
        if settings.asterisk_ari_url is None:
            item.add_marker(pytest.mark.skip(reason=NO_ASTERISK))


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture
def ami_settings(settings: Settings) -> Settings:
    """The settings, for a test that needs AMI too."""
    if settings.asterisk_ami_host is None:
        pytest.skip(NO_AMI)
    return settings


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a `centralita` process under test: its own SQLite file and a free FastAGI
    port; the Asterisk settings as given."""
    from served import free_port

    clean = {k: v for k, v in os.environ.items() if not k.startswith("CENTRALITA_")}
    asterisk = {k: v for k, v in os.environ.items() if k.startswith("CENTRALITA_ASTERISK_")}
    yield (
        clean
        | asterisk
        | {
            "CENTRALITA_DATABASE_URL": f"sqlite:///{tmp_path / 'cc.db'}",
            "CENTRALITA_LOG_LEVEL": "INFO",
            "CENTRALITA_AGI_HOST": os.environ.get("CENTRALITA_AGI_HOST", "127.0.0.1"),
            "CENTRALITA_AGI_PORT": str(free_port()),
            "CENTRALITA_AGI_ALLOWED": os.environ.get("CENTRALITA_AGI_ALLOWED", "127.0.0.1,::1"),
        }
    )
