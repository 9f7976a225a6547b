"""The page a continuation link opens: `GET /l/{token}`, the customer's way back into their case after the
IVR texted them (messaging/continuation.py issues the link).

No API key: the signed token is the credential, and it opens one case only. The page shows that case's
subject (masked, `messaging.continuation.neutral_subject`) and status and the customer's first name,
never a number, an address or another case; a forged, garbled or unknown link and an erased customer's
get the same 404 page, and an expired link (`LINK_LIFETIME`) a 410 page, neither saying more. In the
case's language (es or en: the language of the message that carried the link, else the customer's,
else the browser's), with a switch. Plain HTML forms that work without script; the page's one script
(continuation.js, served by the service: the CSP allows no other) tells the form the browser's time zone.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, FastAPI, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from api.page_templates import fill, page_template
from core.cases.schemas import CaseStatus
from core.db import unit_of_work, utcnow
from core.errors import InvalidInput, NotFound
from messaging.channels import MessagingChannels
from messaging.continuation import (
    LINK_LIFETIME,
    LINK_PATH,
    MESSAGE_MAX_CHARS,
    LinkCallbackRefused,
    LinkedCase,
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
_SOON = timedelta(minutes=2)  # a callback due within this is "as soon as an agent is free"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # The address is the credential: it goes to no other site (and a form's Origin stays readable).
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex, nofollow",
}
_FORM_TYPE = "application/x-www-form-urlencoded"
_DO_NOT_CALL = frozenset(
    {
        "global_do_not_call",
        "campaign_do_not_call",
        "consent_withdrawn",
        "consent_unreadable",
        "no_consent",
        "customer_erased",
    }
)

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


# --- words ------------------------------------------------------------------------------------------------

LANGUAGES = ("es", "en")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXTS: dict[str, dict[str, str]] = {
    "es": {
        "title": "Su consulta",
        "hello": "Hola",
        "hello_name": "Hola, {name}",
        "about_subject": "Le escribimos sobre su consulta: «{subject}».",
        "about": "Le escribimos sobre la consulta que nos hizo.",
        "about_balance": "Le escribimos sobre su consulta de saldo y movimientos.",
        "about_service_status": "Le escribimos sobre el estado del servicio en su zona.",
        "about_order_tracking": "Le escribimos sobre su pedido y su cita de instalación.",
        "status": "Estado",
        "status_open": "abierta, la estamos atendiendo",
        "status_pending": "en espera de una respuesta",
        "status_resolved": "cerrada",
        "closed": "Esta solicitud está cerrada. Si necesita algo más, escríbanos y la reabriremos.",
        "callback_pending": "Tiene una llamada pendiente: le llamaremos {when}.",
        "write": "Escríbanos",
        "write_label": "Su mensaje",
        "write_hint": "Hasta {max} caracteres. No incluya contraseñas ni números de tarjeta.",
        "write_button": "Enviar mensaje",
        "call": "Llámenme",
        "call_hint": "Le llamaremos al número al que le enviamos nuestro mensaje.",
        "call_now": "Llámenme ahora",
        "call_at_label": "O elija día y hora (su hora local)",
        "call_at_button": "Llámenme a esa hora",
        "switch": "English",
        "sent_message": "Gracias. Hemos recibido su mensaje y le responderemos lo antes posible.",
        "sent_callback": "Hecho: le llamaremos {when}.",
        "sent_callback_pending": "Ya tenía una llamada pendiente: le llamaremos {when}.",
        "soon": "en cuanto haya un agente libre",
        "today": "hoy a las {time}",
        "tomorrow": "mañana a las {time}",
        "on_day": "el {day}/{month} a las {time}",
        "message_empty": "Escriba un mensaje antes de enviarlo.",
        "message_too_long": "El mensaje es demasiado largo: como máximo {max} caracteres.",
        "form_stale": "El formulario ha caducado. Revise lo que ha escrito y vuelva a enviarlo.",
        "cross_site": "Envíe el formulario desde esta misma página.",
        "rate_limited": "Ha hecho varios envíos seguidos. Espere unos minutos y vuelva a intentarlo.",
        "too_large": "Lo que ha enviado es demasiado grande.",
        "bad_time": "Elija un día y una hora.",
        "outside_hours": "A esa hora no podemos llamar: está fuera de nuestro horario de llamadas.",
        "outside_hours_next": "A esa hora no podemos llamar: está fuera de nuestro horario de llamadas. "
        "La primera hora posible es {when}.",
        "in_the_past": "Esa hora ya ha pasado. Elija una hora futura.",
        "too_far_ahead": "Solo podemos programar llamadas con {days} días de antelación como máximo.",
        "do_not_call": "No podemos llamarle: su número está en nuestra lista de no llamar, o nos pidió que "
        "no le llamáramos. Si quiere que le llamemos, díganoslo escribiéndonos.",
        "no_number": "No tenemos un número al que podamos llamarle. Escríbanos y le responderemos.",
        "cannot_book": "Ahora mismo no podemos programar la llamada. Escríbanos y le responderemos.",
        "not_found_title": "Este enlace no funciona",
        "not_found": "Compruebe que ha abierto el enlace completo, o contacte con nosotros por el canal "
        "habitual.",
        "expired_title": "Este enlace ha caducado",
        "expired": "Por su seguridad, los enlaces caducan a los {days} días. Si aún necesita ayuda, "
        "responda a nuestro mensaje o llámenos.",
        "unavailable_title": "Página no disponible",
        "unavailable": "Ahora mismo no podemos abrir este enlace. Inténtelo de nuevo más tarde.",
        "unsupported": "Envíe el formulario desde esta página.",
        "back": "Volver a su consulta",
    },
    "en": {
        "title": "Your request",
        "hello": "Hello",
        "hello_name": "Hello {name}",
        "about_subject": "This is about your request: “{subject}”.",
        "about": "This is about the request you made to us.",
        "about_balance": "This is about your balance and transactions enquiry.",
        "about_service_status": "This is about the service status in your area.",
        "about_order_tracking": "This is about your order and your installation appointment.",
        "status": "Status",
        "status_open": "open, we are working on it",
        "status_pending": "waiting for a reply",
        "status_resolved": "closed",
        "closed": "This request is closed. If you need anything else, write to us and we will reopen it.",
        "callback_pending": "You have a call booked: we will call you {when}.",
        "write": "Write to us",
        "write_label": "Your message",
        "write_hint": "Up to {max} characters. Please do not include passwords or card numbers.",
        "write_button": "Send message",
        "call": "Call me back",
        "call_hint": "We will call the number we sent our message to.",
        "call_now": "Call me now",
        "call_at_label": "Or choose a day and time (your local time)",
        "call_at_button": "Call me then",
        "switch": "Español",
        "sent_message": "Thank you. We have received your message and will answer as soon as we can.",
        "sent_callback": "Done: we will call you {when}.",
        "sent_callback_pending": "You already had a call booked: we will call you {when}.",
        "soon": "as soon as an agent is free",
        "today": "today at {time}",
        "tomorrow": "tomorrow at {time}",
        "on_day": "on {day} {month_name} at {time}",
        "message_empty": "Please write a message before sending it.",
        "message_too_long": "The message is too long: {max} characters at most.",
        "form_stale": "This form has expired. Check what you wrote and send it again.",
        "cross_site": "Please send the form from this page.",
        "rate_limited": "You have sent several things in a row. Please wait a few minutes and try again.",
        "too_large": "What you sent is too large.",
        "bad_time": "Please choose a day and a time.",
        "outside_hours": "We cannot call at that time: it is outside our calling hours.",
        "outside_hours_next": "We cannot call at that time: it is outside our calling hours. "
        "The earliest we can call is {when}.",
        "in_the_past": "That time has passed. Please choose a time in the future.",
        "too_far_ahead": "We can book calls at most {days} days ahead.",
        "do_not_call": "We cannot call you: your number is on our do-not-call list, or you asked us not to "
        "call you. If you would like a call, tell us by writing to us.",
        "no_number": "We have no number we can call you on. Write to us and we will answer.",
        "cannot_book": "We cannot book a call right now. Write to us and we will answer.",
        "not_found_title": "This link does not work",
        "not_found": "Check that you opened the whole link, or contact us the usual way.",
        "expired_title": "This link has expired",
        "expired": "For your security, links expire after {days} days. If you still need help, reply to "
        "our message or call us.",
        "unavailable_title": "Page unavailable",
        "unavailable": "We cannot open this link right now. Please try again later.",
        "unsupported": "Please send the form from this page.",
        "back": "Back to your request",
    },
}


def _language(*candidates: str | None) -> str:
    """The first candidate the page speaks ("es-ES" counts as "es"); Spanish by default."""
    for candidate in candidates:
        code = (candidate or "").strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return LANGUAGES[0]


def _browser_language(request: Request) -> str | None:
    """The browser's most preferred language the page speaks, if any (Accept-Language, q ignored:
    browsers list languages in order)."""
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return None


def _valid_zone(name: str | None) -> str | None:
    """`name` if it is a time zone this machine knows ("Europe/Madrid"), else None."""
    if not name or len(name) > 64:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def _when(lang: str, due: datetime, zone: str | None, now: datetime) -> str:
    """When a call will come, in words, on the customer's clock."""
    words = _TEXTS[lang]
    if due <= now + _SOON:
        return words["soon"]
    tz = ZoneInfo(zone or "UTC")
    local, today = due.astimezone(tz), now.astimezone(tz).date()
    hhmm = local.strftime("%H:%M")
    if local.date() == today:
        return words["today"].format(time=hhmm)
    if local.date() == today + timedelta(days=1):
        return words["tomorrow"].format(time=hhmm)
    return words["on_day"].format(
        day=local.day, month=local.month, month_name=_MONTHS[local.month - 1], time=hhmm
    )


