// The dashboard's live part: polls /v1/ps while the page is visible, follows logs and events
// over server-sent events, and drives the state browser and the pub/sub view. No framework.
"use strict";
const $ = (s, root = document) => root.querySelector(s);
const el = (tag, props = {}, ...children) => {
  const { dataset, ...rest } = props;
  const node = Object.assign(document.createElement(tag), rest);
  Object.assign(node.dataset, dataset || {});
  for (const c of children) node.append(c);
  return node;
};
const time = (ms) => el("time", { dateTime: new Date(ms).toISOString(), textContent: new Date(ms).toLocaleTimeString() });
// Changing requests carry this header: other web pages cannot send it without CORS approval.
const send = (method, url, body) =>
  fetch(url, { method, body, headers: { "X-Daca": "1", "Content-Type": "application/json" } });
const getJson = async (url) => (await fetch(url)).json();

// ---- Apps ----
async function refreshApps() {
  const ps = await getJson("/v1/ps");
  $("#redis").textContent = `Redis: ${ps.redis.mode} ${ps.redis.url || ""}`;
  const body = $("#apps-body");
  for (const app of ps.apps) {
    let row = body.querySelector(`tr[data-app="${CSS.escape(app.name)}"]`);
    if (!row) {
      row = el("tr", { dataset: { app: app.name } });
      row.innerHTML = '<th scope="row"></th><td class="state"></td><td class="runtime"></td><td class="port"></td><td class="sidecar"></td><td class="restarts"></td><td class="uptime"></td><td class="reload"></td><td class="actions"></td>';
      row.cells[0].textContent = app.name;
      body.append(row);
    }
    row.cells[1].className = `state state-${app.state}`;
    row.cells[1].textContent = app.state + (app.message ? ` — ${app.message}` : "");
    row.cells[2].textContent = app.container ? `container ${app.container}` : app.pid ? `pid ${app.pid}` : "-";
    row.cells[2].dataset.pid = app.pid || "";
    // In a pod: the machine's port, then the app's own inside (as `ports:` writes it).
    row.cells[3].textContent = app.pod ? `${app.pod.host_port ?? app.port}:${app.port} (pod)` : app.port ?? "-";
    row.cells[4].textContent = app.sidecar ? `${app.sidecar.http} / ${app.sidecar.grpc}` : 'none';
    row.cells[5].textContent = app.restarts;
    const up = app.started_at_ms && ["starting", "ready", "stopping"].includes(app.state);
    row.cells[6].textContent = up ? `${Math.round((Date.now() - app.started_at_ms) / 1000)} s` : "-";
    row.cells[7].textContent = app.reload.last_ms != null ? `${app.reload.last_ms} ms / ${app.reload.median_ms} ms` : "-";
    const actions = row.cells[8];
    if (!actions.childElementCount) {
      for (const action of ["restart", "stop", "start"]) {
        const button = el("button", { type: "button", className: action, textContent: action[0].toUpperCase() + action.slice(1) });
        button.dataset.app = app.name;
        button.setAttribute("aria-label", `${action} ${app.name}`);
        button.addEventListener("click", () => send("POST", `/v1/apps/${encodeURIComponent(app.name)}/${action}`).then(refreshApps));
        actions.append(button);
      }
    }
  }
  fillSelect($("#log-source"), ps.apps.map((a) => a.name), "all");
  fillSelect($("#state-app"), ps.apps.map((a) => a.name));
}

function fillSelect(select, values, allLabel) {
  const want = (allLabel ? [""] : []).concat(values);
  const have = [...select.options].map((o) => o.value);
  if (want.join() === have.join()) return;
  const current = select.value;
  select.replaceChildren(...want.map((v) => el("option", { value: v, textContent: v || allLabel })));
  if (want.includes(current)) select.value = current;
}

