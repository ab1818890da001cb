"use strict";

/* Workflow history page: sign-in, history table, execution view, statistics and a live SSE feed.
   All server text is rendered through textContent (see h()); the token lives only in sessionStorage. */

const TOKEN_KEY = "optiinfra.token";
const PAGE_SIZE = 25;
const RECONNECT_MS = 1000;
const REFRESH_DEBOUNCE_MS = 300;
const WORKFLOW_TYPES = [
  "cost_analysis", "performance_tuning", "resource_optimization", "quality_check",
  "scaling_decision", "configuration_update", "health_check", "anomaly_detection",
];
const EXECUTION_STATUSES = ["pending", "running", "completed", "failed", "cancelled", "timeout"];
const FINISHED_STATUSES = ["completed", "failed", "cancelled", "timeout"];

const state = freshState();

function freshState() {
  return {
    me: null,
    view: null,
    history: { cursors: [null], items: [], nextCursor: null },
    executionId: null,
    stream: null,
    lastEventId: null,
    seq: {},
  };
}

/* ---------- DOM helpers ---------- */

const $ = (id) => document.getElementById(id);

function h(tag, props = {}, ...children) {
  return build(document.createElement(tag), props, children);
}

function s(tag, props = {}, ...children) {
  return build(document.createElementNS("http://www.w3.org/2000/svg", tag), props, children);
}

function build(node, props, children) {
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "testid") node.dataset.testid = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children.flat().filter((child) => child != null && child !== false));
  return node;
}

function badge(status, testid) {
  return h("span", { class: `badge st-${status}`, testid, text: status });
}

function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.map(([term, value]) => h("div", {}, h("dt", { text: term }), h("dd", { text: value }))));
}

function fillTable(tbodyId, items, cells, emptyText) {
  const tbody = $(tbodyId);
  const columns = tbody.closest("table").tHead.rows[0].cells.length;
  const rows = items.map((item) => h("tr", {}, cells(item).map((cell) => h("td", {}, cell))));
  tbody.replaceChildren(...(rows.length ? rows : [emptyRow(columns, emptyText)]));
}

function emptyRow(columns, text) {
  return h("tr", {}, h("td", { colspan: columns, class: "muted empty", text }));
}

function clipped(text) {
  return h("span", { class: "clip", title: text, text: text ?? "—" });
}

/* ---------- formatting ---------- */

const timeFormat = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

const fmtTime = (when) => (when ? timeFormat.format(new Date(when)) : "—");
const fmtDay = (iso) => dayFormat.format(new Date(iso));
const fmtPercent = (ratio) => (ratio == null ? "—" : `${(ratio * 100).toFixed(1)}%`);
const fmtCount = (value) => String(Math.round(value));
const shortId = (id) => (id ? String(id).slice(0, 8) : "—");
const compactJson = (value) => (value == null ? "—" : JSON.stringify(value));

function fmtDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 59.95) return `${seconds.toFixed(1)} s`;
  const total = Math.round(seconds);
  if (total < 3600) return `${Math.floor(total / 60)} min ${total % 60} s`;
  return `${Math.floor(total / 3600)} h ${Math.floor((total % 3600) / 60)} min`;
}

function fmtAxisDuration(seconds) {
  if (seconds < 60) return `${+seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${+(seconds / 60).toFixed(1)} min`;
  return `${+(seconds / 3600).toFixed(1)} h`;
}