# --- rendering --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Form:
    """What the customer sent, to show again beside a refusal."""

    message: str = ""
    at: str = ""


def _document(lang: str, title: str, body: str, status_code: int) -> HTMLResponse:
    document = fill(
        page_template("continuation_layout.html"), {"lang": lang, "title": title, "raw_body": body}
    )
    return HTMLResponse(document, status_code=status_code, headers=_HEADERS)


def _gone(lang: str, what: str, status_code: int) -> HTMLResponse:
    """The page for a link that leads nowhere: it names no case and no customer."""
    words = _TEXTS[lang]
    return _problem(lang, words[f"{what}_title"], words[what].format(days=LINK_LIFETIME.days), status_code)


def _problem(lang: str, heading: str, text: str, status_code: int, back: str | None = None) -> HTMLResponse:
    link = ""
    if back is not None:
        link = fill(page_template("continuation_back.html"), {"href": back, "label": _TEXTS[lang]["back"]})
    body = fill(page_template("continuation_gone.html"), {"heading": heading, "text": text, "raw_back": link})
    return _document(lang, heading, body, status_code)


def _notice(kind: str, text: str) -> str:
    role = "alert" if kind == "error" else "status"
    return fill(page_template("continuation_notice.html"), {"kind": kind, "role": role, "text": text})


