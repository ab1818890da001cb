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
const RELATIVE_EVERY_MS = 30_000;
const UUID_PATTERN = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
const HISTORY_FILTERS = ["status", "type", "since", "until", "q"];

const state = freshState();

function freshState() {
  return {
    me: null,
    view: null,
    history: { cursors: [null], items: [], nextCursor: null, filterKey: null, hash: "#history" },
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
    pairs.map(([term, value]) => h("div", {}, h("dt", { text: term }),
      value instanceof Node ? h("dd", {}, value) : h("dd", { text: value }))));
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

/* Times show in the browser's zone, named ("GMT+1", "UTC"); the exact UTC instant is in each title. */
const timeFormat = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
});
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

const fmtTime = (when) => (when ? timeFormat.format(new Date(when)) : "—");
const fmtUtc = (when) => new Date(when).toISOString().replace("T", " ").replace("Z", " UTC");
const fmtDay = (iso) => dayFormat.format(new Date(iso));
const fmtPercent = (ratio) => (ratio == null ? "—" : `${(ratio * 100).toFixed(1)}%`);
const fmtAxisPercent = (ratio) => `${Math.round(ratio * 100)}%`;
const fmtCount = (value) => String(Math.round(value));
/* Ids are time-ordered: their heads repeat for everything made in the same minute, their tails do not. */
const shortId = (id) => (id ? `…${String(id).slice(-8)}` : "—");
const compactJson = (value) => (value == null ? "—" : JSON.stringify(value));

