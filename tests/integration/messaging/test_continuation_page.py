"""The page a continuation link opens (GET /l/{token}) and its two forms, on SQLite and PostgreSQL, through
the service's own app with no API key: what it shows of the case (and what it never shows), links that
lead nowhere, a message and a callback landing in the link's case, refusals in words, forged posts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from messaging_helpers import SMS_FROM, customer
from sqlalchemy import select

from centralita.container import Container
from core.auth.roles import Role
from core.cases.models import Case
from core.channels import Channel
from core.customers.identities import IdentityKind
from core.db import unit_of_work, utcnow
from core.timeline.models import Interaction, Touchpoint
from core.timeline.schemas import ExternalRef, RefKind
from dialer.calling_window import ANY_TIME
from messaging import service
from messaging.continuation import LinkTokens
from routing.callback_models import Callback

CALLER = "+34699000111"
MADRID = ZoneInfo("Europe/Madrid")
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def browser(wired: Container) -> Iterator[TestClient]:
    """The customer's phone: no API key, no cookie, redirects not followed."""
    with TestClient(wired.api(), follow_redirects=False) as client:
        yield client


@pytest.fixture
def staff(make_key: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(Role.ADMIN, 'back office')}"}


@pytest.fixture
def any_time(wired: Container) -> Iterator[None]:
    """Callbacks may be made at any hour: "now" means now whenever the suite runs."""
    desk = wired.callbacks()
    kept = desk.rules
    desk.rules = replace(kept, hours=ANY_TIME)
    yield
    desk.rules = kept


@pytest.fixture
def general(browser: TestClient, staff: dict[str, str]) -> None:
    assert browser.post("/api/v1/queues", json={"name": "general"}, headers=staff).status_code == 201


def tokens(container: Container) -> LinkTokens:
    secret = container.settings.link_secret
    assert secret is not None
    return LinkTokens(secret.get_secret_value().encode())


def link(container: Container, case_id: int, *, issued_at: datetime | None = None) -> str:
    return tokens(container).issue(case_id=case_id, link="chat", issued_at=issued_at or utcnow())


def open_case(browser: TestClient, staff: dict[str, str], customer_id: int, subject: str) -> int:
    made = browser.post("/api/v1/cases", json={"customer_id": customer_id, "subject": subject}, headers=staff)
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def texted(container: Container, customer_id: int, case_id: int, language: str, sid: str = "SM1") -> None:
    """The IVR's continuation message, as the link sender records it."""
    with unit_of_work(container.session_factory) as db:
        service.record_outbound(
            db=db,
            channel=Channel.SMS,
            customer_id=customer_id,
            case_id=case_id,
            ref=ExternalRef(kind=RefKind.TWILIO_SID, value=sid.ljust(34, "0")),
            body="Continúe aquí: https://cc.example.com/l/…",
            to=CALLER,
            sender=SMS_FROM,
            language=language,
            attributes={"link": "chat"},
            region="ES",
        )


def ana(container: Container, browser: TestClient, staff: dict[str, str]) -> tuple[int, int, int]:
    """Ana, with two open cases: the link's (older) and a later one; the link was texted in Spanish."""
    who = customer(
        container,
        (IdentityKind.PHONE, CALLER),
        (IdentityKind.EMAIL, "ana.perez@example.com"),
        name="Ana Pérez Gómez",
    )
    linked = open_case(browser, staff, who, "Cargo no reconocido")
    texted(container, who, linked, "es")
    later = open_case(browser, staff, who, "Hipoteca: tasación pendiente")
    return who, linked, later


def nonce_of(page: Response) -> str:
    found = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def post(browser: TestClient, path: str, fields: dict[str, str], **headers: str) -> Response:
    return browser.post(path, data=fields, headers=FORM | headers)


def web_messages(container: Container) -> list[Interaction]:
    with container.session_factory() as db:
        query = select(Interaction).where(Interaction.channel == "web").order_by(Interaction.id)
        return list(db.scalars(query))


def callbacks(container: Container) -> list[Callback]:
    with container.session_factory() as db:
        return list(db.scalars(select(Callback).order_by(Callback.id)))