// ---- Logs and events: one stream per page (browsers allow six connections per host) ----
let paused = false;
let live;
function follow() {
  live?.close();
  $("#log").replaceChildren();
  $("#timeline").replaceChildren();
  const source = $("#log-source").value;
  live = new EventSource(`/v1/live?tail=200&source=${encodeURIComponent(source)}`);
  live.addEventListener("log", (message) => {
    const line = JSON.parse(message.data);
    const item = el("li", { className: line.stream }, time(line.ts_ms), el("span", { className: "src", textContent: line.source }));
    if (line.stream === "stderr") item.append(el("span", { className: "tag", textContent: "stderr" }));
    item.append(el("span", { className: "text", textContent: line.line }));
    item.hidden = !matches(item);
    const log = $("#log");
    log.append(item);
    while (log.childElementCount > 2000) log.firstElementChild.remove();
    if (!paused) log.scrollTop = log.scrollHeight;
  });
  live.addEventListener("event", (message) => {
    const e = JSON.parse(message.data);
    const text = `${e.app ? e.app + ": " : ""}${e.message}${e.duration_ms != null ? ` (${e.duration_ms} ms)` : ""}`;
    const list = $("#timeline");
    list.prepend(el("li", { className: `event-${e.kind}` }, time(e.ts_ms), text));
    while (list.childElementCount > 500) list.lastElementChild.remove();
    if (e.kind === "components") refreshComponents().catch(() => {});
  });
}
// A closed tab must give its connection back at once.
addEventListener("pagehide", () => live?.close());
const matches = (item) => item.textContent.toLowerCase().includes($("#log-filter").value.toLowerCase());

// ---- Components (the server rendered them; refresh the live parts) ----
async function refreshComponents() {
  const view = await getJson("/v1/components");
  const box = $("#components-body");
  const rows = view.components.map((c) =>
    el("tr", {}, el("th", { scope: "row", textContent: c.name }), el("td", { textContent: c.type }), el("td", { textContent: c.version }),
      el("td", { textContent: c.scopes.length ? c.scopes.join(", ") : "all apps" }), el("td", { textContent: c.origin || "daca default" }),
      el("td", {}, el("pre", { textContent: Object.entries(c.metadata).map(([k, v]) => `${k}: ${v}`).join("\n") }))));
  const subs = view.subscriptions.map((s) =>
    el("tr", {}, el("td", { textContent: s.app }), el("td", { textContent: s.pubsub }), el("td", { textContent: s.topic }),
      el("td", { textContent: s.rules.map((r) => (r.match ? `${r.match} → ${r.path}` : r.path)).join("; ") }),
      el("td", { textContent: s.dead_letter_topic || "-" }), el("td", { textContent: s.kind.toLowerCase() })));
  const table = (head, body) => {
    const t = el("table");
    t.innerHTML = `<thead><tr>${head.map((h) => `<th scope="col">${h}</th>`).join("")}</tr></thead>`;
    t.append(el("tbody", {}, ...body));
    return t;
  };
  box.replaceChildren(
    ...(view.error ? [el("p", { className: "error", role: "alert", textContent: `Not applied: ${view.error}` })] : []),
    table(["Name", "Type", "Version", "Scopes", "From", "Metadata"], rows),
    el("h3", { textContent: "Subscriptions" }),
    table(["App", "Pub/sub", "Topic", "Routes", "Dead letters", "Kind"], subs));
  fillSelect($("#state-store"), view.components.filter((c) => c.type.startsWith("state.")).map((c) => c.name));
  fillSelect($("#pub-pubsub"), view.components.filter((c) => c.type.startsWith("pubsub.")).map((c) => c.name));
}

// ---- State ----
async function listKeys(event) {
  event?.preventDefault();
  const store = $("#state-store").value;
  const view = await getJson(`/v1/state/${encodeURIComponent(store)}/keys?prefix=${encodeURIComponent($("#state-app").value + "||")}`);
  $("#state-keys").replaceChildren(...(view.keys || []).map((key) => {
    const button = el("button", { type: "button", textContent: key });
    button.dataset.key = key;
    button.addEventListener("click", () => showKey(store, key));
    return el("li", {}, button);
  }));
  if (!view.keys?.length) $("#state-keys").append(el("li", { textContent: "no keys" }));
}

