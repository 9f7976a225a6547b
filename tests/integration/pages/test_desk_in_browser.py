"""The agent's desk in headless Chromium against a running `centralita serve`: state changes from the
buttons and from the event stream, a screen pop from a real call through the FastAGI console caller into a
Centralita queue, refusals in the API's words, who may open which desk, and a preview campaign worked from
the page on the simulated dialer.

This module runs a service of its own (the `site` fixture below replaces the session's): it serves one more
IVR flow, `desk_test`, that queues callers to the desk's queue, and dials preview calls on the simulated
network, 60 times faster than real time.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pages_site import Site, sign_in, unique
from playwright.sync_api import expect
from served import free_port, http, run_cli, serving

QUEUE = "desk_billing"
DESK_FLOW = f"""\
name: desk_test
languages: [en]
default_language: en
start: identify
nodes:
  identify:
    kind: lookup
    by: caller
    found: account
    not_found: account
  account:
    kind: collect
    variable: account
    max_length: 8
    prompt:
      en: Type your account number, then the hash key.
    no_input_prompt:
      en: Type your account number, then the hash key.
    no_match_prompt:
      en: That is not an account number.
    on_failure: billing
    next: billing
  billing:
    kind: queue
    queue: {QUEUE}
    skills: [{QUEUE}]
    prompt:
      en: Putting you through to billing.