def test_the_page_shows_the_case_and_a_first_name_and_nothing_else_of_the_customer(
    wired: Container, browser: TestClient, staff: dict[str, str]
) -> None:
    _, case_id, _ = ana(wired, browser, staff)
    token = link(wired, case_id)

    page = browser.get(f"/l/{token}")

    assert page.status_code == 200, page.text
    assert '<html lang="es">' in page.text and "Hola, Ana" in page.text
    assert "Cargo no reconocido" in page.text and "abierta" in page.text
    for private in ("Pérez", "Gómez", "699", "ana.perez", "example.com", "Hipoteca", "tasación"):
        assert private not in page.text, private
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "same-origin"
    assert "<script>" not in page.text  # one external script, no inline code
    assert f'action="/l/{token}/messages"' in page.text and f'action="/l/{token}/callback"' in page.text

    english = browser.get(f"/l/{token}?lang=en")
    assert (
        '<html lang="en">' in english.text and "Hello Ana" in english.text and "Write to us" in english.text
    )


def test_the_page_speaks_the_links_language_and_masks_numbers_an_agent_typed_into_the_subject(
    wired: Container, browser: TestClient, staff: dict[str, str]
) -> None:
    nameless = customer(wired, (IdentityKind.PHONE, CALLER))
    case_id = open_case(browser, staff, nameless, "Call back on +34 699 000 111 or jo@example.com")
    texted(wired, nameless, case_id, "en")

    page = browser.get(f"/l/{link(wired, case_id)}", headers={"Accept-Language": "es-ES,es;q=0.9"})

    assert '<html lang="en">' in page.text and '<h1 id="greeting">Hello</h1>' in page.text
    assert "699" not in page.text and "jo@" not in page.text and "Call back on … or …" in page.text


def test_forged_garbled_unknown_and_expired_links_get_pages_that_reveal_nothing(
    wired: Container, browser: TestClient, staff: dict[str, str]
) -> None:
    _, case_id, other_case = ana(wired, browser, staff)
    forged = LinkTokens(b"not the service's secret, 32+ bytes").issue(
        case_id=other_case, link="chat", issued_at=utcnow()
    )
    unknown = link(wired, 999_999)
    expired = link(wired, case_id, issued_at=utcnow() - timedelta(days=8))

    nowhere = browser.get("/l/not-a-link")
    for token, status in ((forged, 404), ("A" * 300, 404), (unknown, 404), (expired, 410)):
        page = browser.get(f"/l/{token}")
        assert page.status_code == status, (token, page.text)
        assert page.headers["content-type"].startswith("text/html")
        if status == 404:  # a forged link to a real case reads exactly like garbage
            assert page.text == nowhere.text
        for private in ("Ana", "Cargo", "Hipoteca", "nonce", "form"):
            assert private not in page.text, (token, private)
        posted = post(browser, f"/l/{token}/messages", {"message": "hola", "nonce": "x"})
        assert posted.status_code == status
    assert "caducado" in browser.get(f"/l/{expired}").text
    assert web_messages(wired) == []


def test_writing_to_us_lands_a_web_message_in_the_links_case_and_on_the_timeline(
    wired: Container, browser: TestClient, staff: dict[str, str]
) -> None:
    who, case_id, later = ana(wired, browser, staff)
    token = link(wired, case_id)
    nonce = nonce_of(browser.get(f"/l/{token}"))

    sent = post(
        browser, f"/l/{token}/messages", {"message": " Sigo sin ver el abono.\r\n¿Cuándo? ", "nonce": nonce}
    )
    again = post(browser, f"/l/{token}/messages", {"message": "Sigo sin ver el abono.", "nonce": nonce})

    assert sent.status_code == 303 and sent.headers["location"] == f"/l/{token}?sent=message&lang=es"
    assert again.status_code == 303  # the same form twice (a double tap): recorded once
    [message] = web_messages(wired)
    assert (message.customer_id, message.case_id, message.direction) == (who, case_id, "inbound")
    assert message.summary == "Sigo sin ver el abono.\n¿Cuándo?" and message.case_id != later
    timeline = browser.get(f"/api/v1/customers/{who}/timeline", headers=staff).json()["items"]
    assert [(i["channel"], i["case_id"]) for i in timeline if i["channel"] == "web"] == [("web", case_id)]
    with wired.session_factory() as db:
        [step] = db.scalars(select(Touchpoint).where(Touchpoint.interaction_id == message.id)).all()
    assert (step.kind, step.text) == ("message", message.summary)
    confirmation = browser.get(sent.headers["location"])
    assert "Hemos recibido su mensaje" in confirmation.text


