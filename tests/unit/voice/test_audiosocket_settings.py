"""AudioSocket settings: where the server listens, who may connect, and what Asterisk is told."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import Settings


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name in ("HOST", "PORT", "ALLOWED_PEERS", "ADVERTISED_ADDRESS"):
        monkeypatch.delenv(f"CENTRALITA_AUDIOSOCKET_{name}", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(f"CENTRALITA_AUDIOSOCKET_{name.upper()}", value)
    return Settings(_env_file=None)


def test_by_default_asterisk_on_this_host_connects_to_port_9092(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = settings(monkeypatch)
    assert (defaults.audiosocket_host, defaults.audiosocket_port) == ("127.0.0.1", 9092)
    assert defaults.audiosocket_allowed_peers == ("127.0.0.1", "::1")
    assert defaults.audiosocket_advertised_address == "127.0.0.1:9092"


@pytest.mark.parametrize(
    ("host", "port", "advertised"),
    [
        ("0.0.0.0", "9100", "127.0.0.1:9100"),
        ("::", "9100", "[::1]:9100"),
        ("10.0.0.7", "9093", "10.0.0.7:9093"),
    ],
)
def test_the_advertised_address_follows_host_and_port(
    monkeypatch: pytest.MonkeyPatch, host: str, port: str, advertised: str
) -> None:
    assert settings(monkeypatch, host=host, port=port).audiosocket_advertised_address == advertised


def test_peers_and_the_advertised_address_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    configured = settings(
        monkeypatch, allowed_peers="10.0.0.0/24, 192.168.1.5", advertised_address="media.example:9200"
    )
    assert configured.audiosocket_allowed_peers == ("10.0.0.0/24", "192.168.1.5")
    assert configured.audiosocket_advertised_address == "media.example:9200"
    assert settings(monkeypatch, advertised_address="[fd00::5]:9092").audiosocket_advertised_address == (
        "[fd00::5]:9092"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"allowed_peers": "asterisk.local"}, "not an IP address or network"),
        ({"advertised_address": "media.example"}, "host:port"),
        ({"advertised_address": "fd00::5:9092"}, r"\[IPv6\]:port"),
        ({"advertised_address": "media.example:0"}, "port from 1 to 65535"),
        ({"port": "70000"}, "less than or equal to 65535"),
    ],
)
def test_bad_audiosocket_settings_are_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(monkeypatch, **env)
