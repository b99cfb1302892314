// One body-worn recording: its own file played in the browser, the GPS track as an SVG line with the
// officer's place at the playing moment, the custody log, holds, cases and shares, and the actions.
import { $, api, el, svg, when } from "/static/lib.js";
import { showAllowed } from "/static/bodyworn.js";

const API = "/api/bodyworn";
const itemId = decodeURIComponent(location.pathname.split("/").pop());
const say = (text) => { $("#bw-action-status").textContent = text; };
let item = null;

function facts(d) {
  const rows = [
    ["File", d.filename], ["SHA-256", d.sha256], ["Officer", d.officer], ["Camera", d.device],
    ["Recorded", d.recorded_at ? `${when(d.recorded_at, "seconds")} (from the ${d.recorded_at_source})` : "unknown"],
    ["Length", d.duration_s ? `${d.duration_s.toFixed(1)} s` : "–"], ["Picture", d.width ? `${d.width}×${d.height} ${d.codec}` : "–"],
    ["Received", `${when(d.ingested_at, "seconds")} from ${d.source} by ${d.uploaded_by}`],
    ["Categories", d.categories.join(", ") || "uncategorised"],
    ["Access", d.access_class + (d.do_not_disclose ? ", do not disclose" : "") +
      (d.allowed_users.length ? ` (${d.allowed_users.join(", ")})` : "")],
    ["Retention", d.status === "deleted" ? `deleted, restorable until ${when(d.purge_after)}` :
      d.delete_due ? `deleted on ${when(d.delete_due, "date")}` : "kept (case or hold)"],
    ["Verified", d.verified_at ? `${when(d.verified_at)} — ${d.verified_ok ? "matches" : "DOES NOT MATCH"}` : "not yet"],
  ];
  if (d.derived_from) {
    rows.push(["Derived from", el("a", { href: `/evidence/items/${d.derived_from}` }, d.derived_from)]);
    rows.push(["Redaction", d.operations.filter((op) => op.op !== "encode").map((op) => op.op).join(", ")]);
  }
  $("#bw-facts").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("#bw-derived").replaceChildren(...d.derived.map((c) => el("li", {},
    el("a", { href: `/evidence/items/${c.id}` }, c.id), ` by ${c.by}, ${when(c.at)} (${c.status})`)));
  if (!d.derived.length) $("#bw-derived").replaceChildren(el("li", { class: "muted" }, "none"));
}

