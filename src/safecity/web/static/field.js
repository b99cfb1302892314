// @ts-check
// The officer's phone: sign in to a unit, receive the dispatch (polled with an ETag, which survives a
// poor link better than a socket), report arrival and the outcome, and send the unit's position.
// Every update goes through a queue kept in localStorage: sent in order when the connection allows,
// each with a key made here once, so a resend after a lost answer is applied once by the server.
import { $, el, send, when, minutes } from "/static/lib.js";

const POLL_MS = 5000;
const FIX_FRESH_MS = 120000;  // the phone's own fix beats the server's copy of the unit's for two minutes
const POSITION_EVERY_MS = 15000;  // a fix every 15 s is enough to follow a unit, and spares the battery
const BATCH = 50;
// Who is signed in, as the server rendered the page: the shown name gains the role once nav.js hears
// from the server, which a page opened offline never does, so the kept queue and assignment are
// keyed by the rendered username alone.
const me = ($("#whoami")?.dataset.username || "").trim();
const QUEUE = `safecity.field.queue.${me}`;
const LAST = `safecity.field.assignment.${me}`;

/** @type {any} */
let current = null;
let etag = "";
let pollsSent = 0;
let pollAnswered = 0;  // the newest poll whose answer the page has taken
let flushing = false;
let retryMs = 2000;
/** @type {number | null} */
let watchId = null;
let lastFixAt = 0;
/** @type {{latitude: number, longitude: number, at: number} | null} */
let ownFix = null;
/** @type {Promise<any> | null} */
let fieldMap = null;

