"""The pages people look at, served by the service itself: the wallboard, the journey map and a customer's
page, and the sign-in that lets a browser use them.

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

from api.deps import SESSION_COOKIE, authenticate, get_verifier
from api.page_templates import fill, page_template
from core.auth.roles import Permission, allows
from core.auth.service import Principal

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


async def _viewer(request: Request, needs: tuple[Permission, ...], what: str) -> Principal | Response:
    """The signed-in principal, or the answer to send instead: the sign-in form, or a 403 page."""
    try:
        principal = await authenticate(request)
    except HTTPException:
        target = request.url.path
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
        scripts=(_COMMON, "/static/pages/customer.js"),
        data={"page": "customer", "customer-id": str(customer_id)},
    )


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


def _same_origin(request: Request) -> bool:
    """A form posted from another site carries its Origin: refuse it (no signing a browser in behind its
    user's back)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


@router.get("/sign-in", response_model=None)
async def sign_in_form(target: Annotated[str, Query(alias="next")] = "/wallboard") -> Response:
    return _sign_in_page(target)


@router.post("/sign-in", response_model=None)
async def sign_in(request: Request) -> Response:
    """Takes `key` (and `next`) as a form; sets the session cookie and goes on to `next`."""
    if not _same_origin(request):
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