function fmtBytes(bytes) {
  if (bytes == null) return null;
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

/** Duration of an execution or step; unfinished ones count up to now. */
function durationText(item) {
  if (item.duration_seconds != null) return fmtDuration(item.duration_seconds);
  if (item.started_at && !item.completed_at) {
    return `${fmtDuration((Date.now() - Date.parse(item.started_at)) / 1000)} so far`;
  }
  return "—";
}

const hasContent = (details) => details != null && Object.keys(details).length > 0;

/** The human part of an error_details object, or null when it has none. */
function errorMessage(details) {
  const message = details?.error_message ?? details?.message ?? details?.error ?? details?.detail;
  if (message == null) return null;
  return typeof message === "string" ? message : compactJson(message);
}

/* ---------- API ---------- */

class ProblemError extends Error {
  constructor(problem) {
    super(problem.detail || problem.title);
    this.problem = problem;
  }
}

function authHeaders(extra = {}) {
  return { ...extra, Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` };
}

function toQuery(params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const item of [].concat(value)) {
      if (item != null && item !== "") query.append(key, item);
    }
  }
  const text = query.toString();
  return text ? `?${text}` : "";
}

/** Turns a failed response into a ProblemError; a 401 also signs out. */
async function failure(res) {
  const problem = { type: "about:blank", title: res.statusText || "Request failed", status: res.status, detail: "" };
  try {
    Object.assign(problem, await res.json());
  } catch {
    // Not a problem+json body: keep the status line.
  }
  if (res.status === 401) signOut(problem.detail || problem.title);
  return new ProblemError(problem);
}

async function api(path, params) {
  const res = await fetch(path + toQuery(params), {
    headers: authHeaders({ Accept: "application/json" }),
    cache: "no-cache", // revalidate: the statistics routes answer 304 to a matching ETag
  });
  if (!res.ok) throw await failure(res);
  return res.json();
}

/** Returns a check that is true only while no newer request with the same key has started. */
function ticket(key) {
  const number = (state.seq[key] ?? 0) + 1;
  state.seq[key] = number;
  return () => state.seq[key] === number;
}

async function load(key, request, render) {
  const current = ticket(key);
  try {
    const data = await request();
    if (current()) render(data);
  } catch (error) {
    if (current()) report(error);
  }
}

function report(error) {
  if (error.problem?.status === 401) return;
  const problem = error.problem;
  showBanner(problem ? `${problem.title}${problem.detail ? `: ${problem.detail}` : ""}` : `Request failed: ${error.message}`);
}

function showBanner(text) {
  $("error-text").textContent = text;
  $("error-banner").hidden = false;
}

function hideBanner() {
  $("error-banner").hidden = true;
}

/* ---------- sign-in ---------- */

async function signIn(token) {
  if (!token.trim()) return;
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  hideBanner();
  try {
    state.me = await api("/api/me");
  } catch (error) {
    if (error.problem?.status !== 401) {
      signOut();
      report(error);
    }
    return;
  }
  $("signed-in-as").textContent = `${state.me.customer_name ?? state.me.customer_id} (${state.me.sub})`;
  document.body.classList.add("signed-in");
  startStream();
  route();
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  state.stream?.abort();
  Object.assign(state, freshState());
  document.body.classList.remove("signed-in");
  setLive(false);
  $("token-input").value = "";
  $("signin-message").textContent = message;
  showView("signin");
  loadDemoCustomers();
}

async function loadDemoCustomers() {
  const box = $("demo-customers");
  box.hidden = true;
  try {
    const res = await fetch("/api/demo/customers", { headers: { Accept: "application/json" } });
    if (!res.ok) return;
    const customers = await res.json();
    $("demo-list").replaceChildren(...customers.map(demoButton));
    box.hidden = customers.length === 0;
  } catch {
    // No demo server: the picker stays hidden.
  }
}

function demoButton(customer) {
  return h("button", {
    type: "button",
    testid: "demo-customer",
    data: { customerId: customer.customer_id },
    onclick: () => signIn(customer.token),
    text: `Sign in as ${customer.name}`,
  });
}

/* ---------- routing ---------- */

function parseRoute() {
  const [name, id] = location.hash.replace(/^#\/?/, "").split("/");
  if (name === "execution" && id) return { view: "execution", id: decodeURIComponent(id) };
  return { view: name === "stats" ? "stats" : "history" };
}

function showView(name) {
  state.view = name;
  for (const section of document.querySelectorAll("main > section")) {
    section.hidden = section.id !== `${name}-view`;
  }
  for (const link of document.querySelectorAll(".nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function route() {
  if (!state.me) return;
  hideBanner();
  const target = parseRoute();
  showView(target.view);
  if (target.view === "execution") openExecution(target.id);
  else if (target.view === "stats") loadStats();
  else loadHistory();
}

/* ---------- history ---------- */

function localDayStart(dateValue, addDays = 0) {
  const date = new Date(`${dateValue}T00:00:00`);
  date.setDate(date.getDate() + addDays);
  return date.toISOString();
}

function historyParams() {
  const since = $("since-filter").value;
  const until = $("until-filter").value;
  return {
    limit: PAGE_SIZE,
    cursor: state.history.cursors.at(-1),
    status: $("status-filter").value,
    workflow_type: $("type-filter").value,
    since: since && localDayStart(since),
    until: until && localDayStart(until, 1),
  };
}

function loadHistory() {
  return load("history", () => api("/api/workflows/history", historyParams()), renderHistory);
}

function showFirstPage() {
  state.history.cursors = [null];
  loadHistory();
}

function showNextPage() {
  if (!state.history.nextCursor) return;
  state.history.cursors.push(state.history.nextCursor);
  loadHistory();
}

function renderHistory(page) {
  state.history.items = page.items;
  state.history.nextCursor = page.next_cursor;
  const rows = page.items.map(historyRow);
  $("history-body").replaceChildren(...(rows.length ? rows : [emptyRow(6, "No executions match these filters.")]));
  $("next-page").disabled = !page.next_cursor;
  $("first-page").disabled = state.history.cursors.length === 1;
  $("page-label").textContent = `Page ${state.history.cursors.length}`;
}

function historyRow(execution) {
  const open = () => {
    location.hash = `#execution/${encodeURIComponent(execution.id)}`;
  };
  return h("tr", {
    class: "clickable",
    tabindex: 0,
    testid: "history-row",
    data: { executionId: execution.id, status: execution.status },
    onclick: open,
    onkeydown: (event) => event.key === "Enter" && open(),
  },
  h("td", { text: execution.workflow_type }),
  h("td", {}, badge(execution.status)),
  h("td", { class: "nowrap", text: fmtTime(execution.started_at) }),
  h("td", { class: "nowrap", text: durationText(execution) }),
  h("td", {}, h("code", { title: execution.agent_id, text: shortId(execution.agent_id) })),
  h("td", {}, h("code", { title: execution.id, text: shortId(execution.id) })));
}

/* ---------- execution view ---------- */

function openExecution(id) {
  if (state.executionId !== id) {
    state.executionId = id;
    for (const part of ["execution-summary", "timeline", "trail-body", "artifact-list", "execution-data"]) {
      $(part).replaceChildren();
    }
    $("execution-summary").append(h("p", { class: "muted", text: "Loading…" }));
  }
  return load("execution", () => api(`/api/workflows/${encodeURIComponent(id)}/details`), renderExecution);
}

function renderExecution(execution) {
  const steps = [...(execution.steps ?? [])].sort((a, b) => a.step_order - b.step_order);
  const stepNames = new Map(steps.map((step) => [step.id, step.step_name]));
  $("execution-summary").replaceChildren(...executionSummary(execution));
  $("timeline").replaceChildren(...timeline(execution, steps));
  const transitions = execution.transitions ?? [];
  $("trail-body").replaceChildren(...(transitions.length
    ? transitions.map((transition) => trailRow(transition, stepNames))
    : [emptyRow(5, "No transitions recorded.")]));
  renderArtifacts(execution.artifacts ?? [], stepNames);
  renderDataBlocks(execution);
}

function executionSummary(execution) {
  return [
    h("div", { class: "title-row" },
      h("h1", { text: execution.workflow_type }),
      badge(execution.status, "execution-status")),
    facts([
      ["Started", fmtTime(execution.started_at)],
      ["Completed", fmtTime(execution.completed_at)],
      ["Duration", durationText(execution)],
      ["Agent", execution.agent_id],
      ["Execution", execution.id],
      ["Version", execution.version],
      ["Idempotency key", execution.idempotency_key ?? "—"],
    ]),
    hasContent(execution.error_details) && errorBox(execution.error_details),
  ].filter(Boolean);
}

function errorBox(details) {
  const message = errorMessage(details);
  const json = JSON.stringify(details, null, 2);
  return h("div", { class: "error-box", role: "alert", testid: "execution-error" },
    h("strong", { text: "Error" }),
    message
      ? [h("p", { text: message }), h("details", {}, h("summary", { text: "Details" }), h("pre", { text: json }))]
      : h("pre", { text: json }));
}

/** Time span the timeline covers: execution start (or first step) to its end, now while unfinished. */
function timeSpan(execution, steps) {
  const end = execution.completed_at ? Date.parse(execution.completed_at) : Date.now();
  const starts = [execution.started_at, ...steps.map((step) => step.started_at)].filter(Boolean).map(Date.parse);
  const ends = steps.map((step) => stepRange(step, end)?.to ?? end);
  const start = starts.length ? Math.min(...starts) : Date.parse(execution.created_at);
  const stop = Math.max(end, ...ends);
  return { start, stop: Math.max(stop, start + 1), executionEnd: end };
}

function stepRange(step, executionEnd) {
  if (!step.started_at) return null;
  return {
    from: Date.parse(step.started_at),
    to: step.completed_at ? Date.parse(step.completed_at) : executionEnd,
  };
}

function timeline(execution, steps) {
  if (!steps.length) return [h("p", { class: "muted", text: "No steps recorded." })];
  const span = timeSpan(execution, steps);
  return [
    ...steps.map((step) => timelineRow(step, span)),
    h("div", { class: "tl-row" }, h("span"),
      h("div", { class: "tl-axis" },
        h("span", { text: fmtTime(span.start) }),
        h("span", { text: fmtDuration((span.stop - span.start) / 1000) }),
        h("span", { text: fmtTime(span.stop) }))),
  ];
}

function barPosition(range, span) {
  const total = span.stop - span.start;
  const width = Math.max(((range.to - range.from) / total) * 100, 0.8);
  const left = Math.min(((range.from - span.start) / total) * 100, 100 - width);
  return { left: `${Math.max(left, 0)}%`, width: `${width}%` };
}

function timelineRow(step, span) {
  const range = stepRange(step, span.executionEnd);
  const retries = step.retry_count ?? 0;
  const error = hasContent(step.error_details)
    ? errorMessage(step.error_details) ?? compactJson(step.error_details)
    : null;
  const tooltip = [`${step.step_name}: ${step.status}`, range && durationText(step), retries > 0 && `${retries} retries`, error]
    .filter(Boolean).join(" · ");
  const bar = h("div", {
    class: `tl-bar st-${step.status}${range ? "" : " tl-empty"}`,
    testid: "timeline-bar",
    data: { stepName: step.step_name, status: step.status, retries },
    title: tooltip,
    style: range ? barPosition(range, span) : {},
  }, retries > 0 && h("span", { class: "tl-retry", text: `↻${retries}` }));
  return h("div", { class: "tl-row" },
    h("span", { class: "tl-label", title: step.step_name, text: step.step_name }),
    h("div", { class: "tl-track" }, bar),
    h("span", { class: "tl-dur", text: range ? durationText(step) : step.status }),
    error && h("div", { class: "tl-error", text: error }));
}

function trailRow(transition, stepNames) {
  const subject = transition.workflow_step_id
    ? stepNames.get(transition.workflow_step_id) ?? `step ${shortId(transition.workflow_step_id)}`
    : "execution";
  return h("tr", { testid: "transition-row", data: { transitionId: transition.id } },
    h("td", { class: "nowrap", text: fmtTime(transition.at) }),
    h("td", { text: subject }),
    h("td", { class: "nowrap" },
      transition.from_status ? badge(transition.from_status) : h("span", { class: "muted", text: "new" }),
      " → ",
      badge(transition.to_status)),
    h("td", { text: transition.actor ?? "—" }),
    h("td", {}, h("code", { class: "clip", title: compactJson(transition.reason), text: compactJson(transition.reason) })));
}

function renderArtifacts(artifacts, stepNames) {
  const items = artifacts.map((artifact) => h("li", {},
    h("strong", { text: artifact.artifact_name }), " ",
    h("span", { class: "chip", text: artifact.artifact_type }),
    h("div", {
      class: "muted",
      text: [stepNames.get(artifact.workflow_step_id), artifact.content_type, fmtBytes(artifact.artifact_size_bytes),
        fmtTime(artifact.created_at)].filter(Boolean).join(" · "),
    }),
    artifact.artifact_path && h("code", { class: "path", text: artifact.artifact_path })));
  $("artifact-list").replaceChildren(...(items.length ? items : [h("li", { class: "muted", text: "No artifacts." })]));
}

/** Input, output and metadata as collapsible JSON; keeps open panels open across live re-renders. */
function renderDataBlocks(execution) {
  const box = $("execution-data");
  const open = new Set([...box.querySelectorAll("details[open]")].map((node) => node.dataset.key));
  const blocks = [["input_data", "Input"], ["output_data", "Output"], ["metadata", "Metadata"]].map(([key, title]) =>
    h("details", { data: { key }, open: open.has(key) },
      h("summary", { text: title }),
      h("pre", { text: JSON.stringify(execution[key] ?? {}, null, 2) })));
  box.replaceChildren(...blocks);
}

/* ---------- statistics ---------- */

function loadStats() {
  const params = { days: $("days-select").value, workflow_type: $("stats-type-filter").value };
  return load("stats", () => Promise.all([
    api("/api/workflows/statistics", params),
    api("/api/workflows/performance-metrics", params),
    api("/api/workflows/trend", { ...params, bucket: "day" }),
  ]), renderStats);
}

function renderStats([stats, perf, trend]) {
  $("stats-range").textContent = `${fmtTime(stats.since)} – ${fmtTime(stats.until)}`;
  $("stats-total").textContent = stats.total;
  $("stats-success-rate").textContent = fmtPercent(stats.success_rate);
  $("stats-p50").textContent = fmtDuration(stats.p50_duration_seconds);
  $("stats-p95").textContent = fmtDuration(stats.p95_duration_seconds);
  $("stats-max").textContent = fmtDuration(stats.max_duration_seconds);
  $("status-counts").replaceChildren(...EXECUTION_STATUSES.map((status) =>
    h("span", { class: `badge st-${status}`, text: `${status} ${stats.count_by_status?.[status] ?? 0}` })));
  renderTypeTable(stats.by_type ?? {});
  $("trend-chart").replaceChildren(...trendCharts(trend.buckets ?? []));
  renderPerformance(perf);
}

function renderTypeTable(byType) {
  const entries = Object.entries(byType).sort((a, b) => b[1].total - a[1].total);
  fillTable("type-body", entries, ([type, row]) => [
    type, row.total, fmtPercent(row.success_rate), fmtDuration(row.avg_duration_seconds),
    fmtDuration(row.p50_duration_seconds), fmtDuration(row.p95_duration_seconds), fmtDuration(row.max_duration_seconds),
  ], "No executions in this window.");
}

function renderPerformance(perf) {
  $("perf-summary").textContent = `${perf.finished} finished · success ${fmtPercent(perf.success_rate)}`
    + ` · p50 ${fmtDuration(perf.p50_duration_seconds)} · p95 ${fmtDuration(perf.p95_duration_seconds)}`;
  const buckets = perf.duration_buckets ?? [];
  $("duration-chart").replaceChildren(buckets.length
    ? barChart(buckets.map((b) => ({ label: b.label, value: b.count })), fmtCount)
    : h("p", { class: "muted", text: "No finished executions." }));
  fillTable("errors-body", perf.error_patterns ?? [], (p) => [
    p.source, h("code", { text: p.error_type }), p.count, h("span", { class: "nowrap", text: fmtTime(p.last_seen) }),
    clipped(p.sample_message),
  ], "No errors in this window.");
  fillTable("slowest-body", perf.slowest_steps ?? [], (row) => [
    row.step_name, row.count, fmtDuration(row.avg_seconds), fmtDuration(row.p95_seconds),
  ], "No step timings yet.");
  fillTable("retry-body", perf.retry_hotspots ?? [], (row) => [
    row.step_name, row.steps, row.total_retries, fmtPercent(row.share_retried),
  ], "No retries.");
  const tips = (perf.tips ?? []).map((tip) => h("li", { text: tip }));
  $("tips").replaceChildren(...(tips.length ? tips : [h("li", { class: "muted", text: "Nothing to suggest." })]));
}

function bucketSuccessRate(bucket) {
  const counts = bucket.count_by_status ?? {};
  const finished = FINISHED_STATUSES.reduce((sum, status) => sum + (counts[status] ?? 0), 0);
  return finished ? (counts.completed ?? 0) / finished : null;
}

function trendCharts(buckets) {
  if (!buckets.length) return [h("p", { class: "muted", text: "No data in this window." })];
  const label = (bucket) => fmtDay(bucket.start);
  return [
    h("figure", {},
      h("figcaption", { text: "Success rate" }),
      lineChart(buckets.map((b) => ({ label: label(b), value: bucketSuccessRate(b) })), fmtPercent, 1)),
    h("figure", {},
      h("figcaption", { text: "Average duration" }),
      barChart(buckets.map((b) => ({ label: label(b), value: b.avg_duration_seconds ?? 0 })), fmtAxisDuration,
        fmtDuration)),
  ];
}

/* ---------- SVG charts ---------- */

const CHART = { width: 360, height: 160, left: 50, right: 8, top: 10, bottom: 22 };

/** Axes, gridlines and labels shared by both chart kinds; returns scales for the marks. */
function chartFrame(points, top, axisFormat) {
  const svg = s("svg", { viewBox: `0 0 ${CHART.width} ${CHART.height}`, class: "chart", role: "img" });
  const plotWidth = CHART.width - CHART.left - CHART.right;
  const plotHeight = CHART.height - CHART.top - CHART.bottom;
  const band = plotWidth / Math.max(points.length, 1);
  const x = (index) => CHART.left + index * band;
  const y = (value) => CHART.top + plotHeight * (1 - value / top);
  for (const value of [0, top / 2, top]) {
    svg.append(
      s("line", { class: "grid", x1: CHART.left, x2: CHART.width - CHART.right, y1: y(value), y2: y(value) }),
      s("text", { class: "axis", x: CHART.left - 4, y: y(value) + 3, "text-anchor": "end", text: axisFormat(value) }));
  }
  const every = Math.ceil(points.length / 8);
  points.forEach((point, index) => {
    if (index % every !== 0) return;
    svg.append(s("text", {
      class: "axis", x: x(index) + band / 2, y: CHART.height - 6, "text-anchor": "middle", text: point.label,
    }));
  });
  return { svg, x, y, band };
}

function barChart(points, axisFormat, valueFormat = axisFormat) {
  const top = Math.max(0, ...points.map((point) => point.value)) || 1;
  const { svg, x, y, band } = chartFrame(points, top, axisFormat);
  points.forEach((point, index) => {
    svg.append(s("rect", {
      class: "bar", x: x(index) + band * 0.15, width: band * 0.7, y: y(point.value), height: y(0) - y(point.value),
    }, s("title", { text: `${point.label}: ${valueFormat(point.value)}` })));
  });
  return svg;
}

function lineChart(points, format, top) {
  const { svg, x, y, band } = chartFrame(points, top, format);
  const cx = (index) => x(index) + band / 2;
  let path = "";
  let pen = "M";
  points.forEach((point, index) => {
    if (point.value == null) {
      pen = "M";
      return;
    }
    path += `${pen}${cx(index)},${y(point.value)} `;
    pen = "L";
  });
  svg.append(s("path", { class: "line", d: path.trim() }));
  points.forEach((point, index) => {
    if (point.value == null) return;
    svg.append(s("circle", { class: "dot", cx: cx(index), cy: y(point.value), r: 2.5 },
      s("title", { text: `${point.label}: ${format(point.value)}` })));
  });
  return svg;
}

/* ---------- live events (fetch + SSE parser, since EventSource cannot send Authorization) ---------- */

function setLive(connected) {
  const indicator = $("live-status");
  indicator.textContent = connected ? "live" : "reconnecting";
  indicator.classList.toggle("on", connected);
}

function startStream() {
  state.stream?.abort();
  state.stream = new AbortController();
  streamLoop(state.stream.signal);
}

async function streamLoop(signal) {
  while (!signal.aborted) {
    try {
      await consumeStream(signal);
    } catch {
      // Network error, abort or failed status: retry below unless stopped.
    }
    if (signal.aborted) return;
    setLive(false);
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
  }
}

async function consumeStream(signal) {
  const headers = authHeaders({ Accept: "text/event-stream" });
  if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
  const res = await fetch("/api/workflows/events", { headers, signal, cache: "no-store" });
  // an id the server no longer knows (404) or cannot read (422): start afresh and reload the views
  if (res.status === 404 || res.status === 422) state.lastEventId = null;
  if (!res.ok) throw await failure(res);
  setLive(true);
  await readEvents(res.body, handleFrame);
}

async function readEvents(body, onFrame) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let frame = { data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const raw of lines) {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (line === "") {
        onFrame(frame);
        frame = { data: [] };
      } else if (!line.startsWith(":")) {
        parseField(frame, line);
      }
    }
  }
}