/** The track as a polyline in its own box (no map tiles reach an air-gapped centre). */
function drawTrack(track, error) {
  const box = $("#bw-track");
  $("#bw-track-note").textContent = error ? `GPS sidecar not used: ${error}` :
    track.length ? `${track.length} fixes, ${when(track[0][0], "time")}–${when(track[track.length - 1][0], "time")}` :
      "no GPS track came with this recording";
  if (!track.length) { box.replaceChildren(); return null; }
  const lats = track.map((p) => p[1]), lons = track.map((p) => p[2]);
  const [minLat, maxLat, minLon, maxLon] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
  const spanX = Math.max((maxLon - minLon) * k, 1e-4), spanY = Math.max(maxLat - minLat, 1e-4);
  const scale = Math.min(360 / spanX, 260 / spanY);
  const x = (lon) => 20 + ((lon - minLon) * k) * scale, y = (lat) => 280 - (lat - minLat) * scale;
  const points = track.map((p) => `${x(p[2]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
  const here = svg("circle", { r: 6, class: "bw-here", cx: x(track[0][2]), cy: y(track[0][1]) });
  box.replaceChildren(svg("rect", { x: 0, y: 0, width: 400, height: 300, class: "land" }),
    svg("polyline", { points, class: "bw-path" }),
    svg("circle", { r: 4, class: "bw-start", cx: x(track[0][2]), cy: y(track[0][1]) }),
    svg("circle", { r: 4, class: "bw-end", cx: x(track.at(-1)[2]), cy: y(track.at(-1)[1]) }), here);
  const times = track.map((p) => new Date(p[0]).getTime());
  return (ms) => {
    let i = times.findIndex((t) => t > ms); i = i < 0 ? times.length - 1 : Math.max(0, i - 1);
    here.setAttribute("cx", x(track[i][2])); here.setAttribute("cy", y(track[i][1]));
  };
}

const ISO = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/;
/** A custody detail's value for people: moments through when(), nested values flattened. */
function shown(value) {
  if (typeof value === "string" && ISO.test(value)) return when(value.replace(" ", "T"));
  if (Array.isArray(value)) return value.map(shown).join(", ");
  if (value && typeof value === "object") return Object.entries(value).map(([k, v]) => `${k} ${shown(v)}`).join("; ");
  return String(value);
}

async function showCustody() {
  const log = await api(`${API}/items/${itemId}/custody`);
  $("#bw-custody tbody").replaceChildren(...log.slice().reverse().map((e) => el("tr", {},
    el("td", {}, e.seq), el("td", {}, when(e.at, "seconds")), el("td", {}, e.actor), el("td", {}, e.action.replaceAll("_", " ")),
    el("td", {}, [e.reason, ...Object.entries(e.detail).filter(([k, v]) => v != null && v !== "" && k !== "every_s")
      .slice(0, 4).map(([k, v]) => ` ${k}: ${shown(v)}`)].join(" ")))));
}

function showHoldsAndShares(d) {
  const holds = d.holds.map((h) => el("li", {}, `${h.kind} hold ${h.reference} — ${h.reason} (by ${h.placed_by}, ${when(h.placed_at)})`));
  const cases = d.cases.map((c) => el("li", {}, "case ", el("a", { href: `/evidence/cases/${encodeURIComponent(c)}` }, c)));
  $("#bw-holds").replaceChildren(...holds, ...cases);
  if (!holds.length && !cases.length) $("#bw-holds").replaceChildren(el("li", { class: "muted" }, "none"));
  $("#bw-shares").replaceChildren(...d.shares.map((s) => el("li", {},
    `${s.recipient} (${s.recipient_role}), ${s.mode}, until ${when(s.expires_at)}` +
    (s.revoked_at ? " — revoked" : s.bound ? " — opened" : " — not opened yet"),
    s.revoked_at ? "" : el("button", { type: "button", class: "link", "data-perm": "bodycam:share",
      onclick: () => revoke(s.id) }, " revoke"))));
}

async function load() {
  try {
    item = await api(`${API}/items/${itemId}`);
  } catch (err) { $("#bw-item-status").textContent = err.message; return; }
  $("#bw-title").textContent = `${item.officer} · ${item.device} · ${when(item.recorded_at || item.ingested_at)}`;
  facts(item); showHoldsAndShares(item);
  $("#bw-report").href = `${API}/items/${itemId}/custody.pdf`;
  $("#bw-redact").href = `/evidence/items/${itemId}/redact`;
  const video = $("#bw-video");
  if (!video.src) video.src = `${API}/items/${itemId}/video`;
  const follow = drawTrack(item.track, item.track_error);
  const start = item.recorded_at ? new Date(item.recorded_at).getTime() : null;
  video.ontimeupdate = () => {
    if (start == null) return;
    $("#bw-clock").textContent = when(start + video.currentTime * 1000, "seconds");
    if (follow) follow(start + video.currentTime * 1000);
  };
  $("#bw-delete-go").textContent = item.status === "deleted" ? "Restore" : "Delete";
  await showCustody();
  await showAllowed();
}

async function post(path, body, done) {
  try { await api(path, { method: "POST", body: JSON.stringify(body) }); say(done); await load(); return true; }
  catch (err) { say(err.message); return false; }
}

async function revoke(shareId) {
  const reason = prompt("Why is the link ended?");
  if (reason) await post(`${API}/shares/${shareId}/revoke`, { reason }, "link ended");
}

$("#bw-verify").addEventListener("click", async () => {
  say("hashing the stored original again…");
  try {
    const r = await api(`${API}/items/${itemId}/verify`, { method: "POST" });
    say(r.outcome === "ok" ? "the stored original matches its digest" : `INTEGRITY CHECK FAILED: ${r.outcome}`);
    await load();
  } catch (err) { say(err.message); }
});

$("#bw-classify").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target), list = (v) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : null);
  const body = { reason: f.get("reason"), categories: list(f.get("categories")), access_class: f.get("access_class") || null,
    allowed_users: list(f.get("allowed_users")), do_not_disclose: f.get("do_not_disclose") ? true : (item.do_not_disclose ? false : null),
    retain_until: f.get("retain_until") ? `${f.get("retain_until")}T00:00:00Z` : null };
  if (await post(`${API}/items/${itemId}/classify`, body, "changed")) ev.target.reset();
});

$("#bw-hold").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (await post(`${API}/items/${itemId}/holds`, Object.fromEntries(new FormData(ev.target)), "held")) ev.target.reset();
});

$("#bw-share").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = Object.fromEntries(new FormData(ev.target));
  try {
    const made = await api(`${API}/items/${itemId}/shares`, { method: "POST", body: JSON.stringify({ ...body, days: Number(body.days) }) });
    const note = $("#bw-share-made");
    note.hidden = false;
    note.replaceChildren(`Link: ${made.url}`, el("br"), `Access code: ${made.code} — give it to ${made.recipient} separately ` +
      "(phone or in person); it is shown only now.");
    ev.target.reset(); await load();
  } catch (err) { say(err.message); }
});

$("#bw-delete").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const reason = new FormData(ev.target).get("reason");
  const action = item.status === "deleted" ? "restore" : "delete";
  if (await post(`${API}/items/${itemId}/${action}`, { reason }, action === "delete" ? "deleted (restorable)" : "restored")) ev.target.reset();
});

load();
