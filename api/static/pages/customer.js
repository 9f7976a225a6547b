/* A customer's page: who they are, their cases, and every contact on every channel, newest first, with
 * the steps inside each one (IVR nodes, choices, speech, queues, messages), as an agent's screen pop. */
"use strict";

(function () {
  const { api, el, format } = window.centralita;
  const STEP_NAMES = {
    ivr_node: "IVR", menu_choice: "menu choice", dtmf: "keys", speech: "said", lookup: "looked up",
    language_set: "language", queue_enter: "entered queue", queue_leave: "left queue",
    agent_connect: "agent answered", transfer: "transferred", hold: "on hold", resume: "resumed",
    callback_offered: "callback offered", callback_accepted: "callback accepted", link_sent: "link sent",
    recording: "recording", message: "message", note: "note",
  };
  const LIVE_CHANNELS = new Set(["voice", "ivr", "chat"]); // contacts that last; a message just happens
  const customerId = document.body.dataset.customerId;
  let casesById = {};
  let cursor = null;

  function showError(message) {
    const node = document.getElementById("error");
    node.hidden = !message;
    node.textContent = message || "";
  }

  function renderCustomer(customer) {
    document.getElementById("customer-name").textContent = customer.name || `Customer ${customer.id} (no name)`;
    document.title = (customer.name || `Customer ${customer.id}`) + " · Centralita";
    const facts = [];
    const add = (term, ...value) => facts.push(el("dt", {}, term), el("dd", {}, ...value));
    add("Customer", `#${customer.id}, since ${format.dateTime(customer.created_at)}`);
    for (const identity of customer.identities) add(identity.kind, identity.value);
    if (customer.preferred_language) add("Language", customer.preferred_language);
    if (customer.preferred_channel) add("Prefers", customer.preferred_channel);
    const consents = Object.entries(customer.consents || {});
    if (consents.length) {
      add("Consents", consents.map(([channel, c]) =>
        `${channel}: ${c.granted ? "yes" : "no"}${c.legal_basis ? " (" + c.legal_basis.replace(/_/g, " ") + ")" : ""}`
      ).join(" · "));
    }
    document.getElementById("customer-facts").replaceChildren(...facts);
  }

  function renderCases(cases) {
    casesById = Object.fromEntries(cases.map((c) => [c.id, c]));
    const open = (c) => c.status !== "resolved";
    const sorted = [...cases].sort((a, b) => open(b) - open(a) || Date.parse(b.updated_at) - Date.parse(a.updated_at));
    const items = sorted.map((c) => el("li", { "data-case": c.id },
      el("span", { class: "status-" + c.status }, c.status), " ",
      el("strong", {}, `#${c.id} ${c.subject || "(no subject)"}`),
      el("div", { class: "note" }, `opened ${format.dateTime(c.opened_at)}`,
        c.resolved_at ? `, resolved ${format.dateTime(c.resolved_at)}` : "",
        c.reopened_count ? `, reopened ${c.reopened_count}×` : ""),
      c.resolution ? el("div", {}, c.resolution) : null));
    document.getElementById("cases").replaceChildren(...(items.length ? items : [el("li", { class: "note" }, "No cases.")]));
  }

  function stepText(step) {
    const parts = [];
    if (step.node) parts.push(step.node);
    if (step.input) parts.push(`“${step.input}”`);
    if (step.text && step.kind !== "message") parts.push(step.text);
    if (step.kind === "message" && step.text) parts.push(step.text);
    if (step.confidence !== null && step.confidence !== undefined) parts.push(`${Math.round(step.confidence * 100)}% sure`);
    const queue = step.attributes && step.attributes.queue;
    if (queue && !parts.includes(queue)) parts.push(queue);
    return parts.join(" · ");
  }

  function entry(item) {
    const seconds = item.ended_at ? (Date.parse(item.ended_at) - Date.parse(item.started_at)) / 1000 : null;
    const head = el("div", { class: "entry-head" },
      el("span", { class: "badge channel" }, item.channel),
      el("span", {}, item.direction),
      el("time", { class: "when", datetime: item.started_at }, format.dateTime(item.started_at)),
      seconds !== null ? el("span", { class: "note" }, format.duration(seconds))
        : LIVE_CHANNELS.has(item.channel) ? el("span", { class: "note" }, "in progress") : null,
      item.outcome ? el("span", { class: "badge outcome-" + item.outcome }, item.outcome.replace(/_/g, " ")) : null,
      item.queue ? el("span", {}, "queue " + item.queue) : null,
      item.agent ? el("span", {}, "agent " + item.agent) : null,
      item.campaign ? el("span", {}, "campaign " + item.campaign) : null,
      item.case_id ? el("span", { class: "badge", "data-case-ref": item.case_id },
        `case #${item.case_id}` + (casesById[item.case_id] && casesById[item.case_id].subject ? `: ${casesById[item.case_id].subject}` : "")) : null,
      item.csat ? el("span", {}, `CSAT ${item.csat}/5`) : null);
    const body = [];
    if (item.subject) body.push(el("div", { class: "subject" }, el("strong", {}, item.subject)));
    if (item.summary) body.push(el("p", { class: "summary" }, item.summary));
    const steps = (item.touchpoints || []).filter((s) => !(s.kind === "message" && s.text === item.summary));
    if (steps.length) {
      body.push(el("ol", { class: "steps" }, steps.map((step) => el("li", { "data-kind": step.kind },
        el("span", { class: "kind" }, STEP_NAMES[step.kind] || step.kind), " ", stepText(step),
        el("span", { class: "note" }, " " + format.time(step.occurred_at))))));
    }
    return el("li", { "data-interaction": item.id, "data-channel": item.channel }, head, ...body);
  }

  async function loadTimeline(more) {
    const channel = document.getElementById("channel-filter").value;
    const query = new URLSearchParams({ include: "touchpoints", limit: "50" });
    if (channel) query.set("channel", channel);
    if (more && cursor) query.set("cursor", cursor);
    const page = await api(`/api/v1/customers/${customerId}/timeline?` + query.toString());
    const list = document.getElementById("timeline");
    const entries = page.items.map(entry);
    if (more) list.append(...entries);
    else list.replaceChildren(...(entries.length ? entries : [el("li", { class: "note" }, "No contacts yet.")]));
    cursor = page.next_cursor;
    document.getElementById("more").hidden = !cursor;
  }

  async function start() {
    try {
      const [customer, cases] = await Promise.all([
        api(`/api/v1/customers/${customerId}`),
        api(`/api/v1/customers/${customerId}/cases`),
      ]);
      renderCustomer(customer);
      renderCases(cases);
      await loadTimeline(false);
    } catch (error) {
      if (error.message === "signed out") return;
      showError(error.status === 404 ? `There is no customer ${customerId}.` : "This customer could not be read: " + error.message);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("more").addEventListener("click", () => loadTimeline(true).catch((e) => showError(e.message)));
    document.getElementById("channel-filter").addEventListener("change", () => loadTimeline(false).catch((e) => showError(e.message)));
    start();
  });
})();