function parseField(frame, line) {
  const colon = line.indexOf(":");
  const field = colon < 0 ? line : line.slice(0, colon);
  let value = colon < 0 ? "" : line.slice(colon + 1);
  if (value.startsWith(" ")) value = value.slice(1);
  if (field === "data") frame.data.push(value);
  else if (field === "event") frame.event = value;
  else if (field === "id") frame.id = value;
}

function handleFrame(frame) {
  if (frame.id) state.lastEventId = frame.id;
  if (!frame.data.length || (frame.event && frame.event !== "transition")) return;
  try {
    onTransition(JSON.parse(frame.data.join("\n")));
  } catch (error) {
    console.warn("Ignoring malformed event", error);
  }
}

function debounce(fn, ms) {
  let timer;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

const refreshHistory = debounce(() => state.view === "history" && loadHistory(), REFRESH_DEBOUNCE_MS);
const refreshExecution = debounce(
  () => state.view === "execution" && state.executionId && openExecution(state.executionId), REFRESH_DEBOUNCE_MS);

function onTransition(transition) {
  const executionId = transition.workflow_execution_id;
  const isNewExecution = transition.workflow_step_id == null && transition.from_status == null;
  if (state.view === "history") {
    const visible = state.history.items.some((execution) => execution.id === executionId);
    if (visible || (isNewExecution && state.history.cursors.length === 1)) refreshHistory();
  }
  if (state.view === "execution" && state.executionId === executionId) refreshExecution();
}

/* ---------- start-up ---------- */

function fillSelect(select, values) {
  select.append(...values.map((value) => h("option", { value, text: value })));
}

function wireEvents() {
  window.addEventListener("hashchange", route);
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token-input").value);
  });
  $("sign-out").addEventListener("click", () => {
    history.replaceState(null, "", location.pathname);
    signOut();
  });
  $("error-dismiss").addEventListener("click", hideBanner);
  $("history-filters").addEventListener("submit", (event) => event.preventDefault());
  $("history-filters").addEventListener("change", showFirstPage);
  $("first-page").addEventListener("click", showFirstPage);
  $("next-page").addEventListener("click", showNextPage);
  $("days-select").addEventListener("change", loadStats);
  $("stats-type-filter").addEventListener("change", loadStats);
}

function init() {
  fillSelect($("status-filter"), EXECUTION_STATUSES);
  fillSelect($("type-filter"), WORKFLOW_TYPES);
  fillSelect($("stats-type-filter"), WORKFLOW_TYPES);
  wireEvents();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
  else signOut();
}

init();
