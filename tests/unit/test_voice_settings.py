"""The FastAGI and IVR flow settings: defaults, lists from one environment variable, refusals by name."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings
from voice.flows import flow_directories, shipped_flows_dir


def test_the_fastagi_server_listens_on_loopback_port_4573_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGI_HOST", "AGI_PORT", "AGI_ALLOWED", "FLOWS_DIR", "EXTRA_FLOWS_DIRS"):
        monkeypatch.delenv(f"CENTRALITA_{name}", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.agi_host, settings.agi_port, settings.agi_allowed) == (
        "127.0.0.1",
        4573,
        ("127.0.0.1", "::1"),
    )
    assert settings.flows_dir is None and settings.extra_flows_dirs == ()
    shipped = shipped_flows_dir()
    assert shipped is not None and (shipped / "banco_es.yaml").is_file()
    assert flow_directories(None) == [shipped]


def test_lists_come_from_one_variable_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTRALITA_AGI_ALLOWED", "10.0.0.5, 10.1.0.0/16,::1")
    monkeypatch.setenv("CENTRALITA_FLOWS_DIR", "/etc/centralita/flows")
    monkeypatch.setenv("CENTRALITA_EXTRA_FLOWS_DIRS", "/srv/a:/srv/b")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.agi_allowed == ("10.0.0.5", "10.1.0.0/16", "::1")
    assert flow_directories(settings.flows_dir, settings.extra_flows_dirs) == [
        Path("/etc/centralita/flows"),
        Path("/srv/a"),
        Path("/srv/b"),
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("agi_allowed", "10.0.0.5,asterisk.local", "'asterisk.local' is not an IP address or network"),
        ("agi_port", 70000, "less than or equal to 65535"),
        ("agi_transfer_context", "bad context", "should match pattern"),
    ],
)
def test_bad_fastagi_settings_are_refused_with_the_reason(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, **{field: value})  # type: ignore[call-arg]
