// The migrations dashboard: plain JavaScript, no build step.
// Live updates come over a WebSocket (/api/v1/live); when one cannot connect
// the page long-polls /api/v1/changes with the same cursor (the feed version).
// The token comes from the form, from "#token=..." in the address, or from
// localStorage; "?transport=poll" forces polling. A migration the read model
// holds in quarantine (a gap, a fork or an unstorable event in its log) is
// marked, with its reason, and counted in the header. A failed (paused,
// cancelled) migration shows its reason; its events are a click away. Its pace
// is the bytes streamed over every phase, the current phase's rates and, while
// it runs, that phase's ETA (later phases are not estimated). Before a token is
// known the page asks only /whoami, which answers without one. A live migration
// (cdc) shows its lag and the source position applied last while it syncs or
// cuts over, and what its cutover ended with once completed.
"use strict";

const API = "/api/v1";
const RUNS = ["RUNNING", "PAUSING", "SYNCING", "CUTTING_OVER"];
const ACTIONS = {
  pause: ["RUNNING", "SYNCING"], resume: ["PAUSED"],
  cancel: ["PENDING", "RUNNING", "PAUSING", "PAUSED", "FAILED", "SYNCING", "CUTTING_OVER"], retry: ["FAILED"],
  cutover: ["SYNCING"], "abort-cutover": ["CUTTING_OVER"],
};
Object.assign(ACTIONS, { diff: ["COMPLETED", "FAILED"], repair: ["FAILED"] }); // row-level diff and repair
const REPORTED = ["COMPLETED", "FAILED"]; // a loaded migration may have a diff report
// A cutover from the dashboard waits until the migration has caught up (no lag left).
const BODIES = { cutover: JSON.stringify({ max_lag_bytes: 0, max_lag_seconds: 0 }) };
const rows = new Map();
let token = "";
let role = "";
let cursor = 0;
let generation = 0; // bumps on a new token: old loops stop

const $ = (id) => document.getElementById(id);

