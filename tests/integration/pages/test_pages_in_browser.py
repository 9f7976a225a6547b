"""The wallboard, the journey map and a customer's page in headless Chromium against a running service,
with data put in through the service's own API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pages_site import Site, sign_in, unique
from playwright.sync_api import expect


def now() -> str:
    return datetime.now(UTC).isoformat()


def call(site: Site, phone: str, *steps: dict[str, Any], **fields: Any) -> int:
    """An inbound call through the IVR: the interaction, then its steps, as the voice layer records them."""
    body = {
        "identity": {"kind": "phone", "value": phone},
        "channel": "voice",
        "direction": "inbound",
        "started_at": now(),
        "attributes": {"flow": "banco_es"},
    } | fields
    interaction = site.api("POST", "/api/v1/interactions", body)
    for step in steps:
        site.api("POST", f"/api/v1/interactions/{interaction['id']}/touchpoints", step)
    return int(interaction["id"])


def ivr(node: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "ivr_node", "node": node} | fields


def queued(queue: str) -> dict[str, Any]:
    return {"kind": "queue_enter", "attributes": {"queue": queue}}


def chart_option(page: Any, element_id: str) -> Any:
    """The option an ECharts chart on the page was drawn with (its data, not its pixels)."""
    return page.evaluate(f"echarts.getInstanceByDom(document.getElementById('{element_id}')).getOption()")


# --- signing in -----------------------------------------------------------------------------------------


def test_a_page_asks_for_a_key_and_refuses_a_wrong_one(page: Any, site: Site) -> None:
    page.goto("/journey-map")
    expect(page).to_have_url(f"{site.base}/sign-in?next=/journey-map")
    page.fill("#key", "cnt_wrong-key")
    page.click("form.sign-in button[type=submit]")
    expect(page.locator("#sign-in-error")).to_have_text("Unknown or revoked API key.")
    assert "cnt_wrong-key" not in page.url and "cnt_wrong-key" not in page.content()
    page.fill("#key", site.manager_key)
    page.click("form.sign-in button[type=submit]")
    expect(page).to_have_url(re.compile(re.escape(f"{site.base}/journey-map") + r"(\?.*)?$"))
    expect(page.locator("header .who")).to_contain_text("floor manager")
    cookie = next(c for c in page.context.cookies() if c["name"] == "centralita_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts on the page cannot read the key


def test_an_agent_key_may_not_see_the_wallboard(page: Any, site: Site) -> None:
    sign_in(page, site.agent_key, "/customers/1")
    page.goto("/wallboard")
    expect(page.locator("main")).to_contain_text("needs reports:read")


# --- the wallboard --------------------------------------------------------------------------------------


def test_the_wallboard_shows_queues_and_updates_live_when_a_call_queues(page: Any, site: Site) -> None:
    queue = unique("billing")
    call(site, "+34600100001", ivr("welcome"), queued(queue))
    sign_in(page, site.manager_key)
    expect(page.locator("#connection")).to_have_text("live")
    row = page.locator(f'#queues tr[data-queue="{queue}"]')
    expect(row.locator("[data-field=waiting]")).to_have_text("1")
    expect(row.locator("[data-field=service-level]")).to_contain_text("80%")  # the queue's default target

    call(site, "+34600100002", ivr("welcome"), queued(queue))  # no reload: the stream brings it
    expect(row.locator("[data-field=waiting]")).to_have_text("2", timeout=5_000)
    waiting = int(page.locator("#total-waiting").inner_text())
    assert waiting >= 2


def test_the_wallboard_shows_agents_by_state_as_they_change(page: Any, site: Site) -> None:
    name = unique("agent")
    agent = site.api(
        "POST",
        "/api/v1/agents",
        {"name": name, "display_name": name.title(), "home_endpoint": f"PJSIP/{name}"},
    )
    sign_in(page, site.manager_key)
    state = page.locator(f'#agents tr[data-agent="{name}"] [data-field=state]')
    expect(state).to_have_text("logged out")
    ready_before = int(page.locator("#agent-states [data-state=ready] .count").inner_text())

    site.api("POST", f"/api/v1/agents/{agent['id']}/login")
    expect(state).to_have_text("ready", timeout=5_000)
    expect(page.locator("#agent-states [data-state=ready] .count")).to_have_text(str(ready_before + 1))
    site.api("POST", f"/api/v1/agents/{agent['id']}/pause", {"reason": "lunch"})
    expect(state).to_have_text("paused (lunch)", timeout=5_000)


def test_the_wallboard_draws_campaign_abandonment_against_the_3_percent_line(page: Any, site: Site) -> None:
    campaign = unique("renewals")
    site.api(
        "POST",
        "/api/v1/interactions",
        {
            "identity": {"kind": "phone", "value": "+34600100003"},
            "channel": "voice",
            "direction": "outbound",
            "started_at": now(),
            "campaign": campaign,
            "outcome": "completed",
        },
    )
    sign_in(page, site.manager_key)
    expect(page.locator(f'#campaigns tr[data-campaign="{campaign}"]')).to_be_visible()
    option = chart_option(page, "campaigns-chart")
    assert campaign in option["xAxis"][0]["data"]
    (line,) = option["series"][1]["markLine"]["data"]
    assert line["yAxis"] == 3
    expect(page.locator("#campaigns-chart svg text", has_text="3% limit")).to_have_count(1)


def test_the_wallboard_reconnects_when_the_stream_fails(page: Any, site: Site) -> None:
    attempts: list[str] = []

    def first_fails(route: Any) -> None:
        attempts.append(route.request.url)
        if len(attempts) == 1:
            route.fulfill(status=503, body="restarting")
        else:
            route.continue_()

    page.route("**/api/v1/stats/stream", first_fails)
    sign_in(page, site.manager_key)
    expect(page.locator("#connection")).to_have_text("live", timeout=8_000)
    assert len(attempts) >= 2
    expect(page.locator("#total-contacts")).to_have_text(re.compile(r"^\d+$"))


# --- the journey map ------------------------------------------------------------------------------------


def test_the_journey_map_draws_the_seeded_transitions_as_a_sankey(page: Any, site: Site) -> None:
    queue = unique("cards")
    answered = call(
        site,
        "+34600200001",
        ivr("welcome"),
        {"kind": "menu_choice", "node": "main-menu", "input": "2"},
        queued(queue),
        {"kind": "agent_connect"},
    )
    site.api("POST", f"/api/v1/interactions/{answered}/close", {"outcome": "completed"})
    site.api(
        "POST",
        "/api/v1/interactions",
        {
            "identity": {"kind": "phone", "value": "+34600200001"},
            "channel": "sms",
            "direction": "outbound",
            "started_at": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
            "summary": "Your new card is on its way",
        },
    )
    hung_up = call(site, "+34600200002", ivr("welcome"), queued(queue))
    site.api("POST", f"/api/v1/interactions/{hung_up}/close", {"outcome": "abandoned"})

    sign_in(page, site.manager_key, "/journey-map")
    page.fill("#filters [name=queue]", queue)
    page.click("#filters button[type=submit]")
    expect(page.locator("#summary")).to_have_text("2 journeys · 1 dropped off")

    series = chart_option(page, "sankey")["series"][0]
    links = {(k["source"], k["target"]): k["value"] for k in series["links"]}
    assert links == {
        ("0:voice", "1:ivr:welcome"): 2,
        ("1:ivr:welcome", "2:ivr:main-menu"): 1,
        ("2:ivr:main-menu", f"3:queue:{queue}"): 1,
        (f"3:queue:{queue}", "4:agent"): 1,
        ("4:agent", "5:sms (outbound)"): 1,
        ("1:ivr:welcome", f"2:queue:{queue}"): 1,
        (f"2:queue:{queue}", "dropped off"): 1,
    }
    assert {n["name"]: n["value"] for n in series["data"]}["1:ivr:welcome"] == 2
    sankey = page.locator("#sankey svg")
    expect(sankey.locator("text", has_text="IVR · welcome (2)")).to_have_count(1)
    expect(sankey.locator("text", has_text="dropped off (1)")).to_have_count(1)
    drop = page.locator(f'#ends tr[data-node="2:queue:{queue}"] td')
    expect(drop.nth(3)).to_have_text("1")
    assert f"queue={queue}" in page.url  # the filters are in the address, to bookmark

    page.fill("#filters [name=from]", "2020-01-01")
    page.fill("#filters [name=to]", "2020-01-31")
    page.click("#filters button[type=submit]")
    expect(page.locator("#summary")).to_have_text("No journeys in this period with these filters.")
    assert chart_option(page, "sankey")["series"][0]["links"] == []


# --- a customer's page ----------------------------------------------------------------------------------


def test_the_customer_page_shows_the_timeline_with_cases_ivr_steps_and_messages(
    page: Any, site: Site
) -> None:
    customer = site.api(
        "POST",
        "/api/v1/customers",
        {
            "name": "Lucía Gómez",
            "identities": [
                {"kind": "phone", "value": "+34600300001"},
                {"kind": "email", "value": "lucia@example.com"},
            ],
            "preferred_language": "es",
        },
    )
    start = datetime.now(UTC) - timedelta(hours=1)
    voice = site.api(
        "POST",
        "/api/v1/interactions",
        {
            "customer_id": customer["id"],
            "channel": "voice",
            "direction": "inbound",
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=3)).isoformat(),
            "outcome": "transferred",
            "queue": "billing",
        },
    )
    for step in (
        ivr("welcome"),
        {"kind": "speech", "node": "ask-reason", "text": "quiero ver mi factura", "confidence": 0.91},
        queued("billing"),
    ):
        site.api("POST", f"/api/v1/interactions/{voice['id']}/touchpoints", step)
    sms = site.api(
        "POST",
        "/api/v1/interactions",
        {
            "customer_id": customer["id"],
            "channel": "sms",
            "direction": "outbound",
            "started_at": (start + timedelta(minutes=10)).isoformat(),
            "summary": "Su factura de noviembre: https://example.com/f/123",
        },
    )
    site.api(
        "POST",
        "/api/v1/interactions",
        {
            "customer_id": customer["id"],
            "channel": "email",
            "direction": "inbound",
            "started_at": (start + timedelta(minutes=30)).isoformat(),
            "subject": "Re: factura",
            "summary": "Gracias, ya la tengo.",
        },
    )
    case = site.api(
        "POST",
        "/api/v1/cases",
        {
            "customer_id": customer["id"],
            "subject": "Factura de noviembre",
            "interaction_ids": [voice["id"], sms["id"]],
        },
    )

    sign_in(page, site.agent_key, f"/customers/{customer['id']}")
    expect(page.locator("#customer-name")).to_have_text("Lucía Gómez")
    expect(page.locator("#customer-facts")).to_contain_text("lucia@example.com")
    entries = page.locator("#timeline > li")
    expect(entries).to_have_count(3)
    assert [entries.nth(i).get_attribute("data-channel") for i in range(3)] == ["email", "sms", "voice"]
    expect(entries.nth(0)).to_contain_text("Re: factura")
    expect(entries.nth(1)).to_contain_text("Su factura de noviembre")
    expect(entries.nth(1)).to_contain_text("case #" + str(case["id"]))
    call_entry = entries.nth(2)
    expect(call_entry.locator(".steps li")).to_have_count(3)
    expect(call_entry.locator(".steps li[data-kind=speech]")).to_contain_text("quiero ver mi factura")
    expect(call_entry.locator(".steps li[data-kind=speech]")).to_contain_text("91% sure")
    expect(call_entry).to_contain_text("3:00")
    expect(page.locator(f'#cases li[data-case="{case["id"]}"]')).to_contain_text("Factura de noviembre")

    page.select_option("#channel-filter", "sms")
    expect(entries).to_have_count(1)
    expect(entries.nth(0)).to_have_attribute("data-channel", "sms")

    page.goto("/customers/999999")
    page.fill("#find-customer-q", "Lucia@Example.com")  # the header's finder, by email
    page.press("#find-customer-q", "Enter")
    expect(page).to_have_url(f"{site.base}/customers/{customer['id']}")


def test_the_customer_page_says_when_there_is_no_such_customer(page: Any, site: Site) -> None:
    sign_in(page, site.agent_key, "/customers/999999")
    expect(page.locator("#error")).to_have_text("There is no customer 999999.")
