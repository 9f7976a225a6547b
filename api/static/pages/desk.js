/* An agent's desk: their state from /api/v1/agents/{id}/events (Server-Sent Events) with the buttons the
 * state allows, the screen pop of every call offered (then the caller's whole timeline), and their preview
 * campaigns: next contact, dial or skip, and the call's disposition.
 *
 * What is shown as the agent's state is only ever the server's word: the stream's first event (the state
 * now), its changes, and the answers to the desk's own changes, the newest of them by `since`. While the
 * stream is down the state is shown as not known and nothing can be changed. Changes are posted as JSON
 * to /api/v1, which takes the session cookie for a write only from this service's own page. */
"use strict";

(function () {
  const { api, el, format, timeline, signIn } = window.centralita;
  const agentId = document.body.dataset.agentId;
  const homeEndpoint = document.body.dataset.homeEndpoint;

  const STATE_NAMES = {
    logged_out: "logged out", ready: "ready", offered: "offered", on_call: "on call", wrap_up: "wrap-up",
    paused: "paused",
  };
  // The buttons each state allows; the API refuses the rest (routing/agent_state.py).
  const ALLOWED = {
    logged_out: ["login"],
    ready: ["pause", "logout"],
    offered: [],
    on_call: [],
    wrap_up: ["ready", "pause", "logout"],
    paused: ["ready", "pause", "logout"],
  };
  const DISPOSITION_NAMES = {
    sale: "sale", not_interested: "not interested", call_back: "call back", wrong_number: "wrong number",
    do_not_call: "do not call", no_contact: "no contact",
  };

  let current = null; // the agent's status, as the server last said it
  let live = false; // the stream is connected: `current` is up to date
  let busy = false; // a change of state is on its way

  function byId(id) { return document.getElementById(id); }

  function show(id, message) {
    const node = byId(id);
    node.hidden = !message;
    node.textContent = message || "";
  }

  // --- the desk's changes -------------------------------------------------------------------------------

  function detailText(body, fallback) {
    if (!body || body.detail === undefined) return fallback;
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail.map((problem) => {
        const where = (problem.loc || []).filter((part) => part !== "body").join(".");
        return (where ? where + ": " : "") + problem.msg;
      }).join("; ");
    }
    return JSON.stringify(body.detail);
  }

  /** POSTs a change to the API route at `path` (under /api/v1); the API's answer, or an Error with its
   * message. A 204 answers null. */
  async function change(path, body) {
    const answer = await fetch("/api/v1/" + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body || {}),
    });
    if (answer.status === 401) {
      signIn();
      throw new Error("signed out");
    }
    if (answer.status === 204) return null;
    let parsed = null;
    try { parsed = await answer.json(); } catch (_) { /* not JSON: the status text will do */ }
    if (!answer.ok) {
      const error = new Error(detailText(parsed, answer.statusText || "refused (" + answer.status + ")"));
      error.status = answer.status;
      error.body = parsed;
      throw error;
    }
    return parsed;
  }

  // --- the agent's state --------------------------------------------------------------------------------

  function instant(iso) { return iso ? Date.parse(iso) : -Infinity; }

  /** Takes the server's word on the agent's state, unless it is older than what is shown (`snapshot`: the
   * stream's first event, the state now, always taken). */
  function applyStatus(status, snapshot) {
    if (!status) return;
    if (!snapshot && current && instant(status.since) < instant(current.since)) return;
    const endpointChanged = current !== null && current.endpoint !== status.endpoint;
    current = status;
    render();
    if (endpointChanged) loadCampaigns();
  }

  function stateLabel(status) {
    const name = STATE_NAMES[status.state] || status.state;
    return status.state === "paused" && status.reason ? `${name} (${status.reason})` : name;
  }

  /** "queue billing", or "campaign 12" for a campaign's call (the ACD's queue `campaign:<id>`). */
  function whence(queue) {
    if (!queue) return "";
    return queue.startsWith("campaign:") ? "campaign " + queue.slice("campaign:".length) : "queue " + queue;
  }

  function stateDetail(status) {
    switch (status.state) {
      case "ready": return `on ${status.endpoint}, since ${format.time(status.since)}`;
      case "offered": return `a call${status.queue ? " from " + whence(status.queue) : ""} is ringing on ${status.endpoint}`;
      case "on_call": return `${status.queue ? whence(status.queue) + ", " : ""}since ${format.time(status.since)}`;
      case "wrap_up": {
        const left = status.until ? Math.ceil((Date.parse(status.until) - Date.now()) / 1000) : null;
        if (left === null) return "";
        return left > 0 ? `${format.duration(left)} left` : "ending…";
      }
      case "paused": return `on ${status.endpoint}, since ${format.time(status.since)}`;
      default: return "";
    }
  }

  function render() {
    const stateNode = byId("agent-state");
    let label, state;
    if (!current) {
      [label, state] = ["state not known yet", "unknown"];
    } else if (!live) {
      [label, state] = ["not known while reconnecting", "unknown"];
    } else {
      [label, state] = [stateLabel(current), current.state];
    }
    if (stateNode.textContent !== label) stateNode.textContent = label; // announced only when it changes
    stateNode.dataset.state = state;
    stateNode.className = "state " + state;
    byId("state-detail").textContent = !current ? ""
      : live ? stateDetail(current) : `last known: ${stateLabel(current)}`;
    const allowed = live && !busy && current ? ALLOWED[current.state] || [] : [];
    for (const action of ["login", "ready", "pause", "logout"]) {
      byId(action).disabled = !allowed.includes(action);
    }
    byId("login-endpoint").disabled = !allowed.includes("login");
    byId("pause-reason").disabled = byId("pause-other").disabled = !allowed.includes("pause");
    byId("ready").textContent = current && current.state === "wrap_up" ? "End wrap-up" : "Ready";
  }

  async function changeState(action, body) {
    show("state-error", "");
    busy = true;
    render();
    try {
      applyStatus((await change(`agents/${agentId}/${action}`, body)).status);
    } catch (error) {
      if (error.message === "signed out") return;
      show("state-error", error.message);
      try { // where the agent stands, in the server's words (the stream says so too)
        applyStatus((await api(`/api/v1/agents/${agentId}`)).status);
      } catch (_) { /* the stream will tell */ }
    } finally {
      busy = false;
      render();
    }
  }

  // --- the stream ---------------------------------------------------------------------------------------

  let source = null;
  let retryDelay = 1000;

  function setConnection(state, text) {
    const node = byId("connection");
    node.dataset.state = state;
    node.textContent = text;
  }

  function payload(event) { return JSON.parse(event.data).payload; }

  function connect() {
    if (source) source.close();
    source = new EventSource(`/api/v1/agents/${agentId}/events`);
    source.addEventListener("agent.state", (event) => {
      retryDelay = 1000;
      live = true;
      setConnection("live", "live");
      applyStatus(payload(event), true);
    });
    source.addEventListener("agent.state_changed", (event) => applyStatus(payload(event)));
    source.addEventListener("agent.call_offered", (event) => showPop(payload(event)));
    source.addEventListener("error", () => {
      live = false;
      render();
      setConnection("reconnecting", "reconnecting…");
      if (source.readyState !== EventSource.CLOSED) return; // the browser reconnects by itself
      // Closed for good (an error answer: a restart, an expired session): see why, then start over.
      source.close();
      const delay = retryDelay;
      retryDelay = Math.min(retryDelay * 2, 30000);
      setTimeout(() => api(`/api/v1/agents/${agentId}`).then(() => connect(), (error) => {
        if (error.message === "signed out") return;
        setConnection("reconnecting", "reconnecting… (" + error.message + ")");
        setTimeout(connect, delay);
      }), delay);
    });
  }

  // --- the screen pop -----------------------------------------------------------------------------------

  const IVR_SHOWN_ELSEWHERE = new Set(["customer_id", "customer_name", "open_cases"]);

  function facts(list, pairs) {
    list.replaceChildren(...pairs.filter(([, value]) => value !== null && value !== undefined && value !== "")
      .flatMap(([term, value, field]) => [el("dt", {}, term), el("dd", { "data-field": field }, value)]));
  }

  function customerLink(customer) {
    return el("a", { href: `/customers/${customer.id}` }, customer.name || `customer #${customer.id} (no name)`);
  }

  function openCases(lookup) {
    const cases = (lookup && lookup.open_cases) || [];
    if (!cases.length) return lookup ? "none" : null;
    return el("ul", { class: "plain" }, cases.map((c) => el("li", { "data-case": c.id },
      `#${c.id} ${c.subject || "(no subject)"} `, el("span", { class: "note" }, `(${c.status})`))));
  }

  /** A customer's timeline into `list`, with the "older contacts" button `more`. Each call starts over:
   * an answer for a customer no longer shown is dropped. */
  function timelineLoader(listId, moreId, errorId) {
    let token = 0, customerId = null, cursor = null, casesById = {};
    async function load(append) {
      const mine = append ? token : ++token;
      try {
        if (!append) {
          const cases = await api(`/api/v1/customers/${customerId}/cases`);
          if (mine !== token) return;
          casesById = Object.fromEntries(cases.map((c) => [c.id, c]));
        }
        const page = await timeline.fetchPage(customerId, { cursor: append ? cursor : null });
        if (mine !== token) return;
        timeline.fill(byId(listId), page.items, casesById, append);
        cursor = page.next_cursor;
        if (moreId) byId(moreId).hidden = !cursor;
      } catch (error) {
        if (mine === token && error.message !== "signed out") show(errorId, "The timeline could not be read: " + error.message);
      }
    }
    if (moreId) byId(moreId).addEventListener("click", () => load(true));
    return {
      showCustomer(id) {
        customerId = id;
        cursor = null;
        show(errorId, "");
        byId(listId).replaceChildren(el("li", { class: "note" }, "Loading the timeline…"));
        if (moreId) byId(moreId).hidden = true;
        load(false);
      },
      clear(text) {
        token++;
        byId(listId).replaceChildren(...(text ? [el("li", { class: "note" }, text)] : []));
        if (moreId) byId(moreId).hidden = true;
      },
    };
  }

  const popTimeline = timelineLoader("pop-timeline", "pop-more", "pop-error");

  function showPop(pop) {
    const lookup = pop.lookup;
    const customer = lookup && lookup.customer;
    // A number nobody named yet (the IVR makes a customer of every new number) is still an unknown caller.
    const who = customer && customer.name ? customer.name : "unknown caller";
    byId("pop").hidden = false;
    byId("pop-title").textContent = `Call from ${who}`;
    byId("pop-when").textContent = `offered at ${format.time(new Date().toISOString())}`;
    const ivr = Object.entries(pop.ivr || {}).filter(([name]) => !IVR_SHOWN_ELSEWHERE.has(name));
    facts(byId("pop-facts"), [
      ["Caller", pop.caller || "withheld number", "caller"],
      ["Customer", customer ? customerLink(customer) : "unknown caller: no customer has this number", "customer"],
      ["Queue", pop.queue, "queue"],
      ["Waited", format.duration(pop.waited_seconds), "waited"],
      ["IVR collected", ivr.length ? el("ul", { class: "plain" },
        ivr.map(([name, value]) => el("li", { "data-ivr": name }, `${name.replace(/_/g, " ")}: ${value}`))) : null, "ivr"],
      ["Open cases", openCases(lookup), "cases"],
    ]);
    byId("pop-announce").textContent = `Call offered from ${who}` + (pop.caller ? `, ${pop.caller}` : "")
      + (pop.queue ? `, queue ${pop.queue}` : "");
    if (customer) popTimeline.showCustomer(customer.id);
    else popTimeline.clear("Unknown caller: no customer has this number.");
  }

  // --- preview campaigns --------------------------------------------------------------------------------

  const preview = { campaigns: [], dispositions: [], shown: null, attempt: null, polling: 0 };
  const contactTimeline = timelineLoader("contact-timeline", null, "preview-error");

  function campaign() {
    const id = Number(byId("campaign").value);
    return preview.campaigns.find((c) => c.id === id) || null;
  }

  function previewBusy() { return Boolean(preview.attempt); }

  function renderPreview() {
    byId("preview").hidden = !preview.campaigns.length && !preview.shown && !preview.attempt;
    byId("next-contact").disabled = previewBusy() || !preview.campaigns.length;
    byId("campaign").disabled = previewBusy() || Boolean(preview.shown);
    byId("contact").hidden = !preview.shown;
    byId("contact-timeline-title").hidden = !preview.shown && !preview.attempt;
  }

  async function loadCampaigns() {
    let answer;
    try {
      answer = await api(`/api/v1/agents/${agentId}/campaigns`);
    } catch (error) {
      if (error.status !== 403 && error.message !== "signed out") show("preview-error", error.message);
      return;
    }
    const select = byId("campaign");
    const chosen = select.value;
    preview.campaigns = answer.items;
    preview.dispositions = answer.dispositions;
    select.replaceChildren(...answer.items.map((c) => el("option", { value: c.id }, `${c.name} (${c.endpoint})`)));
    if (answer.items.some((c) => String(c.id) === chosen)) select.value = chosen;
    renderPreview();
  }

  function previewStatus(text) { byId("preview-status").textContent = text; }

  function showContact(shown) {
    preview.shown = shown;
    const contact = shown.contact;
    const customer = shown.customer && shown.customer.customer;
    const attributes = Object.entries(contact.attributes || {}).filter(([name]) => name !== "name");
    facts(byId("contact-facts"), [
      ["Name", (contact.attributes && contact.attributes.name) || (customer && customer.name) || "(no name)", "name"],
      ["Phone", contact.phone, "phone"],
      ["Customer", customer ? customerLink(customer) : el("a", { href: `/customers/${contact.customer_id}` }, `customer #${contact.customer_id}`), "customer"],
      ["Attempts so far", String(contact.attempts), "attempts"],
      ["Last time", contact.last_disposition ? contact.last_disposition.replace(/_/g, " ") : null, "last"],
      ["Held for you until", format.time(shown.expires_at), "expires"],
      ...attributes.map(([name, value]) => [name.replace(/_/g, " "), String(value), "attribute"]),
      ["Open cases", openCases(shown.customer), "cases"],
    ]);
    byId("skip-reason").value = "";
    byId("skip-final").checked = false;
    const passed = shown.passed_over ? ` (${shown.passed_over} passed over: do-not-call or outside their hours)` : "";
    previewStatus(`Next contact: ${contact.phone}${passed}. Dial or skip.`);
    contactTimeline.showCustomer(contact.customer_id);
    renderPreview();
  }

  function forgetContact(text) {
    preview.shown = null;
    contactTimeline.clear();
    previewStatus(text);
    renderPreview();
  }

  async function nextContact() {
    const chosen = campaign();
    if (!chosen) return;
    show("preview-error", "");
    byId("disposition-form").hidden = true;
    byId("next-contact").disabled = true;
    try {
      const shown = await change(`campaigns/${chosen.id}/preview/next`, { agent: chosen.endpoint });
      if (shown === null) forgetContact("No contact may be called now in this campaign.");
      else showContact(shown);
    } catch (error) {
      if (error.message !== "signed out") show("preview-error", error.message);
    } finally {
      renderPreview();
    }
  }

  async function dial() {
    const chosen = campaign();
    const shown = preview.shown;
    if (!chosen || !shown) return;
    show("preview-error", "");
    byId("dial").disabled = true;
    try {
      const answer = await change(`campaigns/${chosen.id}/preview/${shown.contact.id}/dial`, { agent: chosen.endpoint });
      preview.shown = null;
      preview.attempt = { campaign: chosen, contact: shown.contact, ...answer.attempt };
      previewStatus(`Dialling ${shown.contact.phone}…`);
      renderPreview();
      followAttempt();
    } catch (error) {
      if (error.message === "signed out") return;
      show("preview-error", error.message);
      // A rule that refused the dial set the contact aside (blocked, or for later): it is not yours now.
      if (error.body && error.body.violations) forgetContact("That contact was set aside. Ask for the next one.");
    } finally {
      byId("dial").disabled = false;
    }
  }

  async function skip(event) {
    event.preventDefault();
    const chosen = campaign();
    const shown = preview.shown;
    if (!chosen || !shown) return;
    show("preview-error", "");
    const final = byId("skip-final").checked;
    try {
      const contact = await change(`campaigns/${chosen.id}/preview/${shown.contact.id}/skip`, {
        agent: chosen.endpoint, reason: byId("skip-reason").value.trim(), final,
      });
      forgetContact(final ? `Skipped ${contact.phone}: not called again.`
        : `Skipped ${contact.phone}: back in the list at ${format.dateTime(contact.next_attempt_at)}.`);
    } catch (error) {
      if (error.message !== "signed out") show("preview-error", error.message);
    }
  }

  function attemptText(attempt) {
    const phone = attempt.phone;
    if (attempt.state === "requested") return `Dialling ${phone}: waiting for the dialer to place the call…`;
    if (attempt.state === "in_progress") {
      return attempt.connected_at ? `On the call with ${phone}.` : attempt.answered_at ? `${phone} answered…` : `Ringing ${phone}…`;
    }
    return `The call to ${phone} ended (${(attempt.disposition || "no result").replace(/_/g, " ")}). How did it go?`;
  }

  async function followAttempt() {
    const mine = ++preview.polling;
    while (preview.attempt && mine === preview.polling) {
      const { campaign: chosen, id } = preview.attempt;
      try {
        const attempt = await api(`/api/v1/campaigns/${chosen.id}/attempts/${id}`);
        if (mine !== preview.polling) return;
        preview.attempt = { ...preview.attempt, ...attempt };
        previewStatus(attemptText(attempt));
        if (attempt.state === "ended") {
          contactTimeline.showCustomer(preview.attempt.contact.customer_id); // with the call just made
          showDispositionForm(preview.attempt);
          return;
        }
      } catch (error) {
        if (error.message === "signed out") return;
        show("preview-error", "The call could not be followed: " + error.message);
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  function showDispositionForm(attempt) {
    const select = byId("disposition");
    const spoke = Boolean(attempt.connected_at);
    select.replaceChildren(...preview.dispositions.map((d) => el("option", {
      value: d.disposition, disabled: d.needs_conversation && !spoke,
    }, (DISPOSITION_NAMES[d.disposition] || d.disposition) + (d.needs_conversation && !spoke ? " (needs a conversation)" : ""))));
    const first = preview.dispositions.find((d) => spoke || !d.needs_conversation);
    if (first) select.value = first.disposition;
    byId("disposition-note").value = "";
    byId("call-back-at").value = "";
    toggleCallBack();
    byId("disposition-form").hidden = false;
    select.focus();
  }

  function toggleCallBack() {
    const callBack = byId("disposition").value === "call_back";
    byId("call-back-at").hidden = byId("call-back-label").hidden = !callBack;
    byId("call-back-at").required = callBack;
  }

  async function saveDisposition(event) {
    event.preventDefault();
    const attempt = preview.attempt;
    if (!attempt) return;
    show("preview-error", "");
    const body = { agent: attempt.campaign.endpoint, disposition: byId("disposition").value };
    const at = byId("call-back-at").value;
    if (body.disposition === "call_back" && at) body.at = new Date(at).toISOString();
    const note = byId("disposition-note").value.trim();
    if (note) body.note = note;
    byId("save-disposition").disabled = true;
    try {
      const saved = await change(`campaigns/${attempt.campaign.id}/attempts/${attempt.id}/disposition`, body);
      preview.attempt = null;
      byId("disposition-form").hidden = true;
      const next = saved.contact.next_attempt_at ? `, next attempt ${format.dateTime(saved.contact.next_attempt_at)}` : "";
      forgetContact(`Disposition saved: ${DISPOSITION_NAMES[saved.disposition] || saved.disposition}. `
        + `The contact is ${saved.contact.status}${next}.`);
    } catch (error) {
      if (error.message !== "signed out") show("preview-error", error.message);
    } finally {
      byId("save-disposition").disabled = false;
    }
  }

  // --- start --------------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    if (homeEndpoint) byId("login-endpoint").placeholder = homeEndpoint;
    byId("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const endpoint = byId("login-endpoint").value.trim();
      changeState("login", endpoint ? { endpoint } : {});
    });
    byId("ready").addEventListener("click", () => changeState("ready"));
    byId("logout").addEventListener("click", () => changeState("logout"));
    byId("pause-reason").addEventListener("change", () => {
      const other = byId("pause-reason").value === "";
      byId("pause-other").hidden = !other;
      byId("pause-other").required = other;
      if (other) byId("pause-other").focus();
    });
    byId("pause-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const reason = byId("pause-reason").value || byId("pause-other").value.trim();
      changeState("pause", { reason });
    });
    byId("next-form").addEventListener("submit", (event) => {
      event.preventDefault();
      nextContact();
    });
    byId("dial").addEventListener("click", dial);
    byId("skip-form").addEventListener("submit", skip);
    byId("disposition").addEventListener("change", toggleCallBack);
    byId("disposition-form").addEventListener("submit", saveDisposition);
    setInterval(() => { if (live && current && current.state === "wrap_up") render(); }, 1000);
    render();
    connect();
    loadCampaigns();
  });
})();
