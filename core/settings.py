"""One settings object, read from CENTRALITA_* environment variables and an optional .env file."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import phonenumbers
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
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
    # AudioSocket: the caller's audio for speech turns; Asterisk's AudioSocket(<uuid>,<address>) connects
    # to the advertised address ("host:port", "[v6]:port"; default: host and port, 127.0.0.1 for an
    # any-address host). One port per process: a worker only knows the calls it runs itself.
    audiosocket_host: str = "127.0.0.1"
    audiosocket_port: int = Field(default=9092, ge=0, le=65535)
    audiosocket_allowed_peers: Annotated[tuple[str, ...], NoDecode] = ("127.0.0.1", "::1")
    audiosocket_advertised_address: str = Field(default="", validate_default=True)
    # False: no AudioSocket server (an Asterisk that cannot run AudioSocket() or reach this host); speech
    # turns are then recorded by Asterisk (RECORD FILE) when `asterisk_recordings_dir` is set, else keys only.
    audiosocket_enabled: bool = True
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

    # Speech recognition (voice/speech/engines.py): "auto" runs vosk for each language with a model
    # path below and pocketsphinx (shipped English model) for English otherwise; "off": keys only.
    speech_engine: Literal["auto", "pocketsphinx", "vosk", "off"] = "auto"
    # vosk model directories (`centralita models download es en` fetches the small ones).
    vosk_model_es: Path | None = None
    vosk_model_en: Path | None = None
    # Worker processes decoding speech, each with its own copy of the models.
    speech_workers: int = Field(default=1, ge=1, le=64)
    # Where `centralita prompts build --out` wrote the prompts (Asterisk's sounds directory, if this
    # machine sees it): speech turns stream prompts over AudioSocket themselves and read them from
    # here; unset or missing a file, they are rendered with espeak-ng (and cached in memory).
    prompts_dir: Path | None = None
    # Files Asterisk records — call recordings (MixMonitor), voicemail, speech turns recorded without
    # AudioSocket — go to `asterisk_recordings_path` as Asterisk sees it, and Centralita reads them at
    # `asterisk_recordings_dir` (the same directory, mounted here: a shared volume). Unset: Centralita
    # cannot read them (no recording downloads, no voicemail transcription, no recorded speech turns).
    asterisk_recordings_dir: Path | None = None
    asterisk_recordings_path: str = "/var/spool/asterisk/centralita"
    # Call recordings (routing/recording_*.py) older than this many days are deleted by the retention
    # job (`serve`, once a day; `centralita recordings purge`); 0 keeps them for ever.
    recording_retention_days: int = Field(default=90, ge=0, le=36_500)
    # Inbound routing (routing/): every screen pop is also POSTed as JSON to this URL (an external
    # CRM), off the call's path, retried a few times with back-off; unset: no webhook.
    screen_pop_webhook_url: str | None = Field(default=None, pattern=r"^https?://")
    agent_ring_seconds: int = Field(default=15, ge=1, le=120)  # how long an offered call rings the agent
    # Callbacks (routing/callbacks.py): the queue of a request that names none; the callee-local hours
    # they are made in ("09:00-21:00", or "09:00-14:00,16:00-20:00"), every day; attempts, the first
    # retry's wait (doubling, at most an hour); the ring time; the number the customer sees.
    callback_default_queue: str = Field(default="general", min_length=1, max_length=64)
    callback_hours: str = Field(
        default="09:00-21:00", pattern=r"^\d\d:\d\d-\d\d:\d\d(,\d\d:\d\d-\d\d:\d\d)*$"
    )
    callback_max_attempts: int = Field(default=3, ge=1, le=10)
    callback_retry_seconds: int = Field(default=300, ge=10, le=86_400)
    callback_ring_seconds: int = Field(default=25, ge=15, le=120)
    callback_caller_id: str = ""

    # Digital channels (messaging/). The address the outside world reaches this service at, e.g.
    # https://cc.example.com (behind a proxy: the proxy's address). Twilio signs the URL it called,
    # so webhook signatures are checked against this plus the path; status callbacks and the links
    # the IVR texts point here too.
    public_url: str | None = None
    # Twilio (SMS and WhatsApp). The REST API's base URL is a setting so tests can point the SDK
    # at a local server; production leaves it alone.
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    # Senders: an E.164 number, an alphanumeric sender id, or a Messaging Service SID (MG...).
    twilio_sms_from: str | None = None
    twilio_whatsapp_from: str | None = None  # "+14155238886" or "whatsapp:+14155238886"
    # Signs the tokens in the links the IVR texts (send_link): without it send_link takes its
    # on_failure path. At least 32 characters; rotating it invalidates links already sent.
    link_secret: SecretStr | None = None
    # Email over SMTP. Unset host: no email is sent (inbound email works without it).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True  # refuse to send unless the server upgrades to TLS
    smtp_from: str | None = None  # "Soporte <soporte@example.com>" or a bare address
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, le=300)

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

    @field_validator("agi_allowed", "audiosocket_allowed_peers", mode="before")
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

    @field_validator("audiosocket_advertised_address")
    @classmethod
    def _audiosocket_address(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if not value:  # port 0 stays 0 here: the server's bound port must then be advertised
            host = str(info.data.get("audiosocket_host", ""))
            host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
            port = info.data.get("audiosocket_port")
            return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        host, _, number = value.rpartition(":")
        bare_ipv6 = ":" in host and not (host.startswith("[") and host.endswith("]"))
        if not host or bare_ipv6 or not number.isdigit() or not 1 <= int(number) <= 65535:
            raise ValueError(f"{value!r} must be host:port or [IPv6]:port, with a port from 1 to 65535")
        return value

    @field_validator("extra_flows_dirs", mode="before")
    @classmethod
    def _directories(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part for part in value.split(os.pathsep) if part.strip())
        return value

    @field_validator("public_url", "twilio_api_base_url")
    @classmethod
    def _base_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (value is None or not value.strip()) and info.field_name == "public_url":
            return None
        value = value or ""
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.query or parsed.fragment:
            raise ValueError(
                f"{value!r} must be an http(s) URL with a host and no query, e.g. https://cc.example.com"
            )
        return value.strip().rstrip("/")

    @field_validator("twilio_whatsapp_from")
    @classmethod
    def _whatsapp_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        number = value.strip().removeprefix("whatsapp:")
        if not number.startswith("+") or not number[1:].isdigit():
            raise ValueError(f"{value!r} must be a WhatsApp sender in E.164, e.g. whatsapp:+14155238886")
        return f"whatsapp:{number}"

    @model_validator(mode="after")
    def _digital_channels(self) -> Settings:
        """Refuses combinations that would fail only when the first message arrives or leaves."""
        twilio = (self.twilio_account_sid, self.twilio_auth_token)
        if any(twilio) and not all(twilio):
            raise ValueError("set both CENTRALITA_TWILIO_ACCOUNT_SID and _AUTH_TOKEN, or neither")
        if (self.twilio_sms_from or self.twilio_whatsapp_from) and not all(twilio):
            raise ValueError("a Twilio sender (CENTRALITA_TWILIO_SMS_FROM, _WHATSAPP_FROM) needs the account")
        if all(twilio) and self.public_url is None:
            raise ValueError(
                "Twilio needs CENTRALITA_PUBLIC_URL: webhook signatures are checked against the URL "
                "Twilio called, and delivery statuses are sent there"
            )
        if self.link_secret is not None and len(self.link_secret.get_secret_value()) < 32:
            raise ValueError("CENTRALITA_LINK_SECRET must have at least 32 characters")
        if self.smtp_host and not self.smtp_from:
            raise ValueError("CENTRALITA_SMTP_HOST needs CENTRALITA_SMTP_FROM, the address mail is sent from")
        if (self.smtp_user is None) != (self.smtp_password is None):
            raise ValueError("set both CENTRALITA_SMTP_USER and CENTRALITA_SMTP_PASSWORD, or neither")
        return self