function b64url(text) {
  return btoa(unescape(encodeURIComponent(text))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function api(path, options = {}) {
  const headers = Object.assign(token ? { Authorization: "Bearer " + token } : {}, options.headers || {});
  const response = await fetch(API + path, Object.assign({}, options, { headers }));
  const body = await response.json().catch(() => ({}));
  if (!response.ok && response.status !== 409) {
    throw new Error(body.title ? `${response.status} ${body.title}` : `HTTP ${response.status}`);
  }
  return { status: response.status, body };
}

function say(text) { $("message").textContent = text; }

function setTransport(name) {
  $("transport").textContent = name;
  $("transport").dataset.transport = name;
}

function upsert(migration) {
  const known = rows.get(migration.migration_id);
  if (known && known.version > migration.version) return;
  rows.set(migration.migration_id, migration);
  render(migration);
}

function render(m) {
  const body = document.querySelector("#migrations tbody");
  let tr = body.querySelector(`tr[data-id="${CSS.escape(m.migration_id)}"]`);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.id = m.migration_id;
    for (const name of ["id", "status", "phase", "progress", "pace", "score", "version", "updated", "actions"]) {
      const td = document.createElement("td");
      td.className = name;
      tr.appendChild(td);
    }
    body.insertBefore(tr, body.firstChild);
    tr.querySelector("td.version").appendChild(eventsLink(m.migration_id, tr));
  }
  const cell = (name) => tr.querySelector("td." + name);
  cell("id").textContent = m.migration_id;
  cell("status").innerHTML = "";
  const status = document.createElement("span");
  status.className = "status " + m.status;
  status.textContent = m.status;
  cell("status").appendChild(status);
  renderReason(cell("status"), m.reason);
  renderQuarantine(cell("status"), m.quarantine);
  tr.dataset.status = m.status;
  tr.dataset.quarantined = m.quarantine ? "true" : "false";
  cell("phase").textContent = m.phase || "";
  cell("phase").title = m.snapshot ? `source read in snapshot ${m.snapshot.id}, taken ${m.snapshot.taken_at} at LSN ${m.snapshot.lsn}` : "";
  renderProgress(cell("progress"), m.rows_done, m.rows_total);
  renderPace(cell("pace"), m);
  renderLive(cell("pace"), m);
  cell("score").textContent = m.score == null ? "" : Number(m.score).toFixed(3);
  cell("version").firstChild.textContent = m.version;
  cell("updated").textContent = m.updated_at ? new Date(m.updated_at).toLocaleTimeString() : "";
  renderActions(cell("actions"), m);
  $("empty").hidden = rows.size > 0;
  countQuarantined();
}

const count = (n) => Number(n).toLocaleString("en-US");

// A phase that knows its total shows a bar; one that counts without a total
// shows its rows; one that has counted nothing shows a dash (not "0/0").
function renderProgress(td, done, total) {
  td.innerHTML = "";
  if (total > 0) {
    const bar = document.createElement("progress");
    bar.max = total;
    bar.value = Math.min(done, total);
    td.append(bar, ` ${count(done)}/${count(total)}`);
  } else {
    td.textContent = done > 0 ? `${count(done)} rows` : "—";
  }
}

const size = (bytes) => {
  const units = ["bytes", "kB", "MB", "GB", "TB", "PB"];
  let value = Number(bytes), unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return unit === 0 ? `${Math.round(value)} bytes` : `${value.toFixed(1)} ${units[unit]}`;
};
const rate = (perSecond) => perSecond >= 10 ? count(Math.round(perSecond)) : String(Number(perSecond.toPrecision(2)));

// The two largest units: 45s, 3m 20s, 2h 05m, 3d 04h.
function duration(seconds) {
  const whole = Math.round(seconds);
  const [d, h, m, s] = [Math.floor(whole / 86400), Math.floor(whole / 3600) % 24, Math.floor(whole / 60) % 60, whole % 60];
  const two = (n) => String(n).padStart(2, "0");
  if (d) return `${d}d ${two(h)}h`;
  if (h) return `${h}h ${two(m)}m`;
  if (m) return `${m}m ${two(s)}s`;
  return `${s}s`;
}

// Bytes, rates and ETA, each only when known; the ETA only while the phase runs.
function renderPace(td, m) {
  td.innerHTML = "";
  const parts = [];
  if (m.bytes_done > 0) parts.push(size(m.bytes_done));
  if (m.rows_per_second != null) parts.push(`${rate(m.rows_per_second)} rows/s`);
  if (m.bytes_per_second != null) parts.push(`${size(m.bytes_per_second)}/s`);
  td.textContent = parts.join(" · ");
  if (m.eta_seconds == null || !RUNS.includes(m.status)) return;
  const eta = document.createElement("span");
  eta.className = "eta";
  eta.textContent = `${m.phase} ETA ${duration(m.eta_seconds)}`;
  eta.title = `${m.phase} should end at ${new Date(m.eta_at).toLocaleString()} at its pace so far; later phases are not estimated`;
  td.appendChild(eta);
}

// Lag while it syncs or cuts over; the cutover's figures once it is done.
function renderLive(td, m) {
  if (m.lag_bytes != null && (m.status === "SYNCING" || m.status === "CUTTING_OVER")) {
    const lag = document.createElement("span");
    lag.className = "lag";
    const seconds = m.lag_seconds == null ? "" : ` · ${Number(m.lag_seconds).toFixed(1)}s`;
    lag.textContent = `lag ${size(m.lag_bytes)}${seconds}`;
    lag.title = m.position ? `source applied up to ${m.position}` : "";
    td.appendChild(lag);
  }
  const done = m.cutover_result;
  if (!done) return;
  const cut = document.createElement("span");
  cut.className = "cutover";
  const same = done.source_checksum === done.target_checksum && done.source_rows === done.target_rows;
  cut.textContent = `cut over at ${done.position}: ${count(done.target_rows)} rows, ${same ? "checksums equal" : "checksums differ"}`;
  cut.title = `source ${count(done.source_rows)} rows (${done.source_checksum}), target ${count(done.target_rows)} rows (${done.target_checksum}); ` +
    `${count(done.changes_applied)} changes applied, ${count(done.rows_verified)} rows verified, ${count(done.sequences_synced)} sequences synced` +
    (done.frozen ? "; source frozen" : "");
  td.appendChild(cut);
}

function renderReason(td, reason) {
  if (!reason) return;
  const span = document.createElement("span");
  span.className = "reason";
  span.textContent = reason;
  td.appendChild(span);
}

// The version (its last event's sequence) opens the migration's events below its row.
function eventsLink(id, tr) {
  const link = document.createElement("a");
  link.href = "#";
  link.className = "events";
  link.title = "its events";
  link.setAttribute("aria-expanded", "false");
  link.addEventListener("click", (event) => { event.preventDefault(); toggleEvents(id, tr, link); });
  return link;
}

async function toggleEvents(id, tr, button) {
  const open = tr.nextElementSibling && tr.nextElementSibling.classList.contains("events") ? tr.nextElementSibling : null;
  if (open) { open.remove(); button.setAttribute("aria-expanded", "false"); return; }
  const row = document.createElement("tr");
  row.className = "events";
  row.dataset.for = id;
  const td = document.createElement("td");
  td.colSpan = tr.children.length;
  row.appendChild(td);
  tr.after(row);
  button.setAttribute("aria-expanded", "true");
  try {
    const { body } = await api(`/migrations/${encodeURIComponent(id)}/events`);
    td.appendChild(eventList(body.events));
  } catch (error) {
    td.textContent = `events of ${id}: ${error.message}`;
  }
}

function eventList(events) {
  const list = document.createElement("ol");
  for (const e of events) {
    const item = document.createElement("li");
    item.value = e.sequence;
    const why = e.payload && e.payload.reason ? ` — ${e.payload.reason}` : "";
    item.textContent = `${e.type} ${new Date(e.occurred_at).toLocaleTimeString()}${why}`;
    list.appendChild(item);
  }
  return list;
}

function renderQuarantine(td, quarantine) {
  if (!quarantine) return;
  const badge = document.createElement("span");
  badge.className = "quarantine";
  badge.textContent = "quarantined";
  badge.title = `events from ${quarantine.at_sequence} on held since ${quarantine.since};` +
    " refold it once the cause is fixed";
  const reason = document.createElement("span");
  reason.className = "quarantine-reason";
  reason.textContent = quarantine.reason;
  td.append(badge, reason);
}

function countQuarantined() {
  const held = [...rows.values()].filter((m) => m.quarantine).length;
  $("quarantined").hidden = held === 0;
  $("quarantined").textContent = `${held} quarantined`;
}

function renderActions(td, m) {
  td.innerHTML = "";
  if (REPORTED.includes(m.status)) {
    const report = document.createElement("a");
    report.href = `/dashboard/diff?id=${encodeURIComponent(m.migration_id)}`;
    report.textContent = "diff report";
    td.appendChild(report);
  }
  if (role !== "operator") return;
  for (const [action, states] of Object.entries(ACTIONS)) {
    if (!states.includes(m.status)) continue;
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = action;
    button.dataset.action = action;
    button.addEventListener("click", () => command(m.migration_id, action, button));
    td.appendChild(button);
  }
}

async function command(id, action, button) {
  button.disabled = true;
  try {
    const path = `/migrations/${encodeURIComponent(id)}/${action}?wait=true&timeout=30`;
    const { status, body } = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: BODIES[action] || "{}" });
    say(status === 409 ? `${action} ${id}: rejected: ${body.detail}` : `${action} ${id}: ${body.outcome || "sent"}`);
    if (body.migration) upsert(body.migration);
  } catch (error) {
    say(`${action} ${id}: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

async function load() {
  const { body } = await api("/migrations?limit=200");
  cursor = body.feed_version;
  body.migrations.slice().reverse().forEach(upsert);
  $("empty").hidden = rows.size > 0;
}

function openSocket(mine) {
  return new Promise((resolve) => {
    if (typeof WebSocket === "undefined" || new URLSearchParams(location.search).get("transport") === "poll") {
      resolve(false);
      return;
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${location.host}${API}/live?since_version=${cursor}`;
    let opened = false;
    const socket = new WebSocket(url, token ? ["migrator.v1", "bearer." + b64url(token)] : ["migrator.v1"]);
    socket.onmessage = (event) => {
      if (!opened) { opened = true; setTransport("websocket"); }
      const message = JSON.parse(event.data);
      if (message.type === "changes") {
        message.migrations.forEach(upsert);
        cursor = message.feed_version;
      }
    };
    socket.onclose = () => resolve(opened && mine === generation);
  });
}

