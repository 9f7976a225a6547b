"""The pages people look at, served by the service itself: the wallboard, the journey map, a customer's
page and an agent's desk, and the sign-in that lets a browser use them.

Each page is a small HTML shell (api/pages/) around the data it fetches from the API in the browser
(api/static/pages/*.js), so what a person sees is exactly what the API answers; charts are drawn by a
vendored build of Apache ECharts (api/static/vendor/echarts/). Nothing comes from the internet.

Signing in: a browser's EventSource cannot send an Authorization header, so the sign-in form takes an API
key and keeps it in an HttpOnly, SameSite=Strict cookie (api/deps.py reads it on GET and HEAD requests
only). The key itself, rather than a session token signed by the service, because it needs no secret
shared between the service's worker processes, and a revoked key stops working in the browser as soon as
it does anywhere else. The key travels only in the form's body and the cookie: never in a URL, a page, or
a log line. Pages without a valid key redirect to the sign-in form; a key whose role may not see a page
gets a 403 page naming the permission it lacks.

The desk is the one page that changes things (the agent's state, preview calls, dispositions): it posts
JSON to the API from its own script, the one kind of write the cookie counts for (api/deps.py says why
that is safe).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session

from api.deps import SESSION_COOKIE, authenticate, get_verifier, in_read_session, same_origin
from api.page_templates import fill, page_template
from core.auth.roles import Permission, allows
from core.auth.service import Principal
from core.errors import NotFound
from routing import service as routing_service
from routing.models import Agent

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
SESSION_SECONDS = 12 * 3600  # a shift: the browser forgets the key after it
_MAX_FORM_BYTES = 4096
# Pages may load only what the service serves: no CDN, no inline script. ECharts' SVG sets style
# attributes, hence 'unsafe-inline' for styles alone.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Adds the pages and their static files (scripts, styles, the vendored chart library)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


# --- rendering ------------------------------------------------------------------------------------------


def _page(
    *,
    title: str,
    body: str,
    principal: Principal | None,
    scripts: Iterable[str] = (),
    data: dict[str, str] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    who = (
        fill(page_template("signed_in.html"), {"name": principal.name, "role": principal.role.value})
        if principal is not None
        else ""
    )
    attributes = "".join(
        f' data-{html.escape(name)}="{html.escape(value)}"' for name, value in (data or {}).items()
    )
    tags = "".join(f'<script src="{html.escape(src)}" defer></script>' for src in scripts)
    document = fill(
        page_template("layout.html"),
        {"title": title, "raw_who": who, "raw_body": body, "raw_scripts": tags, "raw_data": attributes},
    )
    return HTMLResponse(document, status_code=status_code, headers=_HEADERS | (headers or {}))


_CHARTS = "/static/vendor/echarts/echarts.min.js"
_COMMON = "/static/pages/common.js"
_TIMELINE = "/static/pages/timeline.js"  # a customer's timeline, drawn alike on every page that shows one


async def _viewer(request: Request, needs: tuple[Permission, ...], what: str) -> Principal | Response:
    """The signed-in principal, or the answer to send instead: the sign-in form, or a 403 page."""
    try:
        principal = await authenticate(request)
    except HTTPException:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?next={quote(target, safe='/')}", status.HTTP_303_SEE_OTHER)
    missing = [p.value for p in needs if not allows(principal.role, p)]
    if missing:
        body = fill(
            page_template("forbidden.html"),
            {"what": what, "role": principal.role.value, "permissions": ", ".join(missing)},
        )
        return _page(title="Not allowed", body=body, principal=principal, status_code=403)
    return principal


# --- the pages ------------------------------------------------------------------------------------------


@router.get("/", response_model=None)
async def home() -> Response:
    return RedirectResponse("/wallboard", status.HTTP_303_SEE_OTHER)


@router.get("/wallboard", response_model=None)
async def wallboard(request: Request) -> Response:
    """Queues, agents by state and campaigns, live from /api/v1/stats/stream."""
    viewer = await _viewer(request, (Permission.REPORTS_READ,), "the wallboard")
    if isinstance(viewer, Response):
        return viewer
    return _page(
        title="Wallboard",
        body=page_template("wallboard.html"),
        principal=viewer,
        scripts=(_CHARTS, _COMMON, "/static/pages/wallboard.js"),
        data={"page": "wallboard"},
    )


@router.get("/journey-map", response_model=None)
async def journey_map(request: Request) -> Response:
    """A Sankey diagram of /api/v1/reports/journeys, with its filters."""
    viewer = await _viewer(request, (Permission.REPORTS_READ,), "the journey map")
    if isinstance(viewer, Response):
        return viewer
    return _page(
        title="Journey map",
        body=page_template("journey_map.html"),
        principal=viewer,
        scripts=(_CHARTS, _COMMON, "/static/pages/journey_map.js"),
        data={"page": "journey-map"},
    )


@router.get("/customers/{customer_id}", response_model=None)
async def customer(request: Request, customer_id: Annotated[int, PathParam(ge=1)]) -> Response:
    """The customer's timeline across channels, with cases, IVR steps and messages."""
    needs = (Permission.CUSTOMERS_READ, Permission.TIMELINE_READ)
    viewer = await _viewer(request, needs, "customers' timelines")
    if isinstance(viewer, Response):
        return viewer
    return _page(
        title=f"Customer {customer_id}",
        body=page_template("customer.html"),
        principal=viewer,
        scripts=(_COMMON, _TIMELINE, "/static/pages/customer.js"),
        data={"page": "customer", "customer-id": str(customer_id)},
    )


