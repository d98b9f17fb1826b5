"use strict";
// The diff report page: /dashboard/diff?id=<migration>. It reads the
// migration's latest diff (GET /api/v1/migrations/<id>/diff) with the token
// the dashboard keeps, and shows it as a person signs it off: what was
// compared, in which snapshot and when, and what differs.

const $ = (id) => document.getElementById(id);

function text(id, value) {
  $(id).textContent = value === null || value === undefined ? "—" : String(value);
}

function rows(tableId, lines) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(
    ...lines.map((cells) => {
      const tr = document.createElement("tr");
      for (const cell of cells) {
        const td = document.createElement("td");
        td.textContent = cell === null || cell === undefined ? "—" : String(cell);
        tr.appendChild(td);
      }
      return tr;
    }),
  );
}

function show(report) {
  text("migration", report.migration_id);
  $("verdict").textContent = report.clean
    ? "Clean: every key of the source is in the target, with the same values"
    : `${report.differing} keys differ`;
  text("source", `${report.source.connection} ${report.source.table}`);
  text("target", `${report.target.connection} ${report.target.table}`);
  text("key", report.key);
  text("phase", `${report.phase} (event ${report.sequence}, ${report.seconds} s)`);
  text("taken_at", report.taken_at);
  const snap = report.snapshot;
  text("snapshot", snap ? `${snap.id} at ${snap.taken_at}, WAL ${snap.lsn}` : null);
  text("rows", `source ${report.source_rows}, target ${report.target_rows}`);
  for (const kind of ["missing", "extra", "different", "differing", "ranges_compared"]) {
    text(kind, report[kind]);
  }
  const samples = report.samples || {};
  rows("samples", ["missing", "extra", "different"].map((k) => [k, (samples[k] || []).join(", ")]));
  rows(
    "ranges",
    (report.ranges || []).map((r) => [
      r.lo, r.hi, r.depth, r.source_rows, r.target_rows, r.source_checksum, r.target_checksum,
      r.same ? "yes" : "NO",
    ]),
  );
  const blob = new Blob([JSON.stringify(report, null, 2)], { type: "application/json" });
  $("json").href = URL.createObjectURL(blob);
  $("json").download = `diff-${report.migration_id}.json`;
  $("report").hidden = false;
  $("status").textContent = "";
}

async function load() {
  const id = new URLSearchParams(location.search).get("id");
  if (!id) {
    $("status").textContent = "name a migration: /dashboard/diff?id=<migration id>";
    return;
  }
  const token = localStorage.getItem("migrator.token") || "";
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const response = await fetch(`/api/v1/migrations/${encodeURIComponent(id)}/diff`, { headers });
  const body = await response.json();
  if (!response.ok) {
    $("status").textContent = `${body.title}${body.detail ? ": " + body.detail : ""}`;
    return;
  }
  show(body);
}

load().catch((error) => {
  $("status").textContent = String(error);
});