"""
EVERY_DAY = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


@dataclass(frozen=True)
class DeskSite(Site):
    env: dict[str, str] = field(default_factory=dict)
    home: Path = Path()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskSite]:
    home = tmp_path_factory.mktemp("desk")
    flows = home / "flows"
    flows.mkdir()
    (flows / "desk_test.yaml").write_text(DESK_FLOW)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CENTRALITA_")}
    env = clean | {
        "CENTRALITA_DATABASE_URL": f"sqlite:///{home / 'cc.db'}",
        "CENTRALITA_LOG_LEVEL": "WARNING",
        "CENTRALITA_AGI_PORT": str(free_port()),
        "CENTRALITA_AUDIOSOCKET_PORT": str(free_port()),
        "CENTRALITA_EXTRA_FLOWS_DIRS": str(flows),
        "CENTRALITA_DIALER_NETWORK": "simulated",
        "CENTRALITA_DIALER_SIMULATION_SPEED": "60",
    }
    created = run_cli("keys", "create", "--role", "admin", "--name", "desk admin", env=env, cwd=home)
    assert created.returncode == 0, created.stderr
    admin = created.stdout.strip().splitlines()[-1]
    with serving(env=env, cwd=home) as (_, base):
        manager = http("POST", f"{base}/api/v1/keys", admin, {"role": "manager", "name": "floor manager"})[1]
        agent = http("POST", f"{base}/api/v1/keys", admin, {"role": "agent", "name": "nobody's desk"})[1]
        site = DeskSite(base, admin, manager["key"], agent["key"], env=env, home=home)
        site.api(
            "POST", "/api/v1/queues", {"name": QUEUE, "skills": [{"skill": QUEUE}], "wrap_up_seconds": 600}
        )
        yield site


def make_agent(site: Site, *, skills: tuple[str, ...] = (), home: bool = True) -> tuple[dict[str, Any], str]:
    """An agent linked to a key of its own: (the agent, the key)."""
    name = unique("agent")
    key = site.api("POST", "/api/v1/keys", {"role": "agent", "name": f"{name}'s desk"})
    body: dict[str, Any] = {"name": name, "display_name": name.title(), "api_key_id": key["id"]}
    if home:
        body["home_endpoint"] = f"PJSIP/{name}"
    if skills:
        body["skills"] = [{"skill": skill, "level": 5} for skill in skills]
    return site.api("POST", "/api/v1/agents", body), key["key"]


def open_desk(page: Any, key: str, path: str = "/desk") -> None:
    sign_in(page, key, path)
    expect(page.locator("#connection")).to_have_text("live")


def state(page: Any) -> Any:
    return page.locator("#agent-state")


# --- the state bar --------------------------------------------------------------------------------------


def test_an_agent_logs_in_pauses_with_a_reason_and_becomes_ready(page: Any, site: DeskSite) -> None:
    agent, key = make_agent(site)
    open_desk(page, key)
    expect(page.locator("#agent-name")).to_contain_text(agent["display_name"])
    expect(state(page)).to_have_text("logged out")
    expect(state(page)).to_have_attribute("aria-live", "polite")
    for button in ("#ready", "#pause", "#logout"):
        expect(page.locator(button)).to_be_disabled()
    expect(page.locator("#login-endpoint")).to_have_attribute("placeholder", agent["home_endpoint"])

    page.click("#login")  # on the home phone
    expect(state(page)).to_have_text("ready")
    expect(page.locator("#state-detail")).to_contain_text(f"on {agent['home_endpoint']}")
    expect(page.locator("#login")).to_be_disabled()
    expect(page.locator("#ready")).to_be_disabled()

    page.select_option("#pause-reason", "lunch")
    page.click("#pause")
    expect(state(page)).to_have_text("paused (lunch)")
    page.click("#ready")
    expect(state(page)).to_have_text("ready")

    page.select_option("#pause-reason", "")  # other: a reason of their own
    page.fill("#pause-other", "doctor's appointment")
    page.click("#pause")
    expect(state(page)).to_have_text("paused (doctor's appointment)")

    # A supervisor changes it behind the page's back: the stream brings it, no reload.
    site.api("POST", f"/api/v1/agents/{agent['id']}/pause", {"reason": "coaching"})
    expect(state(page)).to_have_text("paused (coaching)")
    page.click("#logout")
    expect(state(page)).to_have_text("logged out")
    history = site.api("GET", f"/api/v1/agents/{agent['id']}/history")
    assert [h["state"] for h in history][:3] == ["logged_out", "paused", "paused"]
    assert history[0]["actor"] == f"{agent['name']}'s desk"  # the change was the agent's key's own


def test_a_refused_change_shows_the_apis_message_and_the_state_stays(page: Any, site: DeskSite) -> None:
    holder, _ = make_agent(site)
    site.api("POST", f"/api/v1/agents/{holder['id']}/login")
    agent, key = make_agent(site, home=False)
    open_desk(page, key)

    page.click("#login")  # no home phone, none typed
    expect(page.locator("#state-error")).to_have_text(
        "give the endpoint to log in on: the agent has no home endpoint"
    )
    expect(state(page)).to_have_text("logged out")

    page.fill("#login-endpoint", holder["home_endpoint"])  # another agent's phone
    page.click("#login")
    expect(page.locator("#state-error")).to_have_text(
        f"{holder['home_endpoint']} is held by agent '{holder['name']}': they must log out first"
    )
    expect(state(page)).to_have_text("logged out")
    expect(page.locator("#login")).to_be_enabled()

    page.fill("#login-endpoint", f"PJSIP/{agent['name']}-desk")
    page.click("#login")
    expect(state(page)).to_have_text("ready")
    expect(page.locator("#state-error")).to_be_hidden()


def test_the_desk_shows_no_state_until_the_stream_answers(page: Any, site: DeskSite) -> None:
    agent, key = make_agent(site)
    site.api("POST", f"/api/v1/agents/{agent['id']}/login")
    attempts: list[str] = []

    def fails_twice(route: Any) -> None:
        attempts.append(route.request.url)
        if len(attempts) <= 2:
            route.fulfill(status=503, body="restarting")
        else:
            route.continue_()

    page.route(f"**/api/v1/agents/{agent['id']}/events", fails_twice)
    sign_in(page, key, "/desk")
    expect(page.locator("#connection")).to_have_text(re.compile(r"^reconnecting…"))
    expect(state(page)).to_have_text("state not known yet")
    expect(page.locator("#logout")).to_be_disabled()
    expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
    expect(state(page)).to_have_text("ready")
    expect(page.locator("#logout")).to_be_enabled()
    assert len(attempts) == 3


class CuttableLine:
    """A TCP relay between the browser and the service that can cut every connection through it and refuse
    new ones: a network drop, with the service still up."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.down = False
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.open |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            with self.lock:
                self.open.discard(source)
            source.close()  # each socket is the source of one pump: closed once

    def cut(self, *, down: bool) -> None:
        """`down`: cut every connection and refuse new ones; else let them through again."""
        self.down = down
        if down:
            with self.lock:
                for end in self.open:
                    with contextlib.suppress(OSError):
                        end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.cut(down=True)
        self.listener.close()


