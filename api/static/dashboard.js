// The migrations dashboard: plain JavaScript, no build step.
// Live updates come over a WebSocket (/api/v1/live); when one cannot connect
// the page long-polls /api/v1/changes with the same cursor (the feed version).
// The token comes from the form, from "#token=..." in the address, or from
// localStorage; "?transport=poll" forces polling. A migration the read model
// holds in quarantine (a gap, a fork or an unstorable event in its log) is
// marked, with its reason, and counted in the header.
"use strict";

const API = "/api/v1";
const ACTIONS = { pause: ["RUNNING"], resume: ["PAUSED"], cancel: ["PENDING", "RUNNING", "PAUSING", "PAUSED", "FAILED"], retry: ["FAILED"] };
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
  const headers = Object.assign({ Authorization: "Bearer " + token }, options.headers || {});
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
    for (const name of ["id", "status", "phase", "progress", "score", "version", "updated", "actions"]) {
      const td = document.createElement("td");
      td.className = name;
      tr.appendChild(td);
    }
    body.insertBefore(tr, body.firstChild);
  }
  const cell = (name) => tr.querySelector("td." + name);
  cell("id").textContent = m.migration_id;
  cell("status").innerHTML = "";
  const status = document.createElement("span");
  status.className = "status " + m.status;
  status.textContent = m.status;
  cell("status").appendChild(status);
  renderQuarantine(cell("status"), m.quarantine);
  tr.dataset.status = m.status;
  tr.dataset.quarantined = m.quarantine ? "true" : "false";
  cell("phase").textContent = m.phase || "";
  cell("progress").innerHTML = "";
  const bar = document.createElement("progress");
  bar.max = Math.max(m.rows_total, 1);
  bar.value = Math.min(m.rows_done, bar.max);
  cell("progress").append(bar, ` ${m.rows_done}/${m.rows_total}`);
  cell("score").textContent = m.score == null ? "" : Number(m.score).toFixed(3);
  cell("version").textContent = m.version;
  cell("updated").textContent = m.updated_at ? new Date(m.updated_at).toLocaleTimeString() : "";
  renderActions(cell("actions"), m);
  $("empty").hidden = rows.size > 0;
  countQuarantined();
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
    const { status, body } = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
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
    const socket = new WebSocket(url, ["migrator.v1", "bearer." + b64url(token)]);
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
