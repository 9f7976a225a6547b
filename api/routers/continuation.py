"""The page a continuation link opens: `GET /l/{token}`, the customer's way back into their case after the
IVR texted them (messaging/continuation.py issues the link).

No API key: the signed token is the credential, and it opens one case only. A forged, garbled or unknown
link and an erased customer's get the same 404 page, and an expired link (`LINK_LIFETIME`) a 410 page,
neither saying more. In the case's language (es or en: the language of the message that carried the
link, else the customer's, else the browser's), with a switch. What the page says and its HTML are in
api/continuation_page.py; this module reads the request, calls messaging/continuation.py and answers.

Two forms, each answered with a redirect to the page showing a confirmation (a reload posts nothing):
- `POST /l/{token}/messages`: what the customer writes becomes an inbound `web` message in the case
  (a resolved case is reopened);
- `POST /l/{token}/callback`: "call me now" or at a time on their own clock, booked through routing's
  `request_callback` (source web, the page's context kept on the case); a refusal (outside hours,
  do-not-call, a time past) is shown in words, with the form as it was.

Forged posts: the link is in the path and no cookie is involved, so another site cannot make a browser
post anything it could not post itself; what remains is a page on another site posting a link it has
learnt. So a post must carry the nonce of a page served for that same link in the last 12 hours
(`LinkTokens.form_nonce`, stateless, signed with the link secret) and must not come from another origin
(`Origin`, `Sec-Fetch-Site`). The nonce is also taken once per process: a double click records once.
Each link may post a few messages and callbacks an hour (`PostingGuard`, per process), and a form body
is at most `FORM_MAX_BYTES`. A refused post keeps what the customer wrote in the form.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, FastAPI, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from api import continuation_page as page
from core.db import unit_of_work, utcnow
from core.errors import InvalidInput, NotFound
from messaging.channels import MessagingChannels
from messaging.continuation import (
    LINK_PATH,
    MESSAGE_MAX_CHARS,
    LinkCallbackRefused,
    LinkExpired,
    LinkGrant,
    LinkTokens,
    MessageRefused,
    linked_case,
    record_web_message,
    request_callback_from_link,
)
from routing.callback_rules import CallbackRules

T = TypeVar("T")

FORM_MAX_BYTES = 16_384  # a full message of 2,000 characters, each a percent-encoded multibyte one, fits
_TOKEN_MAX_CHARS = 200
_REFUSED, _TOO_LARGE, _UNSUPPORTED, _TOO_MANY = 422, 413, 415, 429
_FORM_TYPE = "application/x-www-form-urlencoded"

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Adds the page and its forms (their styles are under /static, which the pages mount)."""
    app.state.continuation_guard = PostingGuard()
    app.include_router(router)


# --- posting limits ---------------------------------------------------------------------------------------


