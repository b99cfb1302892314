// The body-worn list page: recordings with filters, a resumable upload (tus-style, chunk by chunk, resumed
// after a dropped connection from the offset the server reports), and the cases.
import { $, api, el, send, when, me, fromZoneInput } from "/static/lib.js";

const API = "/api/bodyworn";
const CHUNK = 8 * 1024 * 1024;
const secs = (s) => (s == null ? "–" : s < 90 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`);
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** Hides what the signed-in role may not use (the server refuses it anyway). */
export async function showAllowed(root = document) {
  const who = await me();
  root.querySelectorAll("[data-perm]").forEach((node) => {
    if (node.closest("#nav")) return;
    node.hidden = !node.dataset.perm.split("|").some((p) => who.permissions.includes(p));
  });
  return who;
}

async function showItems(ev) {
  if (ev) ev.preventDefault();
  const form = new FormData($("#bw-filters"));
  const query = new URLSearchParams();
  for (const [k, v] of form) {
    if (!v) continue;
    query.set(k, k === "since" || k === "until" ? fromZoneInput(v).toISOString() : v);
  }
  $("#bw-status").textContent = "loading…";
  try {
    const rows = await api(`${API}/items?${query}`);
    $("#bw-items tbody").replaceChildren(...rows.map((r) => el("tr", { "data-item": r.id },
      el("td", {}, el("a", { href: `/evidence/items/${r.id}` }, when(r.recorded_at || r.ingested_at))),
      el("td", {}, r.officer), el("td", {}, r.device), el("td", {}, secs(r.duration_s)),
      el("td", {}, r.categories.join(", ") || "uncategorised"),
      el("td", {}, r.cases.map((c) => el("a", { href: `/evidence/cases/${encodeURIComponent(c)}` }, c))),
      el("td", {}, r.access_class + (r.do_not_disclose ? ", do not disclose" : "")),
      el("td", {}, r.status === "deleted" ? `restorable until ${when(r.purge_after, "date")}` :
        r.delete_due ? when(r.delete_due, "date") : "kept"))));
    $("#bw-status").textContent = `${rows.length} recording(s)`;
  } catch (err) { $("#bw-status").textContent = err.message; }
}

/** Where an upload stands on the server (after a dropped connection or a refused chunk). */
async function offsetOf(url) {
  const res = await send(url, { method: "HEAD" });
  if (!res.ok) throw new Error(`the upload cannot be resumed (${res.status})`);
  return Number(res.headers.get("Upload-Offset"));
}

/** Sends a file in chunks; a failed chunk is retried from the server's offset, up to 20 times in a row. */
export async function uploadFile(file, meta, onProgress) {
  const made = await api(`${API}/uploads`, { method: "POST",
    body: JSON.stringify({ ...meta, length: file.size, filename: file.name }) });
  let offset = made.offset, failures = 0;
  for (;;) {
    let res = null;
    try {
      res = await send(made.url, { method: "PATCH", body: file.slice(offset, offset + CHUNK),
        headers: { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" } });
    } catch (_) { res = null; }
    if (res && res.ok) {
      const status = await res.json();
      failures = 0; offset = status.offset; onProgress(offset / file.size);
      if (status.status === "done") return status;
      continue;
    }
    if (res && res.status !== 409 && res.status < 500) {
      const data = await res.json().catch(() => ({}));
      throw new Error((data.detail || res.statusText) + (data.hint ? ` — ${data.hint}` : ""));
    }
    if (++failures > 20) throw new Error("the connection keeps failing; try again later (the upload resumes)");
    await sleep(Math.min(30000, 1000 * 2 ** failures));
    offset = await offsetOf(made.url).catch(() => offset);
  }
}

async function upload(ev) {
  ev.preventDefault();
  const form = new FormData(ev.target), file = form.get("file");
  const bar = $("#bw-upload-progress"), status = $("#bw-upload-status");
  const meta = { officer: form.get("officer"), device: form.get("device"),
    categories: form.get("category") ? [form.get("category")] : [], case: form.get("case") || null };
  bar.hidden = false; bar.value = 0; status.textContent = `sending ${file.name}…`;
  try {
    const done = await uploadFile(file, meta, (share) => { bar.value = share; });
    status.replaceChildren("received: ", el("a", { href: `/evidence/items/${done.item_id}` }, `item ${done.item_id}`));
    showItems();
  } catch (err) { status.textContent = err.message; }
}

async function showCases() {
  try {
    const cases = await api(`${API}/cases`);
    $("#bw-case-list").replaceChildren(...cases.map((c) => el("li", {},
      el("a", { href: `/evidence/cases/${encodeURIComponent(c.number)}` }, c.number), ` ${c.title} · ${c.status} · `,
      `${c.items.length} item(s)`)));
  } catch (err) { $("#bw-case-status").textContent = err.message; }
}

async function newCase(ev) {
  ev.preventDefault();
  const form = Object.fromEntries(new FormData(ev.target));
  try {
    await api(`${API}/cases`, { method: "POST", body: JSON.stringify({ ...form, fir_number: form.fir_number || null }) });
    ev.target.reset(); showCases();
  } catch (err) { $("#bw-case-status").textContent = err.message; }
}

if ($("#bodyworn")) {
  $("#bw-filters").addEventListener("submit", showItems);
  $("#bw-upload").addEventListener("submit", upload);
  $("#bw-new-case").addEventListener("submit", newCase);
  showAllowed().then((who) => { showItems(); if (who.permissions.includes("bodycam:read")) showCases(); });
}
