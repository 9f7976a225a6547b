from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.auth.models import ApiKey
from core.auth.roles import Role
from core.db import utcnow
from core.errors import InvalidInput, NotFound

KEY_PREFIX = "cnt_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(*, db: Session, role: Role, name: str) -> tuple[ApiKey, str]:
    """Makes a key; the plain key is returned this once and never stored."""
    if not name.strip():
        raise InvalidInput("a key needs a name saying who or what uses it")
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name.strip(), role=role.value, key_hash=hash_key(plain), prefix=plain[:12])
    db.add(key)
    db.flush()
    return key, plain


def list_keys(*, db: Session) -> list[ApiKey]:
    return list(db.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(*, db: Session, key_id: int) -> ApiKey:
    key = db.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.flush()
    return key


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    name: str
    role: Role


class KeyVerifier:
    """Checks bearer keys against the database, remembering good ones for a few seconds.

    Unknown keys are not remembered, so a freshly created key works at once; `forget` drops a
    revoked key from this process's memory straight away.
    """

    def __init__(
        self, factory: sessionmaker[Session], ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._factory = factory
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[Principal, float]] = {}

    def cached(self, plain: str) -> Principal | None:
        """The key's principal if it was verified within the last ttl seconds; never asks the database."""
        return self._cached(hash_key(plain))

    def _cached(self, digest: str) -> Principal | None:
        entry = self._known.get(digest)
        if entry is not None and entry[1] > self._clock():
            return entry[0]
        return None

    def verify(self, plain: str) -> Principal | None:
        digest = hash_key(plain)
        known = self._cached(digest)
        if known is not None:
            return known
        now = self._clock()
        with self._factory() as db:
            key = db.scalars(
                select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
            ).first()
        if key is None:
            with self._lock:
                self._known.pop(digest, None)
            return None
        principal = Principal(key_id=key.id, name=key.name, role=Role(key.role))
        with self._lock:
            self._known[digest] = (principal, now + self._ttl)
        return principal

    def forget(self, key_id: int) -> None:
        with self._lock:
            self._known = {d: entry for d, entry in self._known.items() if entry[0].key_id != key_id}