def _case_page(
    *,
    token: str,
    tokens: LinkTokens,
    case: LinkedCase,
    link: str,
    lang: str,
    now: datetime,
    notices: Sequence[tuple[str, str]] = (),
    form: _Form = _Form(),
    status_code: int = 200,
) -> HTMLResponse:
    words = _TEXTS[lang]
    path = f"{LINK_PATH}{quote(token, safe='')}"
    other = LANGUAGES[1 - LANGUAGES.index(lang)]
    if case.subject:
        about = words["about_subject"].format(subject=case.subject)
    else:
        about = words.get(f"about_{link}", words["about"])
    shown = list(notices)
    resolved = case.status == CaseStatus.RESOLVED.value
    if resolved:
        shown.append(("closed", words["closed"]))
    elif case.callback_due_at is not None and not any(kind == "done" for kind, _ in notices):
        shown.append(
            ("info", words["callback_pending"].format(when=_when(lang, case.callback_due_at, case.zone, now)))
        )
    nonce = tokens.form_nonce(token, now=now)
    callback = ""
    if not resolved:  # a closed request is reopened by writing (a call would not say what about)
        earliest = now.astimezone(ZoneInfo(case.zone)).strftime("%Y-%m-%dT%H:%M") if case.zone else ""
        callback = fill(
            page_template("continuation_callback.html"),
            {
                "action": f"{path}/callback",
                "nonce": nonce,
                "lang": lang,
                "heading": words["call"],
                "hint": words["call_hint"],
                "now_button": words["call_now"],
                "at_label": words["call_at_label"],
                "at_button": words["call_at_button"],
                "min": earliest,
                "at": form.at,
            },
        )
    body = fill(
        page_template("continuation.html"),
        {
            "switch_href": f"{path}?lang={other}",
            "switch_lang": other,
            "switch_label": words["switch"],
            "greeting": words["hello_name"].format(name=case.first_name)
            if case.first_name
            else words["hello"],
            "about": about,
            "status_label": words["status"],
            "status": case.status,
            "status_text": words.get(f"status_{case.status}", case.status),
            "raw_notices": "".join(_notice(kind, text) for kind, text in shown),
            "write_heading": words["write"],
            "write_action": f"{path}/messages",
            "nonce": nonce,
            "lang": lang,
            "write_label": words["write_label"],
            "max_chars": str(MESSAGE_MAX_CHARS),
            "message": form.message,
            "write_hint": words["write_hint"].format(max=MESSAGE_MAX_CHARS),
            "write_button": words["write_button"],
            "raw_callback": callback,
        },
    )
    return _document(lang, words["title"], body, status_code)