class PostingGuard:
    """Per process, in memory: how often each link may post (`limits`: kind -> (posts, seconds)), and
    the form nonces already used. Both are bounded: the oldest links and nonces are forgotten first.
    Used from the event loop only, so it needs no lock."""

    def __init__(
        self,
        *,
        limits: dict[str, tuple[int, float]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 20_000,
    ) -> None:
        self.limits = limits or {"message": (6, 600.0), "callback": (4, 3600.0)}
        self._clock = clock
        self._max = max_entries
        self._posts: dict[tuple[str, str], deque[float]] = {}
        self._nonces: dict[str, float] = {}  # nonce -> when it may be forgotten

    def allow(self, kind: str, token: str) -> bool:
        """Counts a post of `kind` by the link; False when the link has used up its allowance."""
        most, window = self.limits[kind]
        now = self._clock()
        times = self._posts.pop((kind, token), None) or deque()
        while times and times[0] <= now - window:
            times.popleft()
        allowed = len(times) < most
        if allowed:
            times.append(now)
        self._posts[(kind, token)] = times  # re-inserted: the dict's order is least recently used first
        while len(self._posts) > self._max:
            del self._posts[next(iter(self._posts))]
        return allowed

    def take_nonce(self, nonce: str) -> bool:
        """True the first time a nonce is taken (until it is given back); False after."""
        now = self._clock()
        if self._nonces.get(nonce, now) > now:
            return False
        self._nonces.pop(nonce, None)
        self._nonces[nonce] = now + 2 * 86_400  # longer than a nonce is valid (FORM_MAX_AGE)
        while len(self._nonces) > self._max:
            del self._nonces[next(iter(self._nonces))]
        return True

    def give_back(self, nonce: str) -> None:
        """The post was refused and recorded nothing: the same form may be sent again."""
        self._nonces.pop(nonce, None)


# --- reading the request ----------------------------------------------------------------------------------


def _browser_language(request: Request) -> str | None:
    return page.browser_language(request.headers.get("accept-language", ""))


def _tokens(request: Request) -> LinkTokens | None:
    channels: MessagingChannels | None = getattr(request.app.state, "messaging", None)
    return channels.link_tokens if channels is not None else None


def _guard(request: Request) -> PostingGuard:
    guard: PostingGuard = request.app.state.continuation_guard
    return guard


def _region(request: Request) -> str:
    channels: MessagingChannels | None = getattr(request.app.state, "messaging", None)
    return channels.region if channels is not None else request.app.state.settings.default_region


def _rules(request: Request) -> CallbackRules:
    desk = getattr(request.app.state, "callbacks", None)
    return desk.rules if desk is not None else CallbackRules.from_settings(request.app.state.settings)


def _grant(
    request: Request, token: str, lang: str, now: datetime
) -> tuple[LinkTokens, LinkGrant] | HTMLResponse:
    """The link's grant, or the page to answer instead (unconfigured, not ours, expired)."""
    tokens = _tokens(request)
    if tokens is None:  # no CENTRALITA_LINK_SECRET: no link can be checked
        return page.gone(lang, "unavailable", status.HTTP_503_SERVICE_UNAVAILABLE)
    if len(token) > _TOKEN_MAX_CHARS:
        return page.gone(lang, "not_found", status.HTTP_404_NOT_FOUND)
    try:
        return tokens, tokens.read_current(token, now=now)
    except LinkExpired:
        return page.gone(lang, "expired", status.HTTP_410_GONE)
    except InvalidInput:
        return page.gone(lang, "not_found", status.HTTP_404_NOT_FOUND)


def _cross_site(request: Request) -> bool:
    """A post another site's page made: the browser says so (Sec-Fetch-Site, which every current
    browser sends and no page can change), or, from an older one, its Origin is another."""
    fetched_from = request.headers.get("sec-fetch-site")
    if fetched_from is not None:
        return fetched_from not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    ours = {request.headers.get("host", "")}
    public_url = request.app.state.settings.public_url
    if public_url:
        ours.add(urlsplit(public_url).netloc)
    return origin == "null" or urlsplit(origin).netloc not in ours


async def _form(request: Request) -> dict[str, str] | None:
    """The posted form's fields (the first of each), or None when it is too large to read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > FORM_MAX_BYTES:
        return None
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > FORM_MAX_BYTES:
            return None
    fields = parse_qs(bytes(raw).decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=10)
    return {name: values[0] for name, values in fields.items() if values}


async def _read(request: Request, work: Callable[[Session], T]) -> T:
    factory = request.app.state.read_session_factory

    def run() -> T:
        with factory() as db:
            return work(db)

    return await run_in_threadpool(run)


async def _write(request: Request, work: Callable[[Session], T]) -> T:
    factory = request.app.state.session_factory

    def run() -> T:
        with unit_of_work(factory) as db:
            return work(db)

    return await run_in_threadpool(run)


def _done(token: str, sent: str, lang: str, zone: str | None = None) -> RedirectResponse:
    """To the page, saying what was done (and on which clock to say when the call comes)."""
    target = f"{LINK_PATH}{quote(token, safe='')}?sent={sent}&lang={lang}"
    if zone is not None:
        target += f"&tz={quote(zone, safe='')}"
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER, headers=page.HEADERS)


@dataclass(frozen=True, slots=True)
class _Post:
    """A post that passed the checks every form shares."""

    tokens: LinkTokens
    grant: LinkGrant
    fields: dict[str, str]
    lang: str
    nonce: str


async def _accepted_post(
    request: Request, token: str, kind: str, kept: Callable[[dict[str, str]], page.SentForm], now: datetime
) -> _Post | Response:
    """The checks both forms share, in order: the link, the body, the origin, the nonce, the allowance.
    Returns the post, or the answer to send: a refusal page keeps what the customer wrote."""
    browser = _browser_language(request)
    found = _grant(request, token, page.language(browser), now)
    if isinstance(found, Response):
        return found
    tokens, grant = found
    kind_of_body = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields = await _form(request) if kind_of_body == _FORM_TYPE else {}
    lang = page.language((fields or {}).get("lang"), browser)
    back = f"{LINK_PATH}{quote(token, safe='')}?lang={lang}"
    if fields is None:
        return page.problem(lang, page.TEXTS[lang]["title"], page.TEXTS[lang]["too_large"], _TOO_LARGE, back)
    if kind_of_body != _FORM_TYPE:
        return page.problem(
            lang, page.TEXTS[lang]["title"], page.TEXTS[lang]["unsupported"], _UNSUPPORTED, back
        )
    post = _Post(tokens, grant, fields, lang, fields.get("nonce", ""))
    if _cross_site(request):
        return await _page_again(
            request, post, token, "cross_site", kept(fields), status.HTTP_403_FORBIDDEN, now
        )
    if not tokens.form_nonce_valid(token, post.nonce, now=now):
        return await _page_again(
            request, post, token, "form_stale", kept(fields), status.HTTP_403_FORBIDDEN, now
        )
    if not _guard(request).take_nonce(post.nonce):  # the same form again (a double click): done already
        return _done(token, kind, lang, page.valid_zone(fields.get("tz")))
    if not _guard(request).allow(kind, token):
        _guard(request).give_back(post.nonce)
        return await _page_again(request, post, token, "rate_limited", kept(fields), _TOO_MANY, now)
    return post


# --- the page and its forms -------------------------------------------------------------------------------


@router.get(LINK_PATH + "{token}", response_model=None)
async def continuation_page(request: Request, token: str) -> Response:
    """The case the link names, with "write to us" and "call me back"; `sent` shows a confirmation."""
    now = utcnow()
    asked = request.query_params.get("lang")
    found = _grant(request, token, page.language(asked, _browser_language(request)), now)
    if isinstance(found, Response):
        return found
    tokens, grant = found
    region = _region(request)
    try:
        case = await _read(request, lambda db: linked_case(db=db, grant=grant, region=region, now=now))
    except NotFound:  # the case was deleted, or its customer erased: as if the link never was
        return page.gone(
            page.language(asked, _browser_language(request)), "not_found", status.HTTP_404_NOT_FOUND
        )
    lang = page.language(asked, case.language, _browser_language(request))
    case = replace(case, zone=page.valid_zone(request.query_params.get("tz")) or case.zone)
    words = page.TEXTS[lang]
    notices: list[tuple[str, str]] = []
    sent = request.query_params.get("sent")
    if sent == "message":
        notices.append(("done", words["sent_message"]))
    elif sent in ("callback", "callback-pending") and case.callback_due_at is not None:
        key = "sent_callback" if sent == "callback" else "sent_callback_pending"
        notices.append(
            ("done", words[key].format(when=page.when(lang, case.callback_due_at, case.zone, now)))
        )
    return page.case_page(
        token=token, tokens=tokens, case=case, link=grant.link, lang=lang, now=now, notices=notices
    )


@router.post(LINK_PATH + "{token}/messages", response_model=None)
async def post_message(request: Request, token: str) -> Response:
    """What the customer wrote: an inbound `web` message in the link's case."""
    now = utcnow()
    post = await _accepted_post(
        request, token, "message", lambda f: page.SentForm(message=f.get("message", "")), now
    )
    if isinstance(post, Response):
        return post
    region = _region(request)
    text = post.fields.get("message", "")
    try:
        await _write(
            request,
            lambda db: record_web_message(
                db=db, grant=post.grant, text=text, language=post.lang, now=now, region=region
            ),
        )
    except NotFound:
        return page.gone(post.lang, "not_found", status.HTTP_404_NOT_FOUND)
    except MessageRefused as refused:
        _guard(request).give_back(post.nonce)
        notice = page.TEXTS[post.lang][f"message_{refused.rule}"].format(max=MESSAGE_MAX_CHARS)
        return await _page_again(request, post, token, notice, page.SentForm(message=text), _REFUSED, now)
    except Exception:  # nothing was recorded: sending the same form again must try again
        _guard(request).give_back(post.nonce)
        raise
    return _done(token, "message", post.lang)


@router.post(LINK_PATH + "{token}/callback", response_model=None)
async def post_callback(request: Request, token: str) -> Response:
    """Call me back: `when` is "now", or "at" with `at` a local date and time (YYYY-MM-DDTHH:MM)."""
    now = utcnow()
    post = await _accepted_post(
        request, token, "callback", lambda f: page.SentForm(at=f.get("at", "")[:16]), now
    )
    if isinstance(post, Response):
        return post
    asked = post.fields.get("at", "")[:16]
    zone = page.valid_zone(post.fields.get("tz"))  # the browser's, from the page's script
    local_at: datetime | None = None
    if post.fields.get("when") == "at":
        try:
            local_at = datetime.fromisoformat(asked).replace(tzinfo=None, second=0, microsecond=0)
        except ValueError:
            _guard(request).give_back(post.nonce)
            return await _page_again(request, post, token, "bad_time", page.SentForm(at=asked), _REFUSED, now)
    rules = _rules(request)
    context: dict[str, Any] = {
        "page": "continuation link",
        "link": post.grant.link,
        "link_sent_at": post.grant.issued_at.isoformat(),
        "asked_for": local_at.isoformat() if local_at is not None else "now",
        "page_language": post.lang,
    }
    try:
        booked = await _write(
            request,
            lambda db: request_callback_from_link(
                db=db,
                grant=post.grant,
                local_at=local_at,
                zone=zone,
                language=post.lang,
                context=context,
                rules=rules,
                now=now,
            ),
        )
    except NotFound:
        return page.gone(post.lang, "not_found", status.HTTP_404_NOT_FOUND)
    except LinkCallbackRefused as refused:
        _guard(request).give_back(post.nonce)
        notice = page.refusal(post.lang, refused, rules, now)
        return await _page_again(request, post, token, notice, page.SentForm(at=asked), _REFUSED, now)
    except Exception:
        _guard(request).give_back(post.nonce)
        raise
    return _done(token, "callback" if booked.created else "callback-pending", post.lang, booked.zone)


async def _page_again(
    request: Request,
    post: _Post,
    token: str,
    notice: str,
    form: page.SentForm,
    status_code: int,
    now: datetime,
) -> Response:
    """The page again, saying why the post was refused (`notice`: the words, or their key), with what
    the customer sent in the form."""
    region = _region(request)
    try:
        case = await _read(request, lambda db: linked_case(db=db, grant=post.grant, region=region, now=now))
    except NotFound:
        return page.gone(post.lang, "not_found", status.HTTP_404_NOT_FOUND)
    case = replace(case, zone=page.valid_zone(post.fields.get("tz")) or case.zone)
    return page.case_page(
        token=token,
        tokens=post.tokens,
        case=case,
        link=post.grant.link,
        lang=post.lang,
        now=now,
        notices=[("error", page.TEXTS[post.lang].get(notice, notice))],
        form=form,
        status_code=status_code,
    )
