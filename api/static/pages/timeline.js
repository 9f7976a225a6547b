/* A customer's timeline, drawn the same way wherever one is shown (the customer's page, the agent's desk):
 * every contact on every channel, newest first, with the steps inside each one (IVR nodes, choices,
 * speech, queues, messages). Needs common.js. */
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

  /** One contact as a list item; `casesById` names the case it belongs to, when known. */
  function entry(item, casesById) {
    const cases = casesById || {};
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
        `case #${item.case_id}` + (cases[item.case_id] && cases[item.case_id].subject ? `: ${cases[item.case_id].subject}` : "")) : null,
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

  /** A page of the customer's timeline, newest first, with each contact's steps:
   * `{items, next_cursor}` from /api/v1/customers/{id}/timeline. */
  function fetchPage(customerId, options) {
    const { channel, cursor } = options || {};
    const query = new URLSearchParams({ include: "touchpoints", limit: "50" });
    if (channel) query.set("channel", channel);
    if (cursor) query.set("cursor", cursor);
    return api(`/api/v1/customers/${customerId}/timeline?` + query.toString());
  }

  /** Puts a page's contacts into `list` (an <ol class="timeline">): after what is there (`append`), or
   * instead of it. */
  function fill(list, items, casesById, append) {
    const entries = items.map((item) => entry(item, casesById));
    if (append) list.append(...entries);
    else list.replaceChildren(...(entries.length ? entries : [el("li", { class: "note" }, "No contacts yet.")]));
  }

  window.centralita.timeline = { entry, fetchPage, fill };
})();
