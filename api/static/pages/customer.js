/* A customer's page: who they are, their cases, and every contact on every channel, newest first, with
 * the steps inside each one (IVR nodes, choices, speech, queues, messages), as an agent's screen pop.
 * The timeline itself is drawn by timeline.js, which the agent's desk shares. */
"use strict";

(function () {
  const { api, el, format, timeline } = window.centralita;
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

  async function loadTimeline(more) {
    const channel = document.getElementById("channel-filter").value;
    const page = await timeline.fetchPage(customerId, { channel, cursor: more ? cursor : null });
    timeline.fill(document.getElementById("timeline"), page.items, casesById, more);
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