def test_a_resolved_case_says_it_is_closed_offers_no_call_and_a_message_reopens_it(
    wired: Container, browser: TestClient, staff: dict[str, str]
) -> None:
    _, case_id, _ = ana(wired, browser, staff)
    assert browser.post(f"/api/v1/cases/{case_id}/resolve", json={}, headers=staff).status_code == 200
    token = link(wired, case_id)

    page = browser.get(f"/l/{token}")
    assert "Esta solicitud está cerrada" in page.text and "cerrada" in page.text
    assert "/callback" not in page.text
    call = post(browser, f"/l/{token}/callback", {"when": "now", "nonce": nonce_of(page)})
    assert call.status_code == 422 and "escríbanos y la reabriremos" in call.text
    assert callbacks(wired) == [] and web_messages(wired) == []

    sent = post(browser, f"/l/{token}/messages", {"message": "Vuelve a pasar", "nonce": nonce_of(call)})

    assert sent.status_code == 303
    with wired.session_factory() as db:
        case = db.get(Case, case_id)
        assert case is not None and (case.status, case.reopened_count) == ("open", 1)
    [message] = web_messages(wired)
    assert message.case_id == case_id and message.attributes["reopened_case"] is True


@pytest.mark.usefixtures("any_time", "general")
def test_call_me_now_books_a_web_callback_in_the_links_case(
    wired: Container, browser: TestClient, staff: dict[str, str]
) -> None:
    who, case_id, later = ana(wired, browser, staff)
    token = link(wired, case_id)

    booked = post(
        browser, f"/l/{token}/callback", {"when": "now", "nonce": nonce_of(browser.get(f"/l/{token}"))}
    )

    assert booked.status_code == 303, booked.text
    assert booked.headers["location"].startswith(f"/l/{token}?sent=callback&lang=es")
    [callback] = callbacks(wired)
    assert (callback.case_id, callback.customer_id, callback.phone) == (case_id, who, CALLER)
    assert (callback.source, callback.status, callback.queue) == ("web", "waiting", "general")
    assert callback.context["link"] == "chat" and callback.context["asked_for"] == "now"
    [request] = web_messages(wired)
    assert (request.case_id, request.outcome, request.id) == (
        case_id,
        "callback_requested",
        callback.interaction_id,
    )
    with wired.session_factory() as db:
        case = db.get(Case, case_id)
        assert case is not None and case.attributes["callbacks"][-1]["callback_id"] == callback.id
    assert later != case_id
    confirmation = browser.get(booked.headers["location"])
    assert "le llamaremos en cuanto haya un agente libre" in confirmation.text
    assert CALLER[3:] not in confirmation.text


@pytest.mark.usefixtures("general")
def test_call_me_then_books_for_that_time_on_the_customers_clock(
    wired: Container, browser: TestClient, staff: dict[str, str]
) -> None:
    _, case_id, _ = ana(wired, browser, staff)
    token = link(wired, case_id)
    day = (datetime.now(MADRID) + timedelta(days=3)).date()
    fields = {"when": "at", "at": f"{day.isoformat()}T17:30", "tz": "Europe/Madrid"}

    booked = post(browser, f"/l/{token}/callback", fields | {"nonce": nonce_of(browser.get(f"/l/{token}"))})

    assert booked.status_code == 303, booked.text
    [callback] = callbacks(wired)
    assert callback.status == "requested"
    assert callback.due_at == datetime(day.year, day.month, day.day, 17, 30, tzinfo=MADRID)
    confirmation = browser.get(booked.headers["location"])
    assert f"el {day.day}/{day.month} a las 17:30" in confirmation.text


@pytest.mark.usefixtures("general")
def test_refusals_are_shown_in_words_keep_the_form_and_book_nothing(
    wired: Container, browser: TestClient, staff: dict[str, str]
) -> None:
    _, case_id, _ = ana(wired, browser, staff)
    token = link(wired, case_id)
    page = browser.get(f"/l/{token}")
    tomorrow = (datetime.now(MADRID) + timedelta(days=1)).date()
    late = f"{tomorrow.isoformat()}T23:30"
    yesterday = f"{(tomorrow - timedelta(days=2)).isoformat()}T10:00"

    night = post(
        browser,
        f"/l/{token}/callback",
        {"when": "at", "at": late, "tz": "Europe/Madrid", "nonce": nonce_of(page)},
    )
    past = post(browser, f"/l/{token}/callback", {"when": "at", "at": yesterday, "nonce": nonce_of(page)})
    nonsense = post(browser, f"/l/{token}/callback", {"when": "at", "at": "mañana", "nonce": nonce_of(page)})
    assert browser.post("/api/v1/do-not-call", json={"numbers": [CALLER]}, headers=staff).status_code == 200
    listed = post(browser, f"/l/{token}/callback", {"when": "now", "nonce": nonce_of(page)})

    assert night.status_code == 422 and "fuera de nuestro horario de llamadas" in night.text
    # 09:00 in the Canaries, where a Spanish mobile may also be, is 10:00 on the customer's clock.
    assert "La primera hora posible es el" in night.text and "a las 10:00" in night.text
    assert f'value="{late}"' in night.text  # the time asked for stays in the form
    assert past.status_code == 422 and "Esa hora ya ha pasado" in past.text
    assert nonsense.status_code == 422 and "Elija un día y una hora" in nonsense.text
    assert listed.status_code == 422 and "lista de no llamar" in listed.text
    assert CALLER[3:] not in listed.text
    assert callbacks(wired) == [] and web_messages(wired) == []  # the request itself was rolled back


