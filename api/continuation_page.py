"""What the continuation page (`GET /l/{token}`, api/routers/continuation.py) says and how it looks: its
words in each language it speaks, the HTML it is built from (api/pages/continuation*.html, filled by
`api.page_templates.fill`) and the headers every answer of the page carries.

The page shows the case's subject (masked, `messaging.continuation.neutral_subject`) and status and the
customer's first name, never a number, an address or another case; a link that leads nowhere gets a page
that names no case and no customer. In es or en (`language` picks the first the page speaks), with a
switch. Plain HTML forms that work without script; the page's one script (continuation.js, served by the
service: the CSP allows no other) tells the form the browser's time zone. Nothing here reads a request or
a database: the router hands in what it has read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi.responses import HTMLResponse

from api.page_templates import fill, page_template
from core.cases.schemas import CaseStatus
from messaging.continuation import (
    LINK_LIFETIME,
    LINK_PATH,
    MESSAGE_MAX_CHARS,
    LinkCallbackRefused,
    LinkedCase,
    LinkTokens,
)
from routing.callback_rules import CallbackRules

_SOON = timedelta(minutes=2)  # a callback due within this is "as soon as an agent is free"
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": _CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # The address is the credential: it goes to no other site (and a form's Origin stays readable).
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex, nofollow",
}
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


# --- words ------------------------------------------------------------------------------------------------

LANGUAGES = ("es", "en")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
TEXTS: dict[str, dict[str, str]] = {
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


def language(*candidates: str | None) -> str:
    """The first candidate the page speaks ("es-ES" counts as "es"); Spanish by default."""
    for candidate in candidates:
        code = (candidate or "").strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return LANGUAGES[0]


def browser_language(accept_language: str) -> str | None:
    """The browser's most preferred language the page speaks, if any (its Accept-Language header, q
    ignored: browsers list languages in order)."""
    for part in accept_language.split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return None


def valid_zone(name: str | None) -> str | None:
    """`name` if it is a time zone this machine knows ("Europe/Madrid"), else None."""
    if not name or len(name) > 64:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def when(lang: str, due: datetime, zone: str | None, now: datetime) -> str:
    """When a call will come, in words, on the customer's clock."""
    words = TEXTS[lang]
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
class SentForm:
    """What the customer sent, to show again beside a refusal."""

    message: str = ""
    at: str = ""


def _document(lang: str, title: str, body: str, status_code: int) -> HTMLResponse:
    document = fill(
        page_template("continuation_layout.html"), {"lang": lang, "title": title, "raw_body": body}
    )
    return HTMLResponse(document, status_code=status_code, headers=HEADERS)


def gone(lang: str, what: str, status_code: int) -> HTMLResponse:
    """The page for a link that leads nowhere: it names no case and no customer."""
    words = TEXTS[lang]
    return problem(lang, words[f"{what}_title"], words[what].format(days=LINK_LIFETIME.days), status_code)


def problem(lang: str, heading: str, text: str, status_code: int, back: str | None = None) -> HTMLResponse:
    link = ""
    if back is not None:
        link = fill(page_template("continuation_back.html"), {"href": back, "label": TEXTS[lang]["back"]})
    body = fill(page_template("continuation_gone.html"), {"heading": heading, "text": text, "raw_back": link})
    return _document(lang, heading, body, status_code)


def _notice(kind: str, text: str) -> str:
    role = "alert" if kind == "error" else "status"
    return fill(page_template("continuation_notice.html"), {"kind": kind, "role": role, "text": text})


def case_page(
    *,
    token: str,
    tokens: LinkTokens,
    case: LinkedCase,
    link: str,
    lang: str,
    now: datetime,
    notices: Sequence[tuple[str, str]] = (),
    form: SentForm = SentForm(),
    status_code: int = 200,
) -> HTMLResponse:
    words = TEXTS[lang]
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
            ("info", words["callback_pending"].format(when=when(lang, case.callback_due_at, case.zone, now)))
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


def refusal(lang: str, refused: LinkCallbackRefused, rules: CallbackRules, now: datetime) -> str:
    """Why the call cannot be booked, in the customer's words."""
    words = TEXTS[lang]
    rule = refused.rule
    if rule == "outside_hours":
        if refused.next_allowed_at is not None:
            return words["outside_hours_next"].format(
                when=when(lang, refused.next_allowed_at, refused.zone, now)
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