/** "just now", "45 s ago", "3 min ago", "2 h ago", "4 days ago" (or "in …" for a time ahead). */
function fmtRelative(when, now = Date.now()) {
  const seconds = Math.round((now - Date.parse(when)) / 1000);
  const size = Math.abs(seconds);
  if (size < 10) return "just now";
  let text;
  if (size < 60) text = `${size} s`;
  else if (size < 3600) text = `${Math.floor(size / 60)} min`;
  else if (size < 86400) text = `${Math.floor(size / 3600)} h`;
  else {
    const days = Math.floor(size / 86400);
    text = `${days} day${days === 1 ? "" : "s"}`;
  }
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

/** A time: local with its zone, then how long ago; the exact UTC instant in the title. */
function timeNode(when, { relative = true } = {}) {
  if (!when) return h("span", { class: "muted", text: "—" });
  return h("time", { datetime: when, title: fmtUtc(when), testid: "time" },
    h("span", { class: "local", text: fmtTime(when) }),
    relative && h("span", { class: "relative", data: { relative: when }, text: fmtRelative(when) }));
}

function refreshRelativeTimes() {
  for (const node of document.querySelectorAll("[data-relative]")) node.textContent = fmtRelative(node.dataset.relative);
}

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

/** Runs `request`, then `render` its answer, or `fail` (the cards settle) and report the error. */
async function load(key, request, render, fail) {
  const current = ticket(key);
  try {
    const data = await request();
    if (current()) render(data);
  } catch (error) {
    if (!current()) return;
    if (error.problem?.status === 401) return;
    const shown = fail?.(error);
    if (!shown) report(error);
  }
}

function problemText(error) {
  const problem = error.problem;
  return problem ? `${problem.title}${problem.detail ? `: ${problem.detail}` : ""}` : `Request failed: ${error.message}`;
}

function report(error) {
  if (error.problem?.status === 401) return;
  showBanner(problemText(error));
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
    // an empty list outside the demo (never an error status: nothing is logged on a normal load)
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

/* ---------- routing: the view, its filters and the open execution live in the URL's hash ---------- */

/** `#history?status=failed&status=timeout&type=…`, `#execution/<id>`, `#stats?days=7` → { view, id, params }. */
function parseRoute(hash = location.hash) {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?");
  const [name, id] = path.split("/");
  const params = new URLSearchParams(query);
  if (name === "execution" && id) return { view: "execution", id: decodeURIComponent(id), params };
  return { view: name === "stats" ? "stats" : "history", params };
}

function routeHash(view, params) {
  const query = params.toString();
  return `#${view}${query ? `?${query}` : ""}`;
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
  else if (target.view === "stats") {
    setStatsControls(target.params);
    loadStats();
  } else {
    setHistoryControls(target.params);
    state.history.hash = routeHash("history", historyQuery());
    for (const link of document.querySelectorAll('a[href^="#history"]')) link.setAttribute("href", state.history.hash);
    const key = historyQuery();
    key.delete("q");
    if (state.history.filterKey !== key.toString()) {
      state.history.filterKey = key.toString();
      state.history.cursors = [null];
    }
    loadHistory();
  }
}

/** Goes to `hash` (a new history entry, so back and forward step through filters); route() follows. */
function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/* ---------- history ---------- */

function localDayStart(dateValue, addDays = 0) {
  const date = new Date(`${dateValue}T00:00:00`);
  date.setDate(date.getDate() + addDays);
  return date.toISOString();
}

const isDate = (value) => /^\d{4}-\d{2}-\d{2}$/.test(value ?? "");

function checkedStatuses() {
  return [...$("status-filter").querySelectorAll("input:checked")].map((box) => box.value);
}

/** The history filters as the controls hold them, in URL form. */
function historyQuery() {
  const params = new URLSearchParams();
  for (const status of checkedStatuses()) params.append("status", status);
  if ($("type-filter").value) params.set("type", $("type-filter").value);
  if ($("since-filter").value) params.set("since", $("since-filter").value);
  if ($("until-filter").value) params.set("until", $("until-filter").value);
  const q = $("find-input").value.trim();
  if (q) params.set("q", q);
  return params;
}

/** Sets the controls from the URL (values the page does not know are ignored). */
function setHistoryControls(params) {
  const statuses = new Set(params.getAll("status"));
  for (const box of $("status-filter").querySelectorAll("input")) box.checked = statuses.has(box.value);
  const type = params.get("type");
  $("type-filter").value = WORKFLOW_TYPES.includes(type) ? type : "";
  $("since-filter").value = isDate(params.get("since")) ? params.get("since") : "";
  $("until-filter").value = isDate(params.get("until")) ? params.get("until") : "";
  $("find-input").value = params.get("q") ?? "";
}

function historyParams() {
  const since = $("since-filter").value;
  const until = $("until-filter").value;
  return {
    limit: PAGE_SIZE,
    cursor: state.history.cursors.at(-1),
    status: checkedStatuses(),
    workflow_type: $("type-filter").value,
    since: since && localDayStart(since),
    until: until && localDayStart(until, 1),
  };
}

function loadHistory() {
  return load("history", () => api("/api/workflows/history", historyParams()), renderHistory, (error) => {
    state.history.items = [];
    $("history-body").replaceChildren(emptyRow(6, `Could not load executions (${problemText(error)}).`));
    $("find-note").textContent = "";
    return false;
  });
}

function applyHistoryFilters() {
  navigate(routeHash("history", historyQuery()));
}

function clearHistoryFilters() {
  navigate("#history");
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

/** The search box: a whole id (or a link holding one) opens that execution; other text narrows this page. */
function find(event) {
  event.preventDefault();
  const text = $("find-input").value.trim();
  const id = text.match(UUID_PATTERN)?.[0];
  if (id) {
    $("find-input").value = "";
    navigate(`#execution/${encodeURIComponent(id.toLowerCase())}`);
  } else {
    applyHistoryFilters();
  }
}

function matches(execution, needle) {
  const words = [execution.id, execution.agent_id, execution.agent_name, execution.workflow_type, execution.status];
  return words.some((word) => word != null && String(word).toLowerCase().includes(needle));
}

function renderHistory(page) {
  state.history.items = page.items;
  state.history.nextCursor = page.next_cursor;
  const needle = $("find-input").value.trim().toLowerCase();
  const shown = needle ? page.items.filter((execution) => matches(execution, needle)) : page.items;
  const rows = shown.map(historyRow);
  const emptyText = needle ? "No execution on this page matches the search." : "No executions match these filters.";
  $("history-body").replaceChildren(...(rows.length ? rows : [emptyRow(6, emptyText)]));
  $("find-note").textContent = needle
    ? `${shown.length} of ${page.items.length} executions on this page match “${needle}”. `
      + "Paste a whole execution id to open it from any page."
    : "";
  $("next-page").disabled = !page.next_cursor;
  $("first-page").disabled = state.history.cursors.length === 1;
  $("page-label").textContent = `Page ${state.history.cursors.length}`;
}

async function copyText(text, button) {
  let copied = false;
  try {
    await navigator.clipboard.writeText(text);
    copied = true;
  } catch {
    // No clipboard access (an insecure origin, or refused): select the text for a manual copy.
    const code = button.previousElementSibling;
    const range = document.createRange();
    range.selectNodeContents(code);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    code.textContent = text;
  }
  button.textContent = copied ? "Copied" : "Select";
  setTimeout(() => {
    button.textContent = "Copy";
  }, 1500);
}

function idCell(id) {
  return h("span", { class: "id-cell" },
    h("code", { class: "exec-id", title: id, testid: "execution-id", text: shortId(id) }),
    h("button", {
      type: "button",
      class: "copy",
      testid: "copy-id",
      "aria-label": `Copy execution id ${id}`,
      title: "Copy the whole id",
      text: "Copy",
      onclick: (event) => {
        event.stopPropagation();
        copyText(id, event.currentTarget);
      },
      onkeydown: (event) => event.stopPropagation(),
    }));
}

function agentNode(execution) {
  if (execution.agent_name) return h("span", { title: execution.agent_id, testid: "agent", text: execution.agent_name });
  return h("code", { title: execution.agent_id, testid: "agent", text: shortId(execution.agent_id) });
}

function historyRow(execution) {
  const open = () => navigate(`#execution/${encodeURIComponent(execution.id)}`);
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
  h("td", { class: "nowrap" }, timeNode(execution.started_at)),
  h("td", { class: "nowrap", text: durationText(execution) }),
  h("td", {}, agentNode(execution)),
  h("td", {}, idCell(execution.id)));
}

/* ---------- execution view ---------- */

/** Fills every card of the execution view with the same message (loading, or why there is nothing). */
function settleExecutionCards(summary, text) {
  $("execution-summary").replaceChildren(...summary);
  $("timeline").replaceChildren(h("p", { class: "muted", text }));
  $("trail-body").replaceChildren(emptyRow(5, text));
  $("artifact-list").replaceChildren(h("li", { class: "muted", text }));
  $("execution-data").replaceChildren(h("p", { class: "muted", text }));
}

function openExecution(id) {
  if (state.executionId !== id) {
    state.executionId = id;
    $("execution-view").dataset.state = "loading";
    settleExecutionCards([h("p", { class: "muted", text: "Loading…" })], "Loading…");
  }
  return load("execution", () => api(`/api/workflows/${encodeURIComponent(id)}/details`), renderExecution,
    (error) => executionFailed(id, error));
}

/** A failed load settles every card: a 404 (none of the caller's has this id) is said in the view itself. */
function executionFailed(id, error) {
  const status = error.problem?.status;
  const notFound = status === 404 || status === 422;
  $("execution-view").dataset.state = "failed";
  settleExecutionCards([
    h("h1", { text: notFound ? "Execution not found" : "Execution unavailable" }),
    h("p", {
      role: "alert",
      testid: "execution-problem",
      text: notFound
        ? `None of your executions has the id ${id}.`
        : `It could not be loaded (${problemText(error)}). It loads again when the page is reloaded.`,
    }),
    h("p", {}, h("a", { href: state.history.hash, text: "Back to history" })),
  ], "Not available.");
  return true;
}

function renderExecution(execution) {
  $("execution-view").dataset.state = "loaded";
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
      ["Started", timeNode(execution.started_at)],
      ["Completed", timeNode(execution.completed_at)],
      ["Duration", durationText(execution)],
      ["Agent", h("span", { testid: "execution-agent" }, execution.agent_name ?? "—", " ",
        h("code", { class: "muted", text: execution.agent_id }))],
      ["Execution", h("code", { testid: "execution-full-id", text: execution.id })],
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
        h("span", { title: fmtUtc(span.start), text: fmtTime(span.start) }),
        h("span", { text: fmtDuration((span.stop - span.start) / 1000) }),
        h("span", { title: fmtUtc(span.stop), text: fmtTime(span.stop) }))),
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
    h("td", { class: "nowrap" }, timeNode(transition.at, { relative: false })),
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

function statsQuery() {
  const params = new URLSearchParams();
  if ($("days-select").value !== "30") params.set("days", $("days-select").value);
  if ($("stats-type-filter").value) params.set("type", $("stats-type-filter").value);
  return params;
}

function setStatsControls(params) {
  const days = params.get("days");
  $("days-select").value = [...$("days-select").options].some((option) => option.value === days) ? days : "30";
  const type = params.get("type");
  $("stats-type-filter").value = WORKFLOW_TYPES.includes(type) ? type : "";
}

function loadStats() {
  const params = { days: $("days-select").value, workflow_type: $("stats-type-filter").value };
  return load("stats", () => Promise.all([
    api("/api/workflows/statistics", params),
    api("/api/workflows/performance-metrics", params),
    api("/api/workflows/trend", { ...params, bucket: "day" }),
  ]), renderStats, statsFailed);
}

/** A failed load settles every card and chart on "Not available."; the banner says why. */
function statsFailed() {
  for (const id of ["stats-total", "stats-success-rate", "stats-p50", "stats-p95", "stats-max"]) $(id).textContent = "—";
  $("stats-range").textContent = "";
  $("status-counts").replaceChildren();
  for (const id of ["trend-chart", "duration-chart"]) $(id).replaceChildren(h("p", { class: "muted", text: "Not available." }));
  $("perf-summary").textContent = "";
  for (const id of ["type-body", "errors-body", "slowest-body", "retry-body"]) fillTable(id, [], () => [], "Not available.");
  $("tips").replaceChildren(h("li", { class: "muted", text: "Not available." }));
  return false;
}

function renderStats([stats, perf, trend]) {
  $("stats-range").replaceChildren(timeNode(stats.since, { relative: false }), " – ",
    timeNode(stats.until, { relative: false }));
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
    ? barChart(buckets.map((b) => ({ label: b.label, value: b.count })), { format: fmtCount, integer: true })
    : h("p", { class: "muted", text: "No finished executions." }));
  fillTable("errors-body", perf.error_patterns ?? [], (p) => [
    p.source, h("code", { text: p.error_type }), p.count, timeNode(p.last_seen),
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
      lineChart(buckets.map((b) => ({ label: label(b), value: bucketSuccessRate(b) })), fmtPercent)),
    h("figure", {},
      h("figcaption", { text: "Average duration" }),
      barChart(buckets.map((b) => ({ label: label(b), value: b.avg_duration_seconds ?? 0 })),
        { format: fmtAxisDuration, valueFormat: fmtDuration, duration: true })),
  ];
}