@router.get("/desk", response_model=None)
async def desk(request: Request, agent: Annotated[int | None, Query(ge=1)] = None) -> Response:
    """An agent's desk: their state and what they may do about it, the screen pop and timeline of every
    call offered to them, and their preview campaigns, live from /api/v1/agents/{id}/events. A key linked
    to an agent opens that agent's desk; a supervisor's or admin's opens anyone's (`?agent=<id>`)."""
    needs = (Permission.AGENTS_STATE, Permission.CUSTOMERS_READ, Permission.TIMELINE_READ)
    viewer = await _viewer(request, needs, "an agent's desk")
    if isinstance(viewer, Response):
        return viewer
    supervisor = allows(viewer.role, Permission.ROUTING_MANAGE)

    def read(db: Session) -> tuple[Agent | None, list[Agent]]:
        found: Agent | None
        if agent is None:
            found = routing_service.agent_for_key(db=db, key_id=viewer.key_id)
        else:
            try:
                found = routing_service.get_agent(db=db, agent_id=agent)
            except NotFound:
                found = None
        return found, routing_service.list_agents(db=db) if found is None and supervisor else []

    found, others = await in_read_session(request, read)
    if found is None and agent is not None:
        return _desk_notice(viewer, "No such agent", f"There is no agent {agent}.", others, 404)
    if found is None:
        message = (
            f"The key you signed in with ({viewer.name}, key {viewer.key_id}) is not linked to an agent, "
            f"so it has no desk. An admin links it: PATCH /api/v1/agents/<agent id> with "
            f'{{"api_key_id": {viewer.key_id}}}.'
        )
        return _desk_notice(viewer, "No agent uses this key", message, others)
    if not supervisor and found.api_key_id != viewer.key_id:
        message = f"This key may act only on its own agent, not agent {found.id}."
        return _desk_notice(viewer, "Not your desk", message, [], 403)
    shown = found.display_name or found.name
    return _page(
        title=f"Desk: {shown}",
        body=fill(page_template("desk.html"), {"name": shown, "agent": found.name}),
        principal=viewer,
        scripts=(_COMMON, _TIMELINE, "/static/pages/desk.js"),
        data={
            "page": "desk",
            "agent-id": str(found.id),
            "agent-name": found.name,
            "home-endpoint": found.home_endpoint or "",
        },
    )


_DESK_NOTICE = (
    '<section class="panel narrow desk-notice"><h1>{{heading}}</h1><p id="desk-notice">{{message}}</p>'
    '{{raw_agents}}<form method="post" action="/sign-out"><button type="submit">Sign in with another key'
    "</button></form></section>"
)


def _desk_notice(
    viewer: Principal, heading: str, message: str, agents: list[Agent], status_code: int = 200
) -> HTMLResponse:
    """Why there is no desk to show; a supervisor also gets the agents whose desks they may open."""
    links = "".join(
        f'<li><a href="/desk?agent={a.id}">{html.escape(a.display_name or a.name)}</a>'
        f" <small>({html.escape(a.name)})</small></li>"
        for a in agents
    )
    more = f'<h2>Open an agent\'s desk</h2><ul class="agent-list">{links}</ul>' if links else ""
    body = fill(_DESK_NOTICE, {"heading": heading, "message": message, "raw_agents": more})
    return _page(title=heading, body=body, principal=viewer, status_code=status_code)


# --- signing in and out ---------------------------------------------------------------------------------


def _local_target(target: str | None) -> str:
    """Where to go after signing in: a path of this service only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/wallboard"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/wallboard"
    return target


def _sign_in_page(target: str, message: str = "", status_code: int = 200) -> HTMLResponse:
    body = fill(
        page_template("sign_in.html"),
        {"next": _local_target(target), "message": message, "raw_hidden": "" if message else " hidden"},
    )
    return _page(title="Sign in", body=body, principal=None, status_code=status_code)


@router.get("/sign-in", response_model=None)
async def sign_in_form(target: Annotated[str, Query(alias="next")] = "/wallboard") -> Response:
    return _sign_in_page(target)


@router.post("/sign-in", response_model=None)
async def sign_in(request: Request) -> Response:
    """Takes `key` (and `next`) as a form; sets the session cookie and goes on to `next`."""
    if not same_origin(request):
        return _sign_in_page("/wallboard", "Sign in from this service's own page.", status.HTTP_403_FORBIDDEN)
    raw = await request.body()
    if len(raw) > _MAX_FORM_BYTES:
        return _sign_in_page("/wallboard", "That is not an API key.", status.HTTP_400_BAD_REQUEST)
    form = parse_qs(raw.decode("utf-8", errors="replace"), max_num_fields=10)
    key = (form.get("key") or [""])[0].strip()
    target = _local_target((form.get("next") or [""])[0])
    if not key:
        return _sign_in_page(target, "Paste an API key.", status.HTTP_400_BAD_REQUEST)
    principal = await run_in_threadpool(get_verifier(request).verify, key)
    if principal is None:
        return _sign_in_page(target, "Unknown or revoked API key.", status.HTTP_401_UNAUTHORIZED)
    answer = RedirectResponse(target, status.HTTP_303_SEE_OTHER, headers={"Cache-Control": "no-store"})
    answer.set_cookie(
        SESSION_COOKIE,
        key,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


@router.post("/sign-out", response_model=None)
async def sign_out() -> Response:
    answer = RedirectResponse("/sign-in", status.HTTP_303_SEE_OTHER, headers={"Cache-Control": "no-store"})
    answer.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return answer