async function showKey(store, key) {
  const view = await getJson(`/v1/state/${encodeURIComponent(store)}/item?key=${encodeURIComponent(key)}`);
  $("#state-detail").hidden = false;
  $("#state-key").textContent = key;
  $("#state-meta").textContent = view.error || `etag ${view.etag ?? "-"} · ttl ${view.ttl_seconds != null ? view.ttl_seconds + " s" : "none"}`;
  $("#state-value").textContent = JSON.stringify(view.value, null, 2);
  $("#state-delete").onclick = async () => {
    if (!confirm(`Delete ${key} from ${store}?`)) return;
    await send("DELETE", `/v1/state/${encodeURIComponent(store)}/item?key=${encodeURIComponent(key)}`);
    $("#state-detail").hidden = true;
    listKeys();
  };
}

// ---- Pub/sub ----
async function refreshPubsub() {
  const view = await getJson("/v1/pubsub");
  $("#pubsub-counts").replaceChildren(...view.subscribers.map((s) =>
    el("tr", { dataset: { app: s.app, topic: s.topic } }, ...[s.app, s.pubsub, s.topic, s.delivered, s.pending, s.retried, s.dead_lettered]
      .map((v, i) => el("td", { className: ["app", "pubsub", "topic", "delivered", "pending", "retried", "dead"][i], textContent: v })))));
  $("#pubsub-recent").replaceChildren(...view.recent.slice(0, 20).map((m) =>
    el("li", {}, time(m.ts_ms), `${m.what} · ${m.pubsub}/${m.topic} · ${m.app} `,
      el("details", {}, el("summary", { textContent: "CloudEvent" }), el("pre", { textContent: JSON.stringify(m.event, null, 2) })))));
}

async function publish(event) {
  event.preventDefault();
  const response = await send("POST", `/v1/pubsub/${encodeURIComponent($("#pub-pubsub").value)}/${encodeURIComponent($("#pub-topic").value)}`, $("#pub-data").value);
  $("#pub-result").textContent = response.ok ? "published" : `failed: ${(await response.json()).error}`;
  refreshPubsub();
}

// ---- Actors ----
async function refreshActors() {
  const view = await getJson("/v1/actors");
  const cells = (...values) => values.map((v) => (v instanceof Node ? el("td", {}, v) : el("td", { textContent: v })));
  $("#actor-types").replaceChildren(...view.types.map((t) =>
    el("tr", {}, ...cells(t.actor_type, t.hosts.join(", "), `${t.idle_timeout_ms / 1000} s`, t.reentrancy ? `max depth ${t.reentrancy}` : "off"))));
  $("#actor-active").replaceChildren(...view.active.map((a) => {
    const name = `${a.actor_type}/${a.id}`;
    const show = el("button", { type: "button", className: "actor-show", textContent: name });
    show.addEventListener("click", () => showActor(a.actor_type, a.id));
    const off = el("button", { type: "button", className: "actor-deactivate", textContent: "Deactivate" });
    off.setAttribute("aria-label", `deactivate ${name}`);
    off.addEventListener("click", () => send("POST", `/v1/actors/${encodeURIComponent(a.actor_type)}/${encodeURIComponent(a.id)}/deactivate`).then(refreshActors));
    return el("tr", { dataset: { actor: name } }, ...cells(show, a.host, `${(a.idle_ms / 1000).toFixed(1)} s`, a.timers.join(", ") || "-", off));
  }));
  $("#actor-reminders").replaceChildren(...view.reminders.map((r) =>
    el("tr", {}, ...cells(r.name, `${r.actor_type}/${r.id}`, time(r.next_ms), r.period || "once"))));
}

async function showActor(type, id) {
  const view = await getJson(`/v1/actors/${encodeURIComponent(type)}/${encodeURIComponent(id)}`);
  $("#actor-detail").hidden = false;
  $("#actor-name").textContent = `${type}/${id} on ${view.host}${view.active ? "" : " (not active)"}`;
  $("#actor-state").textContent = JSON.stringify({ state: view.state, timers: view.timers, reminders: view.reminders }, null, 2);
}

