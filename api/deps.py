"""Request-scoped dependencies: the unit of work, the caller's identity and what they may do."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import anyio
from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from core.auth.roles import Permission, allows
from core.auth.service import KeyVerifier, Principal
from core.db import unit_of_work
from core.settings import Settings

T = TypeVar("T")


def _state(request: Request) -> Any:
    return request.app.state


def write_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response leaves (scope="function")."""
    with unit_of_work(_state(request).session_factory) as db:
        yield db


def read_session(request: Request) -> Iterator[Session]:
    with _state(request).read_session_factory() as db:
        yield db


async def get_settings(request: Request) -> Settings:  # async: a sync dependency costs a thread hop
    settings: Settings = _state(request).settings
    return settings


async def in_read_session(request: Request, work: Callable[[Session], T]) -> T:
    """Runs `work` with a read session in one worker-thread hop: the path of the hot reads, whose
    sync dependencies and sync route would otherwise cost four or five hops a request.

    Few threads at a time: they only overlap database waits, and more of them just fight over the
    GIL (16 concurrent screen pops cost half as much CPU again each in 16 threads as in one).
    """
    state = _state(request)
    factory = state.read_session_factory

    def run() -> T:
        with factory() as db:
            return work(db)

    return await anyio.to_thread.run_sync(run, limiter=state.read_limiter)


def get_verifier(request: Request) -> KeyVerifier:
    verifier: KeyVerifier = _state(request).key_verifier
    return verifier


WriteDB = Annotated[Session, Depends(write_session, scope="function")]
ReadDB = Annotated[Session, Depends(read_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


# The pages' session (api/routers/pages.py): the API key itself, in an HttpOnly, SameSite=Strict cookie,
# because a browser's EventSource cannot send an Authorization header.
SESSION_COOKIE = "centralita_session"
# The cookie counts on reads, and on a write only from a script on this service's own page (the agent's
# desk): a credential the browser attaches by itself is what a cross-site request forgery needs. Three
# walls: the browser sends no SameSite=Strict cookie from another site; a script's POST carries its
# Origin, which must be this service; and a JSON body is more than another site's form can send (a
# script elsewhere would need CORS, which this service never grants).
_COOKIE_METHODS = frozenset({"GET", "HEAD"})


def same_origin(request: Request) -> bool:
    """The request names no other site as its origin (None: no Origin header, as a plain navigation)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _from_own_page(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return "origin" in request.headers and same_origin(request) and content_type == "application/json"


def presented_key(request: Request) -> str | None:
    """The API key a request carries: its bearer token or, without one, the pages' cookie on a read or
    on a write from this service's own page."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        return key.strip() if scheme.lower() == "bearer" and key.strip() else None
    if request.method in _COOKIE_METHODS or _from_own_page(request):
        return request.cookies.get(SESSION_COOKIE) or None
    return None


async def authenticate(request: Request) -> Principal:
    key = presented_key(request)
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send an API key as 'Authorization: Bearer <key>' (make one with `centralita keys create`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    verifier = get_verifier(request)
    principal = verifier.cached(key) or await run_in_threadpool(verifier.verify, key)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Principal]]:
    # One dependency, not two (authenticate + check): FastAPI resolves each one's parameters on
    # every request, which is a good part of a screen pop's cost.
    async def check(request: Request) -> Principal:
        principal = await authenticate(request)
        if not allows(principal.role, permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {principal.role.value} may not do this (needs {permission.value})",
            )
        return principal

    return check


# The authenticated caller, checked for one permission: declare one of these on every route.
ReadCustomers = Annotated[Principal, Depends(require(Permission.CUSTOMERS_READ))]
WriteCustomers = Annotated[Principal, Depends(require(Permission.CUSTOMERS_WRITE))]
MergeCustomers = Annotated[Principal, Depends(require(Permission.CUSTOMERS_MERGE))]
ReadTimeline = Annotated[Principal, Depends(require(Permission.TIMELINE_READ))]
WriteInteractions = Annotated[Principal, Depends(require(Permission.INTERACTIONS_WRITE))]
WriteCases = Annotated[Principal, Depends(require(Permission.CASES_WRITE))]
PrivacyOfficer = Annotated[Principal, Depends(require(Permission.PRIVACY))]
ReadAudit = Annotated[Principal, Depends(require(Permission.AUDIT_READ))]
ManageKeys = Annotated[Principal, Depends(require(Permission.KEYS_MANAGE))]
ReadCampaigns = Annotated[Principal, Depends(require(Permission.CAMPAIGNS_READ))]
ManageCampaigns = Annotated[Principal, Depends(require(Permission.CAMPAIGNS_MANAGE))]
WriteDoNotCall = Annotated[Principal, Depends(require(Permission.DO_NOT_CALL_WRITE))]
