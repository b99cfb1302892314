// One body-worn recording: its own file played in the browser, the GPS track on the city map with the
// officer's place at the playing moment, the fixed cameras that saw the same place at the same time (their
// footage following the player), the custody log, holds, cases and shares, and the actions.
import { $, api, el, when } from "/static/lib.js";
import { cityBase } from "/static/citymap.js";
import { showAllowed } from "/static/bodyworn.js";
import { showNearby } from "/static/bodyworn_nearby.js";

const L = globalThis.L;

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

let trackMap = null;  // made with the first track shown
let cameraLayer = null;
let nearbyShown = false;

/** The fixed cameras near the track, on the track's map. */
function placeCameras(cameras) {
  if (!trackMap) return;
  if (cameraLayer) cameraLayer.remove();
  cameraLayer = L.featureGroup(cameras.map((c) => L.circleMarker([c.latitude, c.longitude],
    { className: "bw-camera", radius: 5 }).bindTooltip(`${c.name} (${c.camera_id})`))).addTo(trackMap.map);
}

/** The track on the city map, with where the officer was at the playing moment (returned: `follow(ms)`). */
function drawTrack(track, error) {
  $("#bw-track-note").textContent = error ? `GPS track not used: ${error}` :
    track.length ? `${track.length} fixes, ${when(track[0][0], "time")}–${when(track[track.length - 1][0], "time")}` :
      "no GPS track came with this recording";
  $("#bw-track").hidden = !track.length;
  if (!track.length) return null;
  trackMap = trackMap || cityBase($("#bw-track"));
  const points = track.map((p) => [p[1], p[2]]);
  const spot = (className, at, radius) => L.circleMarker(at, { className, radius, interactive: false });
  // Every fix drawn (evidence): Leaflet would otherwise merge fixes that fall in line on the screen.
  const layer = L.featureGroup([L.polyline(points, { className: "bw-path", interactive: false, smoothFactor: 0 }),
    spot("bw-start", points[0], 4), spot("bw-end", points.at(-1), 4)]).addTo(trackMap.map);
  const here = spot("bw-here", points[0], 6).addTo(layer);
  const fit = () => trackMap.map.fitBounds(layer.getBounds().pad(0.2), { maxZoom: 17 });
  fit();
  trackMap.ready.then(fit);
  const times = track.map((p) => new Date(p[0]).getTime());
  return (ms) => {
    let i = times.findIndex((t) => t > ms); i = i < 0 ? times.length - 1 : Math.max(0, i - 1);
    here.setLatLng(points[i]);
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
  const who = await showAllowed();
  // After the custody log is drawn: asking for the cameras is itself an entry of it.
  if (!nearbyShown && who.permissions.includes("recordings:read")) {
    nearbyShown = true;
    showNearby(itemId, video, placeCameras);
  }
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
