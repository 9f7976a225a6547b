"""One settings object, read from CENTRALITA_* environment variables and an optional .env file."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
    # Processes serving the API and FastAGI on the same ports (the kernel spreads connections).
    # Python runs one core per process: use one per core. Events reach subscribers in the process
    # that published them only, until the event bus runs on a broker.
    workers: int = Field(default=1, ge=1, le=64)

    # Region used to read phone numbers written without a country code ("600 111 222").
    default_region: str = "ES"
    # Requests with larger bodies are refused (413) before they are parsed.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Except contact-list uploads (CSV, streamed: a million rows is about 60 MB).
    max_import_bytes: int = Field(default=2 * 1024**3, ge=1024)
    # How long a verified API key is trusted without asking the database again. Revoking a key
    # through this process takes effect at once; through another node, within this many seconds.
    api_key_cache_seconds: float = Field(default=10.0, ge=0)
    log_level: str = "INFO"

    # FastAGI: Asterisk's AGI(agi://<host>:<port>/<flow>) connects here. `serve` runs it beside the API.
    agi_host: str = "127.0.0.1"
    agi_port: int = Field(default=4573, ge=0, le=65535)
    # Who may connect: addresses or networks, comma-separated ("127.0.0.1,::1,10.0.0.0/24").
    agi_allowed: Annotated[tuple[str, ...], NoDecode] = ("127.0.0.1", "::1")
    # Transfer targets without a technology (a plain number) are dialled as Local/<target>@<this context>.
    agi_transfer_context: str = Field(default="centralita-transfer", pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    # IVR flow files: this directory (default: the shipped ivr_flows/), then these ones (separated by
    # os.pathsep, ":" on Unix); a flow in a later directory replaces a same-named one before it.
    flows_dir: Path | None = None
    extra_flows_dirs: Annotated[tuple[Path, ...], NoDecode] = ()

    # Asterisk's REST interface (ARI) and manager interface (AMI). Unset: the service runs FastAGI only.
    # The end-to-end suite runs against the Asterisk these point at, and is skipped without them.
    asterisk_ari_url: str | None = None  # e.g. http://127.0.0.1:8088 (a trailing /ari is fine)
    asterisk_ari_user: str = "centralita"
    asterisk_ari_password: str = ""
    asterisk_ari_app: str = Field(default="centralita", pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    asterisk_ami_host: str | None = None
    asterisk_ami_port: int = Field(default=5038, ge=1, le=65535)
    asterisk_ami_user: str = "centralita"
    asterisk_ami_password: str = ""

    # The dialer: which network places campaign calls. "off": campaigns can be set up but nothing is
    # dialed; "ari": real calls through Asterisk (needs the ARI settings above); "simulated": callees
    # drawn at random (answers, busies, machines), for demonstrations and tests, never for real
    # customers: the calls land on their timelines. One process dials (worker 0 with --workers).
    dialer_network: Literal["off", "simulated", "ari"] = "off"
    # Where a campaign's calls go out: {number} is the E.164 number, {digits} the same without "+".
    dialer_endpoint: str = "PJSIP/{number}@trunk"
    dialer_agent_ring_seconds: int = Field(default=15, ge=1, le=120)
    # The simulated network's clock: 60 runs an 8-hour shift in 8 minutes.
    dialer_simulation_speed: float = Field(default=1.0, gt=0, le=10_000)

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

    @field_validator("agi_allowed", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        items = value.split(",") if isinstance(value, str) else value
        peers = tuple(str(item).strip() for item in items if str(item).strip())
        for peer in peers:
            try:
                ipaddress.ip_network(peer, strict=False)
            except ValueError:
                raise ValueError(
                    f"{peer!r} is not an IP address or network (e.g. 10.0.0.5, 10.0.0.0/24)"
                ) from None
        return peers

    @field_validator("extra_flows_dirs", mode="before")
    @classmethod
    def _directories(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in value.split(os.pathsep) if part.strip())
        return value
