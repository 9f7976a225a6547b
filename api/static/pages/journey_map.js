/* The journey map: /api/v1/reports/journeys as a Sankey diagram (Apache ECharts), re-read whenever the
 * filters change. Journeys that dropped off (their last contact abandoned) flow into a "dropped off" node. */
"use strict";

(function () {
  const { api, el, format } = window.centralita;
  const DROPPED = "dropped off";
  let chart = null;

  function pretty(label) {
    if (label.startsWith("ivr:")) return "IVR · " + label.slice(4);
    if (label.startsWith("queue:")) return "queue · " + label.slice(6);
    return label;
  }

  /** Channels blue, IVR nodes violet, queues amber, agents green; "dropped off" is red. */
  function colour(label) {
    if (label.startsWith("ivr:")) return "#8250df";
    if (label.startsWith("queue:")) return "#d4a72c";
    if (label === "agent") return "#1a7f37";
    return "#1f6feb";
  }

  function isoDate(date) {
    const two = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())}`;
  }

  /** Local midnight of a yyyy-mm-dd, as an instant the API reads ("…Z"). */
  function midnight(day, plusDays) {
    const [y, m, d] = day.split("-").map(Number);
    return new Date(y, m - 1, d + (plusDays || 0)).toISOString();
  }

  function filters(form) {
    const data = new FormData(form);
    const query = new URLSearchParams();
    query.set("from", midnight(data.get("from")));
    query.set("to", midnight(data.get("to"), 1)); // the "to" day is included
    query.set("by", data.get("by"));
    query.set("max_steps", data.get("max_steps") || "8");
    for (const name of ["queue", "campaign", "channel"]) {
      const value = (data.get(name) || "").trim();
      if (value) query.set(name, value);
    }
    return query;
  }

  function showError(message) {
    const node = document.getElementById("error");
    node.hidden = !message;
    node.textContent = message || "";
  }

  let latest = 0; // the newest load: an older answer arriving after it must not be drawn over it

  async function load(form) {
    const query = filters(form);
    const shown = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (String(value).trim()) shown.set(name, value);
    history.replaceState(null, "", "?" + shown.toString()); // filters only: bookmarkable, no secrets
    const mine = ++latest;
    try {
      const report = await api("/api/v1/reports/journeys?" + query.toString());
      if (mine !== latest) return;
      showError("");
      draw(report);
    } catch (error) {
      if (mine !== latest) return;
      if (error.message !== "signed out") showError("The journey map could not be read: " + error.message);
    }
  }

  function draw(report) {
    const labels = Object.fromEntries(report.nodes.map((n) => [n.id, n.label]));
    const nodes = report.nodes.map((n) => ({
      name: n.id, value: n.journeys,
      itemStyle: { color: colour(n.label) },
    }));
    const links = report.links.map((k) => ({ source: k.source, target: k.target, value: k.value }));
    const dropped = report.nodes.filter((n) => n.dropped > 0);
    if (dropped.length) {
      nodes.push({ name: DROPPED, value: dropped.reduce((s, n) => s + n.dropped, 0), itemStyle: { color: "#c62828" } });
      for (const n of dropped) {
        links.push({ source: n.id, target: DROPPED, value: n.dropped, lineStyle: { color: "#c62828", opacity: 0.45 } });
      }
    }
    const byId = Object.fromEntries(report.nodes.map((n) => [n.id, n]));
    const summary = document.getElementById("summary");
    summary.textContent = report.journeys
      ? `${format.count(report.journeys)} journeys · ${format.count(dropped.reduce((s, n) => s + n.dropped, 0))} dropped off`
        + (report.truncated ? ` · ${format.count(report.truncated)} cut at ${document.querySelector("[name=max_steps]").value} steps` : "")
      : "No journeys in this period with these filters.";

    const container = document.getElementById("sankey");
    if (!chart) {
      chart = echarts.init(container, null, { renderer: "svg" });
      window.addEventListener("resize", () => chart.resize());
    }
    chart.setOption({
      aria: { enabled: true, label: { description: describe(report, labels) } },
      animation: false,
      tooltip: {
        trigger: "item",
        formatter: (p) => {
          if (p.dataType === "edge") {
            const from = labels[p.data.source] || p.data.source, to = labels[p.data.target] || p.data.target;
            return `${escapeText(pretty(from))} → ${escapeText(pretty(to))}: ${format.count(p.data.value)} journeys`;
          }
          const n = byId[p.name];
          if (!n) return `${DROPPED}: ${format.count(p.value)} journeys`;
          return `${escapeText(pretty(n.label))} (step ${n.step + 1})<br>${format.count(n.journeys)} journeys passed`
            + `<br>${format.count(n.ended)} ended here, ${format.count(n.dropped)} dropped off`;
        },
      },
      series: [{
        type: "sankey",
        left: 10, right: 120, top: 10, bottom: 10,
        nodeGap: 12,
        draggable: false,
        emphasis: { focus: "adjacency" },
        data: nodes,
        links: links,
        lineStyle: { color: "gradient", curveness: 0.5, opacity: 0.35 },
        label: {
          formatter: (p) => `${p.name === DROPPED ? DROPPED : pretty(labels[p.name])} (${format.count(p.value)})`,
        },
      }],
    }, { replaceMerge: ["series"] });

    const linkRows = [...links].sort((a, b) => b.value - a.value).map((k) =>
      el("tr", { "data-source": k.source, "data-target": k.target },
        el("td", {}, pretty(labels[k.source])), el("td", {}, k.target === DROPPED ? DROPPED : pretty(labels[k.target])),
        el("td", { class: "num" }, format.count(k.value))));
    document.querySelector("#links tbody").replaceChildren(...linkRows);
    const endRows = report.nodes.filter((n) => n.ended > 0)
      .sort((a, b) => b.dropped - a.dropped || b.ended - a.ended)
      .map((n) => el("tr", { "data-node": n.id },
        el("td", {}, `${pretty(n.label)} (step ${n.step + 1})`), el("td", { class: "num" }, format.count(n.journeys)),
        el("td", { class: "num" }, format.count(n.ended)),
        el("td", { class: "num" + (n.dropped ? " bad" : "") }, format.count(n.dropped))));
    document.querySelector("#ends tbody").replaceChildren(...endRows);
  }

  /** What a screen reader says for the chart: the busiest transitions in words. */
  function describe(report, labels) {
    if (!report.links.length) return "No journeys.";
    const top = [...report.links].sort((a, b) => b.value - a.value).slice(0, 10);
    return `Sankey diagram of ${report.journeys} journeys. Busiest moves: ` + top.map((k) =>
      `${pretty(labels[k.source])} to ${pretty(labels[k.target])}, ${k.value}`).join("; ") + ".";
  }

  function escapeText(text) {
    const div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  async function fillNames(list, path, key) {
    try {
      const items = (await api(path)).items;
      document.getElementById(list).replaceChildren(...items.map((item) => el("option", { value: item[key] })));
    } catch (_) { /* a free-text filter still works */ }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("filters");
    const given = new URLSearchParams(window.location.search);
    const today = new Date();
    const weekAgo = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 6);
    form.elements.from.value = given.get("from") || isoDate(weekAgo);
    form.elements.to.value = given.get("to") || isoDate(today);
    for (const name of ["by", "queue", "campaign", "channel", "max_steps"]) {
      if (given.get(name)) form.elements[name].value = given.get(name);
    }
    form.addEventListener("submit", (event) => { event.preventDefault(); load(form); });
    fillNames("queue-names", "/api/v1/queues", "name");
    fillNames("campaign-names", "/api/v1/campaigns", "name");
    load(form);
  });
})();
