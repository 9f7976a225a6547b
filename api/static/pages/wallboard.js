/* The wallboard: today's figures from /api/v1/stats/stream (Server-Sent Events), redrawn on every event.
 * Agents' states and campaigns' pacing are not in the stream: they are read from /api/v1/agents and
 * /api/v1/campaigns/{id}/stats after each event (every agent.* or campaign.* event makes one). */
"use strict";

(function () {
  const { api, el, format } = window.centralita;
  const LEGAL_ABANDONMENT = 0.03; // Spain's (and the FCC's) cap on a campaign's abandoned live calls
  const STATE_ORDER = ["ready", "offered", "on_call", "wrap_up", "paused", "logged_out"];
  const STATE_NAMES = {
    ready: "ready", offered: "ringing", on_call: "on a call", wrap_up: "wrap-up", paused: "paused",
    logged_out: "logged out",
  };

  const view = { stats: null, agents: null, agentsNote: "", queueTargets: {}, pacing: {} };
  let source = null;
  let retryDelay = 1000;
  let charts = null;

  // --- the stream ---------------------------------------------------------------------------------------

  function setConnection(state, text) {
    const node = document.getElementById("connection");
    node.dataset.state = state;
    node.textContent = text;
  }

  function connect() {
    if (source) source.close();
    setConnection("connecting", "connecting…");
    source = new EventSource("/api/v1/stats/stream");
    source.addEventListener("stats", (event) => {
      retryDelay = 1000;
      view.stats = JSON.parse(event.data);
      setConnection("live", "live");
      document.getElementById("updated").textContent = "updated " + format.time(new Date().toISOString());
      render();
      refreshAside();
    });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) {
        setConnection("reconnecting", "reconnecting…"); // the browser retries by itself
        return;
      }
      // Closed for good (an error answer, e.g. a session that expired): see why, then start over.
      setConnection("reconnecting", "reconnecting…");
      source.close();
      const delay = retryDelay;
      retryDelay = Math.min(retryDelay * 2, 30000);
      setTimeout(() => api("/api/v1/stats").then(connect, (error) => {
        setConnection("reconnecting", "reconnecting… (" + error.message + ")");
        setTimeout(connect, delay);
      }), delay);
    });
  }

  // --- what the stream lacks --------------------------------------------------------------------------

  let asideRunning = false, asideAgain = false;

  async function refreshAside() {
    if (asideRunning) { asideAgain = true; return; }
    asideRunning = true;
    try {
      do {
        asideAgain = false;
        await Promise.all([loadAgents(), loadQueueTargets(), loadPacing()]);
        render();
      } while (asideAgain);
    } finally {
      asideRunning = false;
    }
  }

  async function loadAgents() {
    try {
      view.agents = (await api("/api/v1/agents")).items;
      view.agentsNote = "";
    } catch (error) {
      view.agents = null;
      view.agentsNote = error.status === 503 ? "Inbound routing does not run in this service."
        : error.status === 403 ? "This key may not read agents' states (needs routing:read)."
        : "Agents' states could not be read: " + error.message;
    }
  }

  let targetsReadAt = 0;
  async function loadQueueTargets() {
    if (Date.now() - targetsReadAt < 60000) return; // queue settings change rarely
    targetsReadAt = Date.now();
    try {
      for (const queue of (await api("/api/v1/queues")).items) {
        view.queueTargets[queue.name] = queue.service_level_percent / 100;
      }
    } catch (_) { /* no routing: every queue is judged against the default 80% */ }
  }

  async function loadPacing() {
    const campaigns = (view.stats && view.stats.campaigns) || [];
    await Promise.all(campaigns.filter((c) => c.campaign_id).map(async (c) => {
      try {
        view.pacing[c.campaign] = await api(`/api/v1/campaigns/${c.campaign_id}/stats`);
      } catch (_) {
        delete view.pacing[c.campaign];
      }
    }));
  }

  // --- drawing ------------------------------------------------------------------------------------------

  function setText(id, text) { document.getElementById(id).textContent = text; }

  function longestWait(queue) {
    if (!queue.waiting) return 0;
    const since = queue.oldest_waiting_since ? (Date.now() - Date.parse(queue.oldest_waiting_since)) / 1000 : 0;
    return Math.max(queue.longest_wait_seconds || 0, since);
  }

  function fill(tbody, rows, emptyText, columns) {
    tbody.replaceChildren(...(rows.length ? rows
      : [el("tr", { class: "empty" }, el("td", { colspan: columns }, emptyText))]));
  }

  function render() {
    const stats = view.stats;
    if (!stats) return;
    const queues = stats.queues || [];
    const totals = stats.totals || {};
    setText("total-waiting", format.count(queues.reduce((sum, q) => sum + q.waiting, 0)));
    setText("total-longest", format.duration(Math.max(0, ...queues.map(longestWait))));
    setText("total-in-ivr", format.count(stats.ivr ? stats.ivr.in_ivr : null));
    setText("total-contacts", format.count(totals.contacts));
    setText("total-sl", format.percent(totals.service_level));
    setText("total-asa", format.duration(totals.asa_seconds));
    setText("total-abandon", format.percent(totals.abandonment_rate));
    setText("total-containment", format.percent(stats.ivr ? stats.ivr.containment : null));
    renderQueues(queues);
    renderAgents(stats.agents || []);
    renderCampaigns(stats.campaigns || []);
  }

  function targetOf(queue) {
    return view.queueTargets[queue.queue] !== undefined ? view.queueTargets[queue.queue] : 0.8;
  }

  function renderQueues(queues) {
    const rows = queues.map((q) => {
      const target = targetOf(q);
      const level = q.service_level;
      const judged = level === null ? "" : level >= target ? "good" : level >= target - 0.1 ? "warn" : "bad";
      return el("tr", { "data-queue": q.queue },
        el("th", { scope: "row" }, q.queue),
        el("td", { class: "num" + (q.waiting ? " warn" : ""), "data-field": "waiting" }, format.count(q.waiting)),
        el("td", { class: "num", "data-field": "longest-wait" }, format.duration(longestWait(q))),
        el("td", { class: "num " + judged, "data-field": "service-level",
                   title: `answered within ${q.service_level_target_seconds} s; target ${format.percent(target)}` },
          `${format.percent(level)} / ${format.percent(target)} in ${q.service_level_target_seconds} s`),
        el("td", { class: "num", "data-field": "asa" }, format.duration(q.asa_seconds)),
        el("td", { class: "num", "data-field": "answered" }, format.count(q.queue_answered)),
        el("td", { class: "num", "data-field": "abandoned" }, format.count(q.queue_abandoned)));
    });
    fill(document.querySelector("#queues tbody"), rows, "No calls in a queue today.", 7);
    drawQueues(queues);
  }

  function renderAgents(figures) {
    const byName = Object.fromEntries(figures.map((a) => [a.agent, a]));
    const pills = document.getElementById("agent-states");
    const note = document.getElementById("agents-note");
    note.hidden = !view.agentsNote;
    note.textContent = view.agentsNote;
    if (!view.agents) {
      pills.replaceChildren();
      const rows = figures.map((a) => el("tr", { "data-agent": a.agent },
        el("th", { scope: "row" }, a.agent), el("td", {}, "–"), el("td", {}, "–"),
        el("td", { class: "num" }, format.count(a.handled)), el("td", { class: "num" }, format.duration(a.aht_seconds))));
      fill(document.querySelector("#agents tbody"), rows, "No agents handled a contact today.", 5);
      return;
    }
    const counts = {};
    for (const agent of view.agents) counts[agent.status.state] = (counts[agent.status.state] || 0) + 1;
    const states = [...STATE_ORDER, ...Object.keys(counts).filter((s) => !STATE_ORDER.includes(s))];
    pills.replaceChildren(...states.filter((s) => counts[s] || s !== "offered").map((s) =>
      el("span", { class: "state " + s, "data-state": s },
        el("span", { class: "count" }, format.count(counts[s] || 0)), STATE_NAMES[s] || s)));
    const order = (a) => { const i = STATE_ORDER.indexOf(a.status.state); return i < 0 ? 99 : i; };
    const agents = [...view.agents].sort((a, b) => order(a) - order(b) || a.name.localeCompare(b.name));
    const rows = agents.map((agent) => {
      const today = byName[agent.name] || {};
      const status = agent.status;
      return el("tr", { "data-agent": agent.name },
        el("th", { scope: "row", title: agent.name }, agent.display_name || agent.name),
        el("td", { "data-field": "state" }, el("span", { class: "state " + status.state },
          (STATE_NAMES[status.state] || status.state) + (status.reason ? ` (${status.reason})` : "")),
          status.queue ? " · " + status.queue : ""),
        el("td", {}, format.time(status.since)),
        el("td", { class: "num" }, format.count(today.handled || 0)),
        el("td", { class: "num" }, format.duration(today.aht_seconds)));
    });
    fill(document.querySelector("#agents tbody"), rows, "No agents.", 5);
  }

  function pacingText(name) {
    const p = view.pacing[name];
    if (!p) return "–";
    const parts = [`${format.count(p.attempts_last_hour)} dials in the last hour`];
    if (p.running_here) {
      parts.push(`${format.count(p.calls_in_progress)} calls now`);
      if (p.agents) parts.push(`agents ${p.agents.talking} talking, ${p.agents.idle} idle`);
      if (p.last_pacing) parts.push(`last decision: ${p.last_pacing.calls} lines (${p.last_pacing.reason})`);
    }
    parts.push(`${format.count(p.contacts_remaining)} contacts left`);
    return parts.join(" · ");
  }

  function renderCampaigns(campaigns) {
    const rows = campaigns.map((c) => {
      const limit = Math.min(c.abandonment_target ?? LEGAL_ABANDONMENT, LEGAL_ABANDONMENT);
      const judge = (rate) => rate === null || rate === undefined ? "" : rate > limit ? "bad" : rate > limit * 0.8 ? "warn" : "good";
      return el("tr", { "data-campaign": c.campaign },
        el("th", { scope: "row" }, c.campaign),
        el("td", {}, c.status || "–"),
        el("td", { class: "num", "data-field": "dialed" }, format.count(c.outbound_dialed)),
        el("td", { class: "num" }, format.count(c.outbound_live_calls)),
        el("td", { class: "num " + judge(c.outbound_abandonment_rate), "data-field": "abandoned",
                   title: "today: " + format.percent(c.outbound_abandonment_rate) },
          format.count(c.outbound_abandoned)),
        el("td", { class: "num " + judge(c.abandonment_rate_24h), "data-field": "abandonment-24h" },
          format.percent(c.abandonment_rate_24h)),
        el("td", { class: "num " + judge(c.abandonment_rate_30d), "data-field": "abandonment-30d" },
          format.percent(c.abandonment_rate_30d)),
        el("td", { "data-field": "pacing" }, pacingText(c.campaign)));
    });
    fill(document.querySelector("#campaigns tbody"), rows, "No campaign running or dialing today.", 8);
    drawCampaigns(campaigns);
  }

  // --- charts (Apache ECharts, vendored) ---------------------------------------------------------------

  function chartsReady() {
    if (charts) return charts;
    charts = {
      queues: echarts.init(document.getElementById("queues-chart"), null, { renderer: "svg" }),
      campaigns: echarts.init(document.getElementById("campaigns-chart"), null, { renderer: "svg" }),
    };
    window.addEventListener("resize", () => { charts.queues.resize(); charts.campaigns.resize(); });
    return charts;
  }

  const pct = (value) => value === null || value === undefined ? null : Math.round(value * 1000) / 10;

  function drawQueues(queues) {
    const chart = chartsReady().queues;
    chart.setOption({
      aria: { enabled: true },
      animation: false,
      grid: { left: 90, right: 30, top: 24, bottom: 24 },
      tooltip: { trigger: "axis", valueFormatter: (v) => (v === null || v === undefined ? "–" : v + "%") },
      legend: { top: 0, right: 0, data: ["service level", "target"] },
      xAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
      yAxis: { type: "category", data: queues.map((q) => q.queue), inverse: true },
      series: [
        { name: "service level", type: "bar", barMaxWidth: 22,
          data: queues.map((q) => ({
            value: pct(q.service_level),
            itemStyle: { color: q.service_level !== null && q.service_level < targetOf(q) ? "#c62828" : "#1a7f37" },
          })) },
        { name: "target", type: "line", data: queues.map((q) => pct(targetOf(q))), symbol: "rect",
          symbolSize: [4, 22], lineStyle: { opacity: 0 }, itemStyle: { color: "#17202e" } },
      ],
    }, { replaceMerge: ["series", "yAxis"] });
  }

  function drawCampaigns(campaigns) {
    const chart = chartsReady().campaigns;
    const names = campaigns.map((c) => c.campaign);
    const rates = campaigns.flatMap((c) => [c.outbound_abandonment_rate, c.abandonment_rate_24h]).map(pct);
    const ceiling = Math.max(4, Math.ceil(Math.max(0, ...rates.filter((r) => r !== null)) + 0.5)); // the 3% line always shows
    chart.setOption({
      aria: { enabled: true },
      animation: false,
      grid: { left: 50, right: 90, top: 30, bottom: 30 },
      tooltip: { trigger: "axis", valueFormatter: (v) => (v === null || v === undefined ? "–" : v + "%") },
      legend: { top: 0, left: 0, data: ["today", "rolling 24 h"] },
      xAxis: { type: "category", data: names },
      yAxis: { type: "value", min: 0, max: ceiling, axisLabel: { formatter: "{value}%" } },
      series: [
        { name: "today", type: "bar", barMaxWidth: 28, itemStyle: { color: "#8aa6cf" },
          data: campaigns.map((c) => pct(c.outbound_abandonment_rate)) },
        { name: "rolling 24 h", type: "bar", barMaxWidth: 28,
          data: campaigns.map((c) => ({
            value: pct(c.abandonment_rate_24h),
            itemStyle: { color: (c.abandonment_rate_24h || 0) > LEGAL_ABANDONMENT ? "#c62828" : "#1f6feb" },
          })),
          markLine: {
            symbol: "none", silent: true,
            lineStyle: { color: "#c62828", type: "dashed", width: 2 },
            label: { formatter: "3% limit", position: "end", color: "#c62828" },
            data: [{ yAxis: LEGAL_ABANDONMENT * 100, name: "3% limit" }],
          } },
      ],
    }, { replaceMerge: ["series", "xAxis"] });
  }

  // Waits keep growing between events: recount them every second.
  function tick() {
    if (!view.stats) return;
    const queues = view.stats.queues || [];
    setText("total-longest", format.duration(Math.max(0, ...queues.map(longestWait))));
    for (const q of queues) {
      const cell = document.querySelector(`#queues tr[data-queue="${CSS.escape(q.queue)}"] [data-field=longest-wait]`);
      if (cell) cell.textContent = format.duration(longestWait(q));
    }
  }
  setInterval(tick, 1000);

  document.addEventListener("DOMContentLoaded", connect);
})();