# --- reading the request ----------------------------------------------------------------------------------


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
        return _gone(lang, "unavailable", status.HTTP_503_SERVICE_UNAVAILABLE)
    if len(token) > _TOKEN_MAX_CHARS:
        return _gone(lang, "not_found", status.HTTP_404_NOT_FOUND)
    try:
        return tokens, tokens.read_current(token, now=now)
    except LinkExpired:
        return _gone(lang, "expired", status.HTTP_410_GONE)
    except InvalidInput:
        return _gone(lang, "not_found", status.HTTP_404_NOT_FOUND)


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
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER, headers=_HEADERS)


@dataclass(frozen=True, slots=True)
class _Post:
    """A post that passed the checks every form shares."""

    tokens: LinkTokens
    grant: LinkGrant
    fields: dict[str, str]
    lang: str
    nonce: str


async def _accepted_post(
    request: Request, token: str, kind: str, kept: Callable[[dict[str, str]], _Form], now: datetime
) -> _Post | Response:
    """The checks both forms share, in order: the link, the body, the origin, the nonce, the allowance.
    Returns the post, or the answer to send: a refusal page keeps what the customer wrote."""
    browser = _browser_language(request)
    found = _grant(request, token, _language(browser), now)
    if isinstance(found, Response):
        return found
    tokens, grant = found
    kind_of_body = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields = await _form(request) if kind_of_body == _FORM_TYPE else {}
    lang = _language((fields or {}).get("lang"), browser)
    back = f"{LINK_PATH}{quote(token, safe='')}?lang={lang}"
    if fields is None:
        return _problem(lang, _TEXTS[lang]["title"], _TEXTS[lang]["too_large"], _TOO_LARGE, back)
    if kind_of_body != _FORM_TYPE:
        return _problem(lang, _TEXTS[lang]["title"], _TEXTS[lang]["unsupported"], _UNSUPPORTED, back)
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
        return _done(token, kind, lang, _valid_zone(fields.get("tz")))
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
    found = _grant(request, token, _language(asked, _browser_language(request)), now)
    if isinstance(found, Response):
        return found
    tokens, grant = found
    region = _region(request)
    try:
        case = await _read(request, lambda db: linked_case(db=db, grant=grant, region=region, now=now))
    except NotFound:  # the case was deleted, or its customer erased: as if the link never was
        return _gone(_language(asked, _browser_language(request)), "not_found", status.HTTP_404_NOT_FOUND)
    lang = _language(asked, case.language, _browser_language(request))
    case = replace(case, zone=_valid_zone(request.query_params.get("tz")) or case.zone)
    words = _TEXTS[lang]
    notices: list[tuple[str, str]] = []
    sent = request.query_params.get("sent")
    if sent == "message":
        notices.append(("done", words["sent_message"]))
    elif sent in ("callback", "callback-pending") and case.callback_due_at is not None:
        key = "sent_callback" if sent == "callback" else "sent_callback_pending"
        notices.append(("done", words[key].format(when=_when(lang, case.callback_due_at, case.zone, now))))
    return _case_page(
        token=token, tokens=tokens, case=case, link=grant.link, lang=lang, now=now, notices=notices
    )