/* ---------- SVG charts ---------- */

const CHART = { width: 360, height: 160, right: 8, top: 10, bottom: 22, gap: 6, fontSize: 11 };

let labelCanvas = null;

/** How wide `text` is in the charts' axis font (.chart .axis: 11px of the page's font). */
function labelWidth(text) {
  labelCanvas ??= document.createElement("canvas").getContext("2d");
  if (!labelCanvas) return text.length * CHART.fontSize * 0.75;
  labelCanvas.font = `${CHART.fontSize}px ${getComputedStyle(document.documentElement).fontFamily}`;
  return labelCanvas.measureText(text).width;
}

/** 1, 2, 2.5 or 5 times a power of ten, at least `raw` (a whole number when `integer`). */
function niceStep(raw, integer) {
  const power = 10 ** Math.floor(Math.log10(raw));
  const factors = integer && power < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  const step = factors.map((f) => f * power).find((candidate) => candidate >= raw * (1 - 1e-9));
  return integer ? Math.max(1, Math.round(step)) : step;
}

/** Evenly spaced ticks from 0 to at least `max`, about four steps, no two alike. */
function niceTicks(max, { integer = false } = {}) {
  const step = niceStep(max > 0 ? max / 4 : 1, integer);
  const count = Math.max(1, Math.ceil(max / step - 1e-9));
  return Array.from({ length: count + 1 }, (_, index) => +(index * step).toPrecision(12));
}