const newKey = () => (crypto.randomUUID ? crypto.randomUUID()
  : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`);
const readQueue = () => { try { return JSON.parse(localStorage.getItem(QUEUE) || "[]"); } catch { return []; } };
const writeQueue = (/** @type {any[]} */ q) => { localStorage.setItem(QUEUE, JSON.stringify(q)); showNet(); };

// Updates queued under the name as once shown ("pc.rana (patrol_officer)") are taken over, never lost.
for (const key of Object.keys(localStorage).filter((k) => k.startsWith(`${QUEUE} (`))) {
  try {
    const older = JSON.parse(localStorage.getItem(key) || "[]");
    localStorage.setItem(QUEUE, JSON.stringify([...older, ...readQueue()]));
  } catch { /* a corrupt copy: nothing in it can be sent */ }
  localStorage.removeItem(key);
}

function log(text) {
  $("#log").prepend(el("li", {}, `${when(new Date().toISOString(), "time")} ${text}`));
}

function showNet() {
  const net = $("#net");
  net.textContent = navigator.onLine ? "online" : "offline";
  net.classList.toggle("offline", !navigator.onLine);
  const waiting = readQueue().length;
  const queued = $("#queued");
  queued.hidden = waiting === 0;
  queued.textContent = `${waiting} to send`;
}

/** Adds an update to the queue (a newer position replaces one not yet sent at its tail) and sends. */
function enqueue(update) {
  const queue = readQueue();
  const item = { key: newKey(), at: new Date().toISOString(), ...update };
  if (update.kind === "position" && queue.length && queue[queue.length - 1].kind === "position") {
    queue[queue.length - 1] = item;
  } else {
    queue.push(item);
  }
  writeQueue(queue);
  flush();
}

/** Sends the queue in order, one batch at a time; on a failed connection, tries again later. */
async function flush() {
  if (flushing) return;
  flushing = true;
  try {
    for (let queue = readQueue(); queue.length; queue = readQueue()) {
      const batch = queue.slice(0, BATCH);
      let res;
      try {
        res = await send("/api/field/updates", {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ updates: batch }),
        });
      } catch {
        retryLater();
        return;
      }
      if (res.status === 401) { location.href = "/login"; return; }
      if (res.status >= 500 || res.status === 429 || res.status === 408) { retryLater(); return; }
      const data = await res.json().catch(() => null);
      const sent = new Set(batch.map((u) => u.key));
      if (!res.ok) {
        // The server will never take this batch as it is (e.g. refused): drop it rather than block the queue.
        $("#field-error").textContent = (data && data.detail) || `updates refused (${res.status})`;
      } else {
        for (const r of data.results) {
          if (r.status === "rejected") $("#field-error").textContent = r.detail;
          else if (r.detail) log(r.detail);
        }
      }
      writeQueue(readQueue().filter((u) => !sent.has(u.key)));
      retryMs = 2000;
    }
  } finally {
    flushing = false;
  }
  poll();
}

function retryLater() {
  showNet();
  setTimeout(flush, retryMs);
  retryMs = Math.min(retryMs * 2, 60000);
}

async function poll() {
  // Polls overlap on a slow link (one every POLL_MS, one after each change of shift): an answer that
  // comes after a newer poll's is older news, and must not put back a state the phone has left.
  const mine = ++pollsSent;
  try {
    const res = await send("/api/field/assignment", { headers: etag ? { "If-None-Match": etag } : {} });
    if (res.status === 401) { location.href = "/login"; return; }
    if (mine < pollAnswered) return;
    if (res.status === 304) { pollAnswered = mine; return; }
    if (!res.ok) return;
    const data = await res.json();
    if (mine < pollAnswered) return;
    pollAnswered = mine;
    etag = res.headers.get("ETag") || "";
    localStorage.setItem(LAST, JSON.stringify(data));
    render(data);
  } catch {
    showNet();  // offline: the page keeps showing the last assignment it had
  }
}

function render(data) {
  const was = current?.incident?.id;
  current = data;
  const onShift = !!data.shift;
  $("#shift-form").hidden = onShift;
  $("#on-shift").hidden = !onShift;
  if (!onShift) { stopWatching(); loadUnits(); }
  else {
    $("#unit-name").textContent = `${data.callsign} (${data.unit_id})`;
    $("#unit-status").textContent = (data.unit_status || "").replace("_", " ");
    startWatching();
  }
  const incident = data.incident;
  $("#no-incident").hidden = !!incident;
  $("#incident").hidden = !incident;
  if (!incident) return;
  if (incident.id !== was) {
    log(`Sent to ${incident.title}`);
    if (navigator.vibrate) navigator.vibrate([300, 100, 300]);
  }
  $("#incident-title").textContent = incident.title;
  $("#priority").textContent = `P${incident.priority}`;
  $("#dispatched").textContent = `sent ${when(incident.dispatched_at, "time")}`;
  $("#place").textContent = incident.place || (incident.latitude != null
    ? `${incident.latitude.toFixed(5)}, ${incident.longitude.toFixed(5)}` : "place unknown");
  const nav = /** @type {HTMLAnchorElement} */ ($("#navigate"));
  nav.hidden = !incident.navigate;
  if (incident.navigate) nav.href = incident.navigate;
  const route = incident.route;
  const byRoad = route?.source === "roads";
  $("#route").textContent = incident.distance_m != null
    ? `${(incident.distance_m / 1000).toFixed(1)} km${byRoad ? " by road" : ""}, about ${minutes(incident.eta_s)}` : "";
  if (!$("#incident-map").hidden) $("#map-note").textContent = byRoad
    ? "Along the streets from your unit's last position; Navigate opens your phone's maps."
    : `${route?.note || "Straight line from you to the place."} Navigate opens your phone's maps for the streets.`;
  drawMap();
  const photos = $("#photos");
  photos.replaceChildren(...incident.photos.map((ref) => el("img", { src: `/media/${ref}`, alt: "Alert photo" })));
  const arrived = !!incident.arrived_at;
  $("#arrived").hidden = arrived;
  $("#arrived-at").hidden = !arrived;
  if (arrived) $("#arrived-at").textContent = `On scene since ${when(incident.arrived_at, "time")}`;
}

/** @type {Promise<void> | null} */
let unitsLoading = null;

/** Fills the unit list once. The kept copy and the first poll both render: a second fill running
 * beside the first would replace the options and silently undo the officer's choice. */
function loadUnits() {
  const select = /** @type {HTMLSelectElement} */ ($("#unit-select"));
  if (select.options.length || unitsLoading) return unitsLoading || Promise.resolve();
  unitsLoading = (async () => {
    const res = await send("/api/field/units").catch(() => null);
    if (!res || !res.ok || select.options.length) return;
    const units = await res.json();
    select.replaceChildren(...units.map((u) => el("option", { value: u.id, disabled: u.taken },
      `${u.callsign} (${u.id})${u.taken ? " — taken" : ""}`)));
  })().finally(() => { unitsLoading = null; });
  return unitsLoading;
}

/** Where the officer is: this phone's own recent fix, else the unit's last position the server has. */
function whereAmI() {
  if (ownFix && Date.now() - ownFix.at < FIX_FRESH_MS) return { place: ownFix, label: "You (this phone's GPS)" };
  const known = current?.position;
  if (!known) return { place: null, label: "" };
  return { place: known, label: known.at ? `Your unit, as of ${when(known.at, "time")}` : "Your unit's base" };
}

/** Draws the incident and the officer on the map (Leaflet is loaded on the first incident, not before). */
function drawMap() {
  const incident = current?.incident;
  if (!incident) return;
  const node = $("#incident-map");
  fieldMap = fieldMap || import("/static/fieldmap.js").then(({ FieldMap }) => new FieldMap(node));
  fieldMap.then((map) => {
    const me = whereAmI();
    const place = incident.latitude != null ? { latitude: incident.latitude, longitude: incident.longitude } : null;
    map.show({ id: incident.id, title: incident.title, place, me: me.place, meLabel: me.label, route: incident.route || null });
  }).catch(() => {
    node.hidden = true;
    $("#map-note").textContent = "No map: it could not be loaded on this connection. Navigate still works.";
  });
}

function startWatching() {
  if (watchId !== null || !navigator.geolocation) return;
  watchId = navigator.geolocation.watchPosition((pos) => {
    $("#gps").textContent = `${pos.coords.latitude.toFixed(5)}, ${pos.coords.longitude.toFixed(5)} ±${Math.round(pos.coords.accuracy)} m`;
    ownFix = { latitude: pos.coords.latitude, longitude: pos.coords.longitude, at: Date.now() };
    drawMap();
    if (Date.now() - lastFixAt < POSITION_EVERY_MS) return;
    lastFixAt = Date.now();
    enqueue({ kind: "position", latitude: pos.coords.latitude, longitude: pos.coords.longitude,
      at: new Date(pos.timestamp || Date.now()).toISOString() });
  }, (err) => { $("#gps").textContent = `no GPS: ${err.message}`; },
  { enableHighAccuracy: true, maximumAge: 10000, timeout: 60000 });
}

function stopWatching() {
  if (watchId !== null) navigator.geolocation.clearWatch(watchId);
  watchId = null;
}

$("#shift-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#field-error").textContent = "";
  const unit = /** @type {HTMLSelectElement} */ ($("#unit-select")).value;
  const res = await send("/api/field/shift", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ unit_id: unit }),
  }).catch(() => null);
  if (!res) { $("#field-error").textContent = "No connection: signing in to a unit needs one."; return; }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) { $("#field-error").textContent = `${data.detail || res.statusText}${data.hint ? ` (${data.hint})` : ""}`; return; }
  log(`Signed in to ${unit}`);
  etag = "";
  poll();
});

