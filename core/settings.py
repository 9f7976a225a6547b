"""One settings object, read from CENTRALITA_* environment variables and an optional .env file."""

from __future__ import annotations

import phonenumbers
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CENTRALITA_", env_file=".env", extra="ignore")

    # SQLite by default so the service runs with zero set-up; PostgreSQL in production, e.g.
    # postgresql+psycopg://centralita@127.0.0.1:5432/centralita
    database_url: str = "sqlite:///centralita.db"
    # Runs migrations when the service starts. Turn off where several nodes share one database and
    # `centralita db upgrade` is a deploy step instead.
    auto_migrate: bool = True

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # Region used to read phone numbers written without a country code ("600 111 222").
    default_region: str = "ES"
    # Requests with larger bodies are refused (413) before they are parsed.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # How long a verified API key is trusted without asking the database again. Revoking a key
    # through this process takes effect at once; through another node, within this many seconds.
    api_key_cache_seconds: float = Field(default=10.0, ge=0)
    log_level: str = "INFO"

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        region = value.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r}; use an ISO 3166 code such as ES, MX or US")
        return region

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # The psycopg 3 driver is the one installed; name it so a plain libpq URL just works.
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        if not (value.startswith("sqlite") or value.startswith("postgresql+psycopg")):
            raise ValueError("database_url must be a sqlite:/// or postgresql:// URL")
        return value