/** Ticks for durations in seconds: nice steps in the unit the largest value reads in. */
function durationTicks(max) {
  const unit = max < 60 ? 1 : max < 3600 ? 60 : 3600;
  return niceTicks(max / unit).map((tick) => tick * unit);
}

/** Axes, gridlines and labels shared by both chart kinds; returns scales for the marks. The left
    margin fits the longest tick label, so none is cut off. */
function chartFrame(points, ticks, axisFormat) {
  const svg = s("svg", { viewBox: `0 0 ${CHART.width} ${CHART.height}`, class: "chart", role: "img" });
  const labels = ticks.map(axisFormat);
  const left = Math.ceil(Math.max(...labels.map(labelWidth))) + CHART.gap + 4;
  const top = ticks.at(-1);
  const plotWidth = CHART.width - left - CHART.right;
  const plotHeight = CHART.height - CHART.top - CHART.bottom;
  const band = plotWidth / Math.max(points.length, 1);
  const x = (index) => left + index * band;
  const y = (value) => CHART.top + plotHeight * (1 - value / top);
  ticks.forEach((value, index) => {
    svg.append(
      s("line", { class: "grid", x1: left, x2: CHART.width - CHART.right, y1: y(value), y2: y(value) }),
      s("text", {
        class: "axis y-tick", x: left - CHART.gap, y: y(value) + 3, "text-anchor": "end", text: labels[index],
      }));
  });
  const every = Math.ceil(points.length / 8);
  points.forEach((point, index) => {
    if (index % every !== 0) return;
    svg.append(s("text", {
      class: "axis", x: x(index) + band / 2, y: CHART.height - 6, "text-anchor": "middle", text: point.label,
    }));
  });
  return { svg, x, y, band };
}