@router.post(LINK_PATH + "{token}/messages", response_model=None)
async def post_message(request: Request, token: str) -> Response:
    """What the customer wrote: an inbound `web` message in the link's case."""
    now = utcnow()
    post = await _accepted_post(request, token, "message", lambda f: _Form(message=f.get("message", "")), now)
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
        return _gone(post.lang, "not_found", status.HTTP_404_NOT_FOUND)
    except MessageRefused as refused:
        _guard(request).give_back(post.nonce)
        notice = _TEXTS[post.lang][f"message_{refused.rule}"].format(max=MESSAGE_MAX_CHARS)
        return await _page_again(request, post, token, notice, _Form(message=text), _REFUSED, now)
    except Exception:  # nothing was recorded: sending the same form again must try again
        _guard(request).give_back(post.nonce)
        raise
    return _done(token, "message", post.lang)


@router.post(LINK_PATH + "{token}/callback", response_model=None)
async def post_callback(request: Request, token: str) -> Response:
    """Call me back: `when` is "now", or "at" with `at` a local date and time (YYYY-MM-DDTHH:MM)."""
    now = utcnow()
    post = await _accepted_post(request, token, "callback", lambda f: _Form(at=f.get("at", "")[:16]), now)
    if isinstance(post, Response):
        return post
    asked = post.fields.get("at", "")[:16]
    zone = _valid_zone(post.fields.get("tz"))  # the browser's, from the page's script
    local_at: datetime | None = None
    if post.fields.get("when") == "at":
        try:
            local_at = datetime.fromisoformat(asked).replace(tzinfo=None, second=0, microsecond=0)
        except ValueError:
            _guard(request).give_back(post.nonce)
            return await _page_again(request, post, token, "bad_time", _Form(at=asked), _REFUSED, now)
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
        return _gone(post.lang, "not_found", status.HTTP_404_NOT_FOUND)
    except LinkCallbackRefused as refused:
        _guard(request).give_back(post.nonce)
        notice = _refusal(post.lang, refused, rules, now)
        return await _page_again(request, post, token, notice, _Form(at=asked), _REFUSED, now)
    except Exception:
        _guard(request).give_back(post.nonce)
        raise
    return _done(token, "callback" if booked.created else "callback-pending", post.lang, booked.zone)


def _refusal(lang: str, refused: LinkCallbackRefused, rules: CallbackRules, now: datetime) -> str:
    """Why the call cannot be booked, in the customer's words."""
    words = _TEXTS[lang]
    rule = refused.rule
    if rule == "outside_hours":
        if refused.next_allowed_at is not None:
            return words["outside_hours_next"].format(
                when=_when(lang, refused.next_allowed_at, refused.zone, now)
            )
        return words["outside_hours"]
    if rule in ("in_the_past", "case_closed"):
        return words["in_the_past" if rule == "in_the_past" else "closed"]
    if rule == "too_far_ahead":
        return words["too_far_ahead"].format(days=rules.max_days_ahead)
    if rule in _DO_NOT_CALL:
        return words["do_not_call"]
    if rule in ("no_number", "malformed_number", "no_calling_hours"):
        return words["no_number"]
    return words["cannot_book"]


async def _page_again(
    request: Request, post: _Post, token: str, notice: str, form: _Form, status_code: int, now: datetime
) -> Response:
    """The page again, saying why the post was refused (`notice`: the words, or their key), with what
    the customer sent in the form."""
    region = _region(request)
    try:
        case = await _read(request, lambda db: linked_case(db=db, grant=post.grant, region=region, now=now))
    except NotFound:
        return _gone(post.lang, "not_found", status.HTTP_404_NOT_FOUND)
    case = replace(case, zone=_valid_zone(post.fields.get("tz")) or case.zone)
    return _case_page(
        token=token,
        tokens=post.tokens,
        case=case,
        link=post.grant.link,
        lang=post.lang,
        now=now,
        notices=[("error", _TEXTS[post.lang].get(notice, notice))],
        form=form,
        status_code=status_code,
    )