async function poll(mine) {
  setTransport("polling");
  while (mine === generation) {
    try {
      const { body } = await api(`/changes?since_version=${cursor}&timeout=20`);
      body.migrations.forEach(upsert);
      cursor = body.feed_version;
    } catch (error) {
      setTransport("offline");
      say(error.message);
      await new Promise((r) => setTimeout(r, 2000));
      setTransport("polling");
    }
  }
}

async function live(mine) {
  // A socket that opened and then dropped is reconnected from the cursor; one
  // that never opens (blocked, no WebSocket) leaves the page on polling.
  while (mine === generation && await openSocket(mine)) {
    setTransport("offline");
    await new Promise((r) => setTimeout(r, 1000));
    await load().catch(() => {});
  }
  if (mine === generation) await poll(mine);
}

async function start() {
  const mine = ++generation;
  rows.clear();
  document.querySelector("#migrations tbody").innerHTML = "";
  try {
    role = (await api("/whoami")).body.role;
    if (!role) {
      setTransport("offline");
      say("enter a token");
      return;
    }
    $("role").textContent = role;
    await load();
  } catch (error) {
    $("role").textContent = "";
    setTransport("offline");
    say(`${error.message}: enter a token`);
    return;
  }
  say("");
  live(mine);
}

function init() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    localStorage.setItem("migrator.token", fragment.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  token = localStorage.getItem("migrator.token") || "";
  $("token").value = token;
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    localStorage.setItem("migrator.token", token);
    start();
  });
  start();
}

init();
