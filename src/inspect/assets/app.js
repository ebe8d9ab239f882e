// The inspector page: the list from /api/requests, new requests from /api/events, details and
// replay from /api/requests/{id}. Everything the server sends is shown with textContent, never
// as HTML: paths, headers and bodies come from the network.
"use strict";

const rows = document.querySelector("#requests tbody");
const empty = document.getElementById("empty");
const detail = document.getElementById("detail");
let selected = null;
let current = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function size(n) {
  if (n < 1024) return n + " B";
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1024 / 1024).toFixed(1) + " MiB";
}

function addRow(r) {
  if (rows.querySelector('tr[data-id="' + r.id + '"]')) return;
  const tr = el("tr", null, "req" + (r.kind === "passthrough" ? " passthrough" : ""));
  tr.dataset.id = r.id;
  tr.appendChild(el("td", new Date(r.time_ms).toLocaleTimeString()));
  if (r.kind === "http") {
    tr.appendChild(el("td", r.method));
    tr.appendChild(el("td", r.path, "path"));
    tr.appendChild(el("td", r.status, "status s" + String(r.status)[0]));
    tr.appendChild(el("td", r.duration_ms.toFixed(1) + " ms"));
  } else {
    tr.appendChild(el("td", "—"));
    tr.appendChild(el("td", "not HTTP: " + r.reason, "path"));
    tr.appendChild(el("td", "—"));
    tr.appendChild(el("td", ""));
  }
  tr.appendChild(el("td", size(r.request_bytes)));
  tr.appendChild(el("td", size(r.response_bytes)));
  tr.addEventListener("click", () => show(r.id, tr));
  rows.insertBefore(tr, rows.firstChild);
  empty.hidden = true;
}

async function load() {
  const res = await fetch("/api/requests");
  const body = await res.json();
  body.requests.forEach(addRow);
}

function message(target, m) {
  target.textContent = "";
  if (!m) return;
  target.appendChild(el("div", m.start_line, "start"));
  const dl = el("dl");
  for (const [name, value] of m.headers) {
    dl.appendChild(el("dt", name));
    dl.appendChild(el("dd", value));
  }
  target.appendChild(dl);
  const b = m.body;
  let note = size(b.size);
  if (b.truncated) note += " (first " + size(b.kept) + " kept)";
  if (b.encoding === "hex") note += ", binary";
  target.appendChild(el("div", "Body: " + note, "muted"));
  if (b.text) target.appendChild(el("pre", b.text, "body " + b.encoding));
}

async function show(id, tr) {
  const res = await fetch("/api/requests/" + id);
  if (!res.ok) return;
  current = await res.json();
  if (selected) selected.classList.remove("selected");
  selected = tr;
  if (tr) tr.classList.add("selected");
  detail.hidden = false;
  document.getElementById("replay-result").hidden = true;
  document.getElementById("editor").hidden = true;
  const http = current.kind === "http";
  document.getElementById("detail-title").textContent = http
    ? current.method + " " + current.path + " → " + current.status
    : "Not HTTP (" + current.reason + ")";
  document.getElementById("replay").hidden = !http;
  document.getElementById("edit").hidden = !http;
  message(document.getElementById("request"), current.request);
  message(document.getElementById("response"), current.response);
}

async function replay(edits) {
  const out = document.getElementById("replay-result");
  out.hidden = false;
  out.textContent = "Replaying…";
  const res = await fetch("/api/requests/" + current.id + "/replay", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(edits || {}),
  });
  const r = await res.json();
  out.textContent = "";
  if (!res.ok) {
    out.appendChild(el("div", "Replay failed: " + r.error, "error"));
    return;
  }
  addRow(r);
  out.appendChild(el("h3", "Replayed: " + r.status + " in " + r.duration_ms.toFixed(1) + " ms", "status s" + String(r.status)[0]));
  const resp = el("div", null, "replayed-response");
  message(resp, r.response);
  out.appendChild(resp);
}

document.getElementById("replay").addEventListener("click", () => replay(null));
document.getElementById("edit").addEventListener("click", () => {
  const [method, path] = current.request.start_line.split(" ");
  document.getElementById("edit-method").value = method || "GET";
  document.getElementById("edit-path").value = path || "/";
  document.getElementById("edit-headers").value =
    current.request.headers.map(([n, v]) => n + ": " + v).join("\n");
  document.getElementById("edit-body").value = current.request.body.text || "";
  document.getElementById("editor").hidden = false;
});
document.getElementById("editor").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const headers = document.getElementById("edit-headers").value
    .split("\n").filter((l) => l.includes(":"))
    .map((l) => { const i = l.indexOf(":"); return [l.slice(0, i).trim(), l.slice(i + 1).trim()]; });
  replay({
    method: document.getElementById("edit-method").value.trim(),
    path: document.getElementById("edit-path").value.trim(),
    headers,
    body: document.getElementById("edit-body").value,
  });
});
document.getElementById("clear").addEventListener("click", () => {
  rows.textContent = "";
  empty.hidden = false;
});

function follow() {
  const live = document.getElementById("live");
  const events = new EventSource("/api/events");
  events.onopen = () => { live.textContent = "live"; };
  events.onerror = () => { live.textContent = "reconnecting…"; };
  events.addEventListener("request", (e) => addRow(JSON.parse(e.data)));
  events.addEventListener("reset", () => load());
}

follow();
load();