function barChart(points, { format, valueFormat = format, integer = false, duration = false }) {
  const max = Math.max(0, ...points.map((point) => point.value));
  const ticks = duration ? durationTicks(max) : niceTicks(max, { integer });
  const { svg, x, y, band } = chartFrame(points, ticks, format);
  points.forEach((point, index) => {
    svg.append(s("rect", {
      class: "bar", x: x(index) + band * 0.15, width: band * 0.7, y: y(point.value), height: y(0) - y(point.value),
    }, s("title", { text: `${point.label}: ${valueFormat(point.value)}` })));
  });
  return svg;
}

/** Ratios from 0 to 1, one per point (null: no value there, the line breaks). */
function lineChart(points, format) {
  const { svg, x, y, band } = chartFrame(points, [0, 0.25, 0.5, 0.75, 1], fmtAxisPercent);
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
  $("history-filters").addEventListener("change", applyHistoryFilters);
  $("clear-filters").addEventListener("click", clearHistoryFilters);
  $("find-form").addEventListener("submit", find);
  $("first-page").addEventListener("click", showFirstPage);
  $("next-page").addEventListener("click", showNextPage);
  const applyStats = () => navigate(routeHash("stats", statsQuery()));
  $("days-select").addEventListener("change", applyStats);
  $("stats-type-filter").addEventListener("change", applyStats);
  setInterval(refreshRelativeTimes, RELATIVE_EVERY_MS);
}

function statusChecks(fieldset, statuses) {
  fieldset.append(...statuses.map((status) => h("label", { class: `check st-${status}` },
    h("input", { type: "checkbox", value: status, testid: `status-${status}` }), status)));
}

function init() {
  statusChecks($("status-filter"), EXECUTION_STATUSES);
  fillSelect($("type-filter"), WORKFLOW_TYPES);
  fillSelect($("stats-type-filter"), WORKFLOW_TYPES);
  wireEvents();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
  else signOut();
}

init();