async function callActor(event) {
  event.preventDefault();
  const [type, id, method] = ["#actor-type", "#actor-id", "#actor-method"].map((s) => encodeURIComponent($(s).value));
  const response = await send("POST", `/v1/actors/${type}/${id}/method/${method}`, $("#actor-body").value);
  const view = await response.json();
  $("#actor-result").textContent = response.ok ? `${view.status}: ${view.body}` : `failed: ${view.error}`;
  refreshActors();
}

// ---- Workflows ----
let shownWorkflow = null;
async function refreshWorkflows() {
  const view = await getJson("/v1/workflows");
  const workers = Object.entries(view.workers || {}).map(([app, n]) => `${app}: ${n} worker${n === 1 ? "" : "s"}`);
  $("#workflow-workers").textContent = workers.length ? `Connected: ${workers.join(", ")}` : "";
  $("#workflow-list").replaceChildren(...(view.instances || []).slice(0, 200).map((w) => {
    const show = el("button", { type: "button", className: "workflow-show", textContent: w.instance });
    show.addEventListener("click", () => showWorkflow(w.app, w.instance));
    const cells = [el("th", { scope: "row" }, show), ...[w.name, w.app].map((v) => el("td", { textContent: v })),
      el("td", { className: `wf-status wf-${w.status.toLowerCase()}`, textContent: w.status }),
      el("td", { textContent: w.createdAt ? new Date(w.createdAt).toLocaleTimeString() : "-" }),
      el("td", { textContent: w.lastUpdatedAt ? new Date(w.lastUpdatedAt).toLocaleTimeString() : "-" })];
    return el("tr", { dataset: { instance: w.instance } }, ...cells);
  }));
  if (shownWorkflow) await showWorkflow(...shownWorkflow);
}

const failureText = (f) => `${f.error_type}: ${f.message}`;
async function showWorkflow(app, id) {
  const response = await fetch(`/v1/workflows/${encodeURIComponent(app)}/${encodeURIComponent(id)}`);
  if (!response.ok) { $("#workflow-detail").hidden = true; shownWorkflow = null; return; }
  const view = await response.json();
  shownWorkflow = [app, id];
  const w = view.instance;
  $("#workflow-detail").hidden = false;
  $("#workflow-name").textContent = `${w.name} · ${w.instance} on ${w.app}`;
  const parts = [`status ${w.status}`, w.input != null ? `input ${w.input}` : null, w.output != null ? `output ${w.output}` : null,
    w.custom_status != null ? `custom status ${w.custom_status}` : null, w.failure ? `failed: ${failureText(w.failure)}` : null,
    w.parent_instance ? `child of ${w.parent_instance}` : null].filter(Boolean);
  $("#workflow-summary").textContent = parts.join(" · ");
  $("#workflow-history").replaceChildren(...view.history.filter((e) => e.kind !== "workflowStarted").map((e) => {
    const result = e.failure
      ? el("td", { className: "error" }, failureText(e.failure), ...(e.failure.stack_trace ? [el("details", {}, el("summary", { textContent: "traceback" }), el("pre", { textContent: e.failure.stack_trace }))] : []))
      : el("td", { textContent: e.output ?? "" });
    return el("tr", { className: `wf-event ${e.kind}` }, el("td", { textContent: e.id >= 0 ? e.id : "" }),
      el("td", { textContent: e.at ? new Date(e.at).toLocaleTimeString() : "" }), el("td", { textContent: e.kind }),
      el("td", { textContent: e.name ?? (e.answers != null ? `answers #${e.answers}` : "") }), el("td", { textContent: e.input ?? "" }),
      result, el("td", { textContent: e.after_ms != null ? `${e.after_ms} ms` : "" }));
  }));
  for (const button of document.querySelectorAll("#workflow-detail [data-verb]")) {
    button.onclick = () => controlWorkflow(button.dataset.verb);
  }
}