def test_oversize_empty_and_overlong_messages_are_refused_and_write_nothing(
    wired: Container, browser: TestClient, staff: dict[str, str]
) -> None:
    _, case_id, _ = ana(wired, browser, staff)
    token = link(wired, case_id)
    nonce = nonce_of(browser.get(f"/l/{token}"))

    huge = post(browser, f"/l/{token}/messages", {"message": "x" * 20_000, "nonce": nonce})
    empty = post(browser, f"/l/{token}/messages", {"message": " \n ", "nonce": nonce})
    overlong = post(browser, f"/l/{token}/messages", {"message": "é" * 2001, "nonce": nonce})
    as_json = browser.post(f"/l/{token}/messages", json={"message": "hola", "nonce": nonce})

    assert huge.status_code == 413 and "demasiado grande" in huge.text
    assert empty.status_code == 422 and "Escriba un mensaje" in empty.text
    assert overlong.status_code == 422 and "como máximo 2000 caracteres" in overlong.text
    assert "é" * 2001 in overlong.text  # what they wrote is still in the form
    assert as_json.status_code == 415
    assert web_messages(wired) == []
    fine = post(browser, f"/l/{token}/messages", {"message": "Ahora sí", "nonce": nonce})
    assert fine.status_code == 303 and len(web_messages(wired)) == 1  # the refusals did not use the form up


def test_a_post_needs_a_nonce_from_this_links_page_and_this_origin(
    wired: Container, browser: TestClient, staff: dict[str, str]
) -> None:
    _, case_id, other_case = ana(wired, browser, staff)
    token, other = link(wired, case_id), link(wired, other_case)
    nonce = nonce_of(browser.get(f"/l/{token}"))
    message = {"message": "Hola"}

    missing = post(browser, f"/l/{token}/messages", message)
    borrowed = post(browser, f"/l/{other}/messages", message | {"nonce": nonce})
    foreign = post(browser, f"/l/{token}/messages", message | {"nonce": nonce}, Origin="https://evil.example")
    cross = post(
        browser, f"/l/{token}/messages", message | {"nonce": nonce}, **{"Sec-Fetch-Site": "cross-site"}
    )

    for refused in (missing, borrowed, foreign, cross):
        assert (
            refused.status_code == 403
            and 'name="message"' in refused.text
            and ">Hola</textarea>" in refused.text
        )
    assert web_messages(wired) == []
    ours = post(browser, f"/l/{token}/messages", message | {"nonce": nonce}, Origin="http://testserver")
    assert ours.status_code == 303 and len(web_messages(wired)) == 1
    # A current browser says where the form came from itself; its Origin may then be "null".
    nonce = nonce_of(browser.get(f"/l/{token}"))
    same = post(
        browser,
        f"/l/{token}/messages",
        message | {"nonce": nonce},
        Origin="null",
        **{"Sec-Fetch-Site": "same-origin"},
    )
    assert same.status_code == 303 and len(web_messages(wired)) == 2


def test_each_link_may_post_only_a_few_messages_in_a_while(
    wired: Container, browser: TestClient, staff: dict[str, str]
) -> None:
    _, case_id, _ = ana(wired, browser, staff)
    token = link(wired, case_id)

    answers = [
        post(
            browser,
            f"/l/{token}/messages",
            {"message": f"mensaje {n}", "nonce": nonce_of(browser.get(f"/l/{token}"))},
        )
        for n in range(7)
    ]

    assert [a.status_code for a in answers] == [303] * 6 + [429]
    assert "Espere unos minutos" in answers[-1].text and "mensaje 6</textarea>" in answers[-1].text
    assert len(web_messages(wired)) == 6
