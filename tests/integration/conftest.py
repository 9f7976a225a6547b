import os
from pathlib import Path

import pytest
from served import free_port


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of a `centralita` process under test: a SQLite file of its own, and a free
    FastAGI port (serve runs FastAGI too, and must never collide on 4573)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CENTRALITA_")}
    return clean | {
        "CENTRALITA_DATABASE_URL": f"sqlite:///{tmp_path / 'cc.db'}",
        "CENTRALITA_LOG_LEVEL": "WARNING",
        "CENTRALITA_AGI_PORT": str(free_port()),
        "CENTRALITA_AUDIOSOCKET_PORT": "0",  # speech turns on a port of its own, likewise
    }