def test_the_desk_never_shows_a_stale_state_and_reconnects_after_a_drop(browser: Any, site: DeskSite) -> None:
    agent, key = make_agent(site)
    site.api("POST", f"/api/v1/agents/{agent['id']}/login")
    line = CuttableLine(site.base)
    context = browser.new_context(base_url=line.base)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        open_desk(page, key)
        expect(state(page)).to_have_text("ready")

        line.cut(down=True)
        expect(page.locator("#connection")).to_have_text(re.compile(r"^reconnecting…"))
        expect(state(page)).to_have_text("not known while reconnecting")
        expect(page.locator("#state-detail")).to_have_text("last known: ready")
        expect(page.locator("#pause")).to_be_disabled()
        site.api("POST", f"/api/v1/agents/{agent['id']}/pause", {"reason": "lunch"})  # while the line is down

        line.cut(down=False)
        expect(page.locator("#connection")).to_have_text("live", timeout=30_000)
        expect(state(page)).to_have_text("paused (lunch)")
        expect(page.locator("#ready")).to_be_enabled()
    finally:
        context.close()
        line.close()
    assert not errors, errors


# --- the screen pop -------------------------------------------------------------------------------------


def call(site: DeskSite, caller: str, keys: str) -> str:
    """A call through the console caller into `desk_test`: it waits in the desk's queue, the agent's phone
    rings and answers, the caller hangs up. Returns what the caller heard."""
    done = run_cli("call", "desk_test", "--from", caller, "--input", keys, env=site.env, cwd=site.home)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_call_offered_pops_the_caller_with_what_the_ivr_collected_and_their_timeline(
    page: Any, site: DeskSite
) -> None:
    phone = "+34600400001"
    customer = site.api(
        "POST",
        "/api/v1/customers",
        {"name": "Marta Ruiz", "identities": [{"kind": "phone", "value": phone}]},
    )
    earlier = datetime.now(UTC) - timedelta(days=2)
    sms = site.api(
        "POST",
        "/api/v1/interactions",
        {
            "customer_id": customer["id"],
            "channel": "sms",
            "direction": "inbound",
            "started_at": earlier.isoformat(),
            "summary": "My invoice is wrong again",
        },
    )
    email = site.api(
        "POST",
        "/api/v1/interactions",
        {
            "customer_id": customer["id"],
            "channel": "email",
            "direction": "outbound",
            "started_at": (earlier + timedelta(hours=1)).isoformat(),
            "subject": "About your invoice",
        },
    )
    case = site.api(
        "POST",
        "/api/v1/cases",
        {
            "customer_id": customer["id"],
            "subject": "Wrong invoice",
            "interaction_ids": [sms["id"], email["id"]],
        },
    )
    _, key = make_agent(site, skills=(QUEUE,))
    open_desk(page, key)
    page.click("#login")
    expect(state(page)).to_have_text("ready")

    heard = call(site, phone, "12345#")
    assert "Putting you through to billing." in heard

    pop = page.locator("#pop")
    expect(pop).to_be_visible()
    expect(page.locator("#pop-title")).to_have_text("Call from Marta Ruiz")
    expect(pop.locator("[data-field=caller]")).to_have_text(phone)
    expect(pop.locator("[data-field=queue]")).to_have_text(QUEUE)
    expect(pop.locator("[data-ivr=account]")).to_have_text("account: 12345")
    expect(pop.locator("[data-ivr=flow]")).to_have_text("flow: desk_test")
    expect(pop.locator(f'[data-field=cases] [data-case="{case["id"]}"]')).to_contain_text("Wrong invoice")
    expect(page.locator("#pop-announce")).to_contain_text("Call offered from Marta Ruiz")

    entries = page.locator("#pop-timeline > li")
    expect(entries).to_have_count(3)  # every channel, newest first: this call, the email, the text
    assert [entries.nth(i).get_attribute("data-channel") for i in range(3)] == ["voice", "email", "sms"]
    expect(entries.nth(1)).to_contain_text("About your invoice")
    expect(entries.nth(2)).to_contain_text("My invoice is wrong again")
    expect(entries.nth(2)).to_contain_text(f"case #{case['id']}: Wrong invoice")

    # The caller hung up after talking: wrap-up, with its time left, that the agent may end.
    expect(state(page)).to_have_text("wrap-up")
    expect(page.locator("#state-detail")).to_have_text(re.compile(r"^\d+:\d\d left$"))
    expect(page.locator("#ready")).to_have_text("End wrap-up")
    page.click("#ready")
    expect(state(page)).to_have_text("ready")

    call(site, "+34600400999", "99#")  # a number nobody has named: an unknown caller
    expect(page.locator("#pop-title")).to_have_text("Call from unknown caller")
    expect(pop.locator("[data-field=caller]")).to_have_text("+34600400999")
    expect(page.locator("#pop-timeline > li")).to_have_count(1)  # this call, and nothing before it
    expect(page.locator("#pop-timeline > li").nth(0)).to_have_attribute("data-channel", "voice")