async function controlWorkflow(verb, event, data) {
  if (!shownWorkflow) return;
  const [app, id] = shownWorkflow.map(encodeURIComponent);
  const query = event ? `?event=${encodeURIComponent(event)}` : "";
  const response = await send("POST", `/v1/workflows/${app}/${id}/${verb}${query}`, data || undefined);
  const view = await response.json();
  $("#workflow-result").textContent = response.ok ? (view.pending || `${verb}: done`) : `failed: ${view.error}`;
  await refreshWorkflows();
}

// ---- Jobs ----
async function refreshJobs() {
  const view = await getJson("/v1/jobs");
  $("#job-list").replaceChildren(...(view.jobs || []).slice(0, 500).map((j) => {
    const remove = el("button", { type: "button", textContent: "Delete" });
    remove.addEventListener("click", async () => {
      await send("DELETE", `/v1/jobs/${encodeURIComponent(j.app)}/${encodeURIComponent(j.name)}`);
      refreshJobs();
    });
    const cells = [el("td", { textContent: j.app }), el("th", { scope: "row", textContent: j.name }),
      ...[j.schedule, j.dueTime, j.repeats].map((v) => el("td", { textContent: v ?? "-" })),
      el("td", { textContent: new Date(j.next_ms).toLocaleString() }), el("td", {}, remove)];
    return el("tr", { dataset: { job: j.name } }, ...cells);
  }));
}

// ---- Resiliency ----
async function refreshResiliency() {
  const view = await getJson("/v1/resiliency");
  const cells = (...values) => values.map((v, i) => el(i ? "td" : "th", i ? { textContent: v ?? "-" } : { scope: "row", textContent: v ?? "-" }));
  $("#resiliency-none").hidden = view.policies.length > 0;
  $("#resiliency-policies").replaceChildren(...view.policies.map((p) =>
    el("tr", { dataset: { policy: p.name } }, ...cells(p.name, p.kind, p.detail, p.resource))));
  $("#resiliency-targets").replaceChildren(...view.targets.map((t) =>
    el("tr", { dataset: { target: t.target } }, ...cells(t.target, t.kind, t.timeout, t.retry, t.circuitBreaker))));
  $("#resiliency-breakers").replaceChildren(...view.breakers.map((b) =>
    el("tr", { dataset: { breaker: b.name, state: b.state } },
      ...cells(b.name, b.app, b.policy, b.state, String(b.counts.consecutiveFailures), String(b.counts.requests)))));
}

// ---- Start ----
function every(ms, task) {
  const run = () => document.visibilityState === "visible" && task().catch(() => {});
  setInterval(run, ms);
  run();
}

document.addEventListener("DOMContentLoaded", async () => {
  for (const hidden of document.querySelectorAll("[hidden]:not(#state-detail):not(#actor-detail):not(#workflow-detail):not(#resiliency-none)")) hidden.hidden = false;
  $("#log-source").addEventListener("change", follow);
  $("#log-filter").addEventListener("input", () => { for (const item of $("#log").children) item.hidden = !matches(item); });
  $("#log-pause").addEventListener("click", (e) => {
    paused = !paused;
    e.target.setAttribute("aria-pressed", String(paused));
    e.target.textContent = paused ? "Follow" : "Pause";
  });
  $("#state-form").addEventListener("submit", listKeys);
  $("#publish-form").addEventListener("submit", publish);
  $("#actor-form").addEventListener("submit", callActor);
  $("#workflow-raise").addEventListener("submit", (e) => { e.preventDefault(); controlWorkflow("raise", $("#workflow-event").value, $("#workflow-data").value); });
  await refreshApps().catch(() => {});
  await refreshComponents().catch(() => {});
  follow();
  every(1000, refreshApps);
  every(2000, refreshPubsub);
  every(2000, refreshActors);
  every(1000, refreshWorkflows);
  every(2000, refreshJobs);
  every(1000, refreshResiliency);
  document.body.dataset.ready = "true";
});
