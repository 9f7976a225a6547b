"""Call recording, the pure part: the policies, the recordings' file names, and when one has expired.

A queue (`queues.recording`) and a campaign (`CampaignSettings.recording`) each say one of:

    always      every conversation with an agent is recorded; the caller hears the notice first
    on_demand   the agent may start a recording during the call; the caller hears the notice first
    never       nothing is recorded and nothing is announced

A recording's file is named by the day it started (UTC), the call and a number per call:

    <yyyy>/<mm>/<dd>/<call id>-<n>.wav       e.g. 2026/05/04/1714812345.12-1.wav

relative to the recordings directory. Asterisk writes it under its own view of that directory
(`CENTRALITA_ASTERISK_RECORDINGS_PATH`) and Centralita reads it under its own
(`CENTRALITA_ASTERISK_RECORDINGS_DIR`). The relative name is what the timeline keeps; a name that does
not have exactly this shape is never turned into a path (`resolve` refuses it), so a touchpoint written
by hand cannot make the API serve, or the retention job delete, a file outside that directory.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Literal, get_args

Policy = Literal["always", "on_demand", "never"]
POLICIES: tuple[Policy, ...] = get_args(Policy)

# Where ARI's bridge and channel recordings go: Asterisk's recording directory (astspooldir/recording).
# ARI takes names relative to it and refuses to leave it.
ARI_RECORDING_DIR = "/var/spool/asterisk/recording"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_NAME = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})-(\d{1,4})\.wav$")
MAX_NUMBER = 9999


class UnsafeRecordingName(ValueError):
    """A recording name that is not one Centralita makes: never a path."""


def announces(policy: str) -> bool:
    """Whether the caller must hear the recording notice: whenever the call may be recorded."""
    return policy in ("always", "on_demand")


def records_from_start(policy: str) -> bool:
    """Whether the conversation is recorded from the moment the agent answers."""
    return policy == "always"


def call_part(call_id: str) -> str:
    """The call id as it goes into a file name: only letters, digits, `_`, `.`, `-`; never dots first."""
    safe = _UNSAFE.sub("_", call_id).lstrip(".-")[:128]
    return safe or "call"


def recording_name(call_id: str, number: int, started_at: datetime) -> str:
    """The relative name of a call's `number`th recording, dated by `started_at` (aware; UTC day)."""
    if started_at.tzinfo is None:
        raise ValueError("started_at must carry a time zone")
    if not 1 <= number <= MAX_NUMBER:
        raise ValueError(f"a call's recordings are numbered 1 to {MAX_NUMBER}, not {number}")
    day = started_at.astimezone(UTC)
    return f"{day:%Y/%m/%d}/{call_part(call_id)}-{number}.wav"


def is_recording_name(name: object) -> bool:
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def resolve(root: Path, name: object) -> Path:
    """The file of recording `name` under `root`. Raises UnsafeRecordingName for anything that is not
    a name `recording_name` makes, or that would leave `root` once links are followed."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise UnsafeRecordingName(f"{name!r} is not a recording name (yyyy/mm/dd/<call>-<n>.wav)")
    base = root.resolve()
    path = (base / PurePosixPath(name)).resolve()
    if not path.is_relative_to(base):
        raise UnsafeRecordingName(f"{name!r} leads outside the recordings directory")
    return path


def asterisk_file(asterisk_path: str, name: str, *, extension: bool = True) -> str:
    """The file as Asterisk names it (MixMonitor's file argument): its directory plus the name."""
    if not is_recording_name(name):
        raise UnsafeRecordingName(f"{name!r} is not a recording name")
    full = f"{asterisk_path.rstrip('/')}/{name}"
    return full if extension else full.removesuffix(".wav")


def ari_name(asterisk_path: str, name: str) -> str | None:
    """The name ARI records `name` under (relative to Asterisk's recording directory, no extension),
    so that it lands in `asterisk_path`; None when `asterisk_path` is not inside that directory (ARI
    cannot write there)."""
    if not is_recording_name(name):
        raise UnsafeRecordingName(f"{name!r} is not a recording name")
    base = PurePosixPath(ARI_RECORDING_DIR)
    path = PurePosixPath(asterisk_path.rstrip("/") or "/")
    if path != base and base not in path.parents:
        return None
    prefix = path.relative_to(base)
    return str(prefix / name.removesuffix(".wav")) if str(prefix) != "." else name.removesuffix(".wav")


def retention_cutoff(now: datetime, days: int) -> datetime | None:
    """Recordings started before this have expired; None when they are kept for ever (0 days)."""
    if days < 0:
        raise ValueError("retention days cannot be negative")
    return None if days == 0 else now - timedelta(days=days)


def expired(started_at: datetime, now: datetime, days: int) -> bool:
    cutoff = retention_cutoff(now, days)
    return cutoff is not None and started_at < cutoff