$("#end-shift").addEventListener("click", async () => {
  const res = await send("/api/field/shift/end", { method: "POST" }).catch(() => null);
  if (res && res.ok) { log("Shift ended"); etag = ""; poll(); }
});

$("#arrived").addEventListener("click", () => {
  if (!current?.incident) return;
  enqueue({ kind: "arrived", incident_id: current.incident.id });
  $("#arrived").hidden = true;
  $("#arrived-at").hidden = false;
  $("#arrived-at").textContent = `Arrived ${when(new Date().toISOString(), "time")}`;
});

document.querySelectorAll("#outcome button[data-outcome]").forEach((button) => {
  button.addEventListener("click", () => {
    if (!current?.incident) return;
    const outcome = /** @type {HTMLElement} */ (button).dataset.outcome;
    const note = /** @type {HTMLInputElement} */ ($("#outcome-note")).value.trim();
    enqueue({ kind: "outcome", incident_id: current.incident.id, outcome, note });
    log(`Reported: ${(outcome || "").replace("_", " ")}`);
    $("#incident").hidden = true;
    $("#no-incident").hidden = false;
  });
});

window.addEventListener("online", () => { showNet(); flush(); poll(); });
window.addEventListener("offline", showNet);

const cached = localStorage.getItem(LAST);
if (cached) { try { render(JSON.parse(cached)); } catch { /* a corrupt copy: the next poll replaces it */ } }
showNet();
poll();
flush();
setInterval(poll, POLL_MS);
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/field/sw.js", { scope: "/field" }).catch(() => {});