# --- who may open which desk ----------------------------------------------------------------------------


def test_a_key_without_an_agent_gets_a_page_saying_so(page: Any, site: DeskSite) -> None:
    sign_in(page, site.agent_key, "/desk")
    expect(page.locator("main h1")).to_have_text("No agent uses this key")
    expect(page.locator("#desk-notice")).to_contain_text("is not linked to an agent")


def test_an_agent_cannot_open_another_agents_desk(page: Any, site: DeskSite) -> None:
    other, _ = make_agent(site)
    _, key = make_agent(site)
    sign_in(page, key, "/desk")
    answer = page.goto(f"/desk?agent={other['id']}")
    assert answer is not None and answer.status == 403
    expect(page.locator("#desk-notice")).to_have_text(
        f"This key may act only on its own agent, not agent {other['id']}."
    )
    expect(page.locator("#agent-state")).to_have_count(0)


def test_a_manager_opens_any_agents_desk_from_the_list(page: Any, site: DeskSite) -> None:
    agent, _ = make_agent(site)
    sign_in(page, site.manager_key, "/desk")
    expect(page.locator("main h1")).to_have_text("No agent uses this key")
    page.click(f'.agent-list a[href="/desk?agent={agent["id"]}"]')
    expect(page.locator("#connection")).to_have_text("live")
    page.click("#login")
    expect(state(page)).to_have_text("ready")
    assert site.api("GET", f"/api/v1/agents/{agent['id']}")["status"]["state"] == "ready"


# --- preview campaigns ----------------------------------------------------------------------------------


