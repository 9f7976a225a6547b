import pytest
from pydantic import ValidationError

from core.settings import Settings


def test_defaults_run_on_sqlite_with_no_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CENTRALITA_DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url.startswith("sqlite:///")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_settings_come_from_centralita_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTRALITA_DATABASE_URL", "postgresql://u@db:5432/cc")
    monkeypatch.setenv("CENTRALITA_DEFAULT_REGION", "mx")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "postgresql+psycopg://u@db:5432/cc"
    assert settings.default_region == "MX"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("default_region", "XX", "unknown region"),
        ("database_url", "mysql://x/y", "sqlite:/// or postgresql://"),
        ("port", 0, "greater than or equal to 1"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, **{field: value})  # type: ignore[call-arg]