def preview_campaign(site: DeskSite, endpoint: str, phones: list[str]) -> dict[str, Any]:
    campaign = site.api(
        "POST",
        "/api/v1/campaigns",
        {
            "name": unique("renewals"),
            "mode": "preview",
            "country": "GB",
            "caller_id": "020 7946 0000",
            "company_name": "Northwind Broadband",
            "queue": "renewals",
            "schedule": {"time_zone": "Europe/London"},
            "callee_hours": EVERY_DAY,
            "abandon_message": "This was Northwind Broadband. Call us back on 020 7946 0000. Thank you.",
            "agents": [endpoint],
            "preview_timeout_seconds": 3600,
            "retry_delays": {"no_contact": 8_640_000, "skipped": 8_640_000},
        },
    )
    rows = "".join(f"{phone},Contact {i}\n" for i, phone in enumerate(phones))
    request = urllib.request.Request(
        f"{site.base}/api/v1/campaigns/{campaign['id']}/lists",
        data=f"phone,name\n{rows}".encode(),
        method="POST",
        headers={"Authorization": f"Bearer {site.admin_key}", "Content-Type": "text/csv"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
    site.api("POST", f"/api/v1/campaigns/{campaign['id']}/start")
    return campaign


def test_an_agent_works_a_preview_campaign_next_skip_dial_and_disposition(page: Any, site: DeskSite) -> None:
    phones = ["+447400123401", "+447400123402", "+447400123403"]
    known = site.api(
        "POST",
        "/api/v1/customers",
        {"name": "Oliver Hughes", "identities": [{"kind": "phone", "value": phones[1]}]},
    )
    site.api(
        "POST",
        "/api/v1/interactions",
        {
            "customer_id": known["id"],
            "channel": "email",
            "direction": "inbound",
            "started_at": (datetime.now(UTC) - timedelta(days=3)).isoformat(),
            "subject": "Thinking of leaving",
        },
    )
    agent, key = make_agent(site)
    campaign = preview_campaign(site, agent["home_endpoint"], phones)
    open_desk(page, key)
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#campaign option")).to_have_text(f"{campaign['name']} ({agent['home_endpoint']})")

    page.click("#next-contact")
    facts = page.locator("#contact-facts")
    expect(facts.locator("[data-field=phone]")).to_have_text(phones[0])
    expect(facts.locator("[data-field=name]")).to_have_text("Contact 0")
    page.fill("#skip-reason", "renewed last week")
    page.check("#skip-final")
    page.click("#skip")
    expect(page.locator("#preview-status")).to_have_text(f"Skipped {phones[0]}: not called again.")
    expect(page.locator("#contact")).to_be_hidden()

    page.click("#next-contact")
    expect(facts.locator("[data-field=phone]")).to_have_text(phones[1])
    expect(page.locator("#contact-timeline > li[data-channel=email]")).to_contain_text("Thinking of leaving")
    expect(page.locator("#preview-error")).to_be_hidden()
    # Logged out of the inbound queues, the agent is not free to dial: they log in first.
    page.click("#dial")
    expect(page.locator("#preview-error")).to_contain_text("log in and be ready to dial")
    page.click("#login")
    expect(state(page)).to_have_text("ready")
    page.click("#dial")
    form = page.locator("#disposition-form")
    expect(form).to_be_visible(timeout=30_000)  # the simulated callee answers or not, then the call ends
    expect(page.locator("#preview-status")).to_contain_text(f"The call to {phones[1]} ended")
    page.select_option("#disposition", "no_contact")
    page.fill("#disposition-note", "line busy, try next week")
    page.click("#save-disposition")
    expect(page.locator("#preview-status")).to_contain_text("Disposition saved: no contact.")
    expect(form).to_be_hidden()
    attempts = [
        h
        for h in site.api("GET", f"/api/v1/customers/{known['id']}/timeline")["items"]
        if h["channel"] == "voice"
    ]
    assert attempts[0]["disposition"] == "no_contact"

    page.click("#next-contact")
    expect(facts.locator("[data-field=phone]")).to_have_text(phones[2])
    site.api("POST", "/api/v1/do-not-call", {"numbers": [phones[2]], "reason": "asked by email"})
    page.click("#dial")  # listed while the agent was reading: refused at dial time
    expect(page.locator("#preview-error")).to_contain_text("may not be dialed now")
    expect(page.locator("#contact")).to_be_hidden()

    page.click("#next-contact")
    expect(page.locator("#preview-status")).to_have_text("No contact may be called now in this campaign.")
    assert urlsplit(page.url).path == "/desk"
