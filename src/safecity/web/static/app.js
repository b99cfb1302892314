// The command centre: the live alert queue, the city map, live events and camera health, fed by /ws/live.
import { $, api, el, time, when, minutes, me, can, placeAlert, connectLive, alertFromMessage, alarm }
  from "/static/lib.js";
import { CityMap } from "/static/citymap.js";

const OPEN = ["new", "acknowledged", "confirmed"];
const REASONS = [["false_match", "False match (wrong person or vehicle)"], ["misread", "Plate misread"],
  ["duplicate", "Duplicate of another alert"], ["no_action_needed", "True, but no action needed"],
  ["test", "Test or drill"], ["other", "Other"]];
const state = { cameras: new Map(), alerts: new Map(), units: new Map(), events: 0, me: null, openId: null,
  miniMap: null };
let map;
const RESOUND_MS = 30_000;  // an unacknowledged priority-1 alert sounds again this often

const cameraName = (id) => state.cameras.get(id)?.name || id || "";

function openAlerts() {
  return [...state.alerts.values()].filter((a) => OPEN.includes(a.status))
    .sort((a, b) => a.priority - b.priority || (b.created_at || "").localeCompare(a.created_at || ""));
}

function renderAlerts() {
  const alerts = openAlerts();
  $("#alert-count").textContent = alerts.length;
  $("#alerts").replaceChildren(...alerts.slice(0, 200).map((a) =>
    el("li", { class: `alert p${a.priority} ${a.status}`, "data-alert-id": a.id, tabindex: 0,
      onclick: () => openAlert(a.id), onkeydown: (e) => { if (e.key === "Enter") openAlert(a.id); } },
      el("span", { class: "prio" }, `P${a.priority}`),
      el("span", { class: "title" }, a.title),
      el("span", { class: "muted" }, `${a.kind.replace("_", " ")} · ${cameraName(a.camera_id)} · ${time(a.created_at)}`
        + (a.occurrences > 1 ? ` · ×${a.occurrences}` : "")),
      a.escalated_at && a.status === "new" ? el("span", { class: "badge bad escalated" }, "escalated") : "",
      el("span", { class: `status ${a.status}` }, a.status))));
  drawMap();
}

function drawMap() {
  map.set({ cameras: [...state.cameras.values()], units: [...state.units.values()],
    alerts: openAlerts().map((a) => placeAlert(a, state.cameras)) });
}

function evidence(a, context) {
  const ev = a.evidence || {};
  const pics = [];
  if (ev.crop_ref) pics.push(el("figure", {}, el("img", { src: `/media/${ev.crop_ref}`, alt: "crop", class: "evidence" }),
    el("figcaption", {}, "crop")));
  if (ev.frame_ref) pics.push(el("figure", {}, el("img", { src: `/media/${ev.frame_ref}`, alt: "frame", class: "evidence" }),
    el("figcaption", {}, "frame")));
  for (const ref of ev.watchlist_photo_refs || []) {
    pics.push(el("figure", {}, el("img", { src: `/media/${ref}`, alt: "watch-list photo", class: "evidence" }),
      el("figcaption", {}, "watch list")));
  }
  const facts = [];
  const place = context?.place;
  const cam = state.cameras.get(a.camera_id);
  if (place) facts.push(["Place", `${place.name}, ${place.district}`]);
  else if (cam) facts.push(["Camera", `${cam.name} (${cam.district})`]);
  if (ev.plate) facts.push(["Plate read", ev.plate]);
  const listing = context?.listing;
  if (listing) {
    facts.push(["Listed", `${listing.list_name} · ${listing.plate}`]);
    if (listing.vehicle) facts.push(["Vehicle", listing.vehicle]);
    facts.push(["Reason", listing.reason]);
    if (listing.reference) facts.push(["Reference", listing.reference]);
    facts.push(["Listed by", `${listing.added_by}${listing.created_at ? ", " + when(listing.created_at) : ""}`]);
  }
  const person = context?.watchlist;
  if (person) {
    facts.push(["Person", `${person.name} (${person.category})`]);
    facts.push(["Legal basis", person.legal_basis]);
    facts.push(["Case officer", person.case_officer]);
    facts.push(["Approved by", person.approved_by || "–"]);
  } else if (ev.entry_id) facts.push(["Watch-list entry", ev.entry_id]);
  if (ev.similarity != null) facts.push(["Similarity", `${Math.round(ev.similarity * 100)} %`]);
  const seen = (s) => `${when(s.at)} · ${s.camera_name || s.camera_id || "unknown camera"}`;
  if (context?.first_seen) facts.push(["First seen", seen(context.first_seen)]);
  if (context?.last_seen) facts.push(["Last seen", seen(context.last_seen)]);
  if (context?.trail?.length > 1) facts.push(["Sightings", `${context.trail.length} in the last 24 h (on the map)`]);
  return el("div", { class: "evidence-box" },
    pics.length ? el("div", { class: "pics" }, pics) : el("p", { class: "muted" }, "No picture"),
    el("dl", {}, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
}

async function openAlert(id) {
  const dialog = $("#alert-dialog");
  let a, context;
  try {
    [a, context] = await Promise.all([api(`/api/alerts/${id}`), api(`/api/alerts/${id}/context`).catch(() => null)]);
  } catch (err) { console.error(err); return; }
  state.alerts.set(id, a);
  state.openId = id;
  const error = el("p", { class: "error", role: "alert" });
  const decide = async (action, extra = {}) => {
    try {
      const updated = await api(`/api/alerts/${id}/actions`, { method: "POST",
        body: JSON.stringify({ action, version: a.version, ...extra }) });
      state.alerts.set(id, updated); renderAlerts(); dialog.close();
    } catch (err) { error.textContent = err.message; }
  };
  const mini = el("div", { class: "mini-map", role: "img", "aria-label": "Where the alert is, with the sightings" });
  const trail = (context?.trail || []).map((s) => ({ ...s, label: `${when(s.at)} · ${s.camera_name || s.camera_id}` }));
  state.miniMap?.map.remove();  // the previous alert's map
  const miniMap = state.miniMap = new CityMap(mini, { fit: "always" });
  const actions = el("div", { class: "actions" });
  if (can(state.me, "alerts:act") && OPEN.includes(a.status)) {
    if (a.status === "new") actions.append(el("button", { id: "act-acknowledge", onclick: () => decide("acknowledge") }, "Acknowledge"));
    if (a.status !== "confirmed") actions.append(el("button", { id: "act-confirm", onclick: () => decide("confirm") }, "Confirm"));
    actions.append(el("button", { id: "act-close", class: "secondary", onclick: () => decide("close") }, "Close"));
    const code = el("select", { id: "dismiss-code", "aria-label": "Dismissal reason" },
      REASONS.map(([v, label]) => el("option", { value: v }, label)));
    const why = el("input", { id: "dismiss-reason", placeholder: "why (required)", maxlength: 500 });
    actions.append(el("span", { class: "dismiss" }, code, why, el("button", { id: "act-dismiss", class: "danger",
      onclick: () => { if (!why.value.trim()) { error.textContent = "Say why you dismiss it."; return; }
        decide("dismiss", { reason: why.value, reason_code: code.value }); } }, "Dismiss")));
  }
  const sentBox = el("div", { class: "sent-box", id: "units-sent" });
  showSent(sentBox, context?.units || []);
  const dispatchBox = el("div", { class: "dispatch-box" });
  if (can(state.me, "dispatch:act") && OPEN.includes(a.status)) loadCandidates(a, dispatchBox, error, sentBox);
  const live = a.camera_id ? el("a", { id: "open-live", href: `/live/${encodeURIComponent(a.camera_id)}`,
    title: "Live view of the camera (L)" }, "Live view") : "";
  const history = el("ol", { class: "history compact" });
  api(`/api/alerts/${id}/history`).then((rows) => history.replaceChildren(...rows.map((h) =>
    el("li", {}, `${time(h.at)} ${h.actor}: ${h.from_status} → ${h.to_status}${h.reason ? " — " + h.reason : ""}`))));
  dialog.replaceChildren(
    el("header", {}, el("h3", {}, context?.headline || a.title), el("button", { class: "link", onclick: () => dialog.close(), "aria-label": "close" }, "✕")),
    el("p", { class: "muted" }, `${a.kind.replace("_", " ")} · priority ${a.priority} · ${a.status} · seen ${a.occurrences}× · ${time(a.created_at)}`,
      a.escalated_at ? ` · escalated ${time(a.escalated_at)}` : "", " · ", live),
    el("div", { class: "split" }, evidence(a, context), mini), actions, sentBox, dispatchBox, error,
    el("details", {}, el("summary", {}, "History and detail"), history, el("pre", {}, JSON.stringify(a.detail, null, 1))));
  if (!dialog.open) dialog.showModal();
  // Drawn once the dialog is open: the map frames the alert and its trail in the space it has.
  miniMap.set({ cameras: [...state.cameras.values()], units: [...state.units.values()],
    alerts: [placeAlert(a, state.cameras)], selected: a.id, trail });
}

/** Which units were sent to the alert and where each stands. */
function showSent(box, units) {
  box.replaceChildren(...(units.length ? [el("h4", {}, "Sent"), el("ul", { class: "list compact" }, units.map((u) =>
    el("li", { class: "sent-unit", "data-unit-id": u.unit_id }, el("strong", {}, u.callsign),
      ` · ${u.unit_status.replace("_", " ")}`, u.eta_s != null && !u.arrived_at ? ` · ETA ${minutes(u.eta_s)}` : "",
      u.arrived_at ? ` · arrived ${time(u.arrived_at)}` : "", u.outcome ? ` · ${u.outcome.replace("_", " ")}` : "",
      el("span", { class: "muted" }, ` — sent by ${u.dispatched_by} ${time(u.dispatched_at)}`))))] : []));
}

async function loadCandidates(a, box, error, sentBox) {
  try {
    const found = await api(`/api/dispatch/candidates?alert_id=${a.id}`);
    box.replaceChildren(el("h4", {}, "Send the nearest unit"), found.length ? el("ol", { class: "list compact" },
      found.map((c) => el("li", { class: "candidate" }, el("strong", {}, c.unit.callsign),
        ` ${(c.distance_m / 1000).toFixed(1)} km · ETA ${minutes(c.eta_s)} `,
        el("button", { class: "send", "data-unit-id": c.unit.id, onclick: async () => {
          try {
            await api("/api/dispatch", { method: "POST", body: JSON.stringify({ unit_id: c.unit.id, alert_id: a.id }) });
            const context = await api(`/api/alerts/${a.id}/context`);
            showSent(sentBox, context.units);
            box.replaceChildren(el("p", { class: "sent-note", role: "status" },
              `${c.unit.callsign} is on the way (ETA ${minutes(c.eta_s)}).`));
          } catch (err) { error.textContent = err.message; }
        } }, "Send")))) : el("p", { class: "muted" }, "No unit is available."));
  } catch (err) { box.replaceChildren(el("p", { class: "muted" }, err.message)); }
}

function addEvent(msg) {
  state.events += 1;
  $("#event-count").textContent = state.events;
  const list = $("#events");
  const what = msg.plate ? `plate ${msg.plate}` : msg.state ? `health ${msg.state}` : msg.callsign
    ? `${msg.callsign} ${msg.status}` : msg.kind || msg.offence || msg.title || "";
  list.prepend(el("li", { class: `event ${msg.type}` },
    el("span", { class: "muted" }, time(msg.at)), ` ${msg.type} `, el("strong", {}, what), ` ${msg.camera_id || ""}`));
  while (list.children.length > 100) list.lastChild.remove();
}

function renderCameras() {
  const rows = [...state.cameras.values()].sort((a, b) => a.id.localeCompare(b.id));
  $("#camera-count").textContent = `${rows.length} cameras · ${state.units.size} units`;
  $("#cameras tbody").replaceChildren(...rows.slice(0, 500).map((c) => el("tr", { "data-camera-id": c.id },
    el("td", {}, c.name), el("td", {}, c.district), el("td", {}, c.kind),
    el("td", {}, el("span", { class: `health ${c.health_state}` }, c.health_state.replace("_", " "))))));
  drawMap();
}

function onLive(msg) {
  if (msg.channel === "alert") {
    const alert = alertFromMessage(msg, state.alerts.get(msg.alert_id));
    const isNew = !state.alerts.has(msg.alert_id);
    state.alerts.set(alert.id, alert);
    renderAlerts();
    if (isNew && alert.priority === 1 && $("#sound").checked) alarm();
    // An escalation calls the supervisors: their pages sound it whatever its priority sound says.
    if (msg.escalated && alert.status === "new" && ["supervisor", "admin"].includes(state.me.role)) alarm();
    return;
  }
  addEvent(msg);
  if (msg.type === "camera_health" && state.cameras.has(msg.camera_id)) {
    state.cameras.get(msg.camera_id).health_state = msg.state; renderCameras();
  } else if (msg.type === "unit") {
    const known = state.units.get(msg.unit_id) || {};
    state.units.set(msg.unit_id, { ...known, id: msg.unit_id, callsign: msg.callsign, status: msg.status,
      latitude: msg.latitude, longitude: msg.longitude, incident_id: msg.incident_id });
    drawMap();
  }
}

async function main() {
  map = new CityMap($("#map"), { onAlert: openAlert });
  state.me = await me();
  const [cameras, alerts, units] = await Promise.all([api("/api/cameras?limit=20000"), api("/api/alerts?open_only=true"),
    api("/api/units").catch(() => [])]);
  for (const c of cameras) state.cameras.set(c.id, c);
  for (const u of units) state.units.set(u.id, u);
  for (const a of alerts) state.alerts.set(a.id, a);
  renderCameras();
  renderAlerts();
  // The live list starts with the recent past, not empty after a reload.
  const recent = await api("/api/live/recent?limit=50").catch(() => []);
  for (const msg of recent.reverse()) addEvent(msg);
  connectLive(onLive);
  setInterval(() => {
    if ($("#sound").checked && openAlerts().some((a) => a.priority === 1 && a.status === "new")) alarm();
  }, RESOUND_MS);
  document.addEventListener("keydown", onKey);
  document.body.dataset.ready = "yes";
}

/** Keyboard: j/k (or arrows) move through the queue, Enter opens, a acknowledges, d sends the nearest
 * unit, l opens the camera live, ? shows the keys. Typing in a field is never taken as a shortcut. */
function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest?.("input, select, textarea")) return;
  const dialog = $("#alert-dialog");
  const items = [...document.querySelectorAll("#alerts li")];
  const at = items.indexOf(document.activeElement);
  const key = event.key;
  if (key === "j" || (key === "ArrowDown" && !dialog.open)) {
    items[Math.min(items.length - 1, at + 1)]?.focus(); event.preventDefault();
  } else if (key === "k" || (key === "ArrowUp" && !dialog.open)) {
    items[Math.max(0, at - 1)]?.focus(); event.preventDefault();
  } else if (key === "a" && dialog.open) {
    $("#act-acknowledge")?.click();
  } else if (key === "d" && dialog.open) {
    document.querySelector("#alert-dialog button.send")?.click();
  } else if (key === "l" && dialog.open) {
    $("#open-live")?.click();
  } else if (key === "?") {
    $("#shortcuts").hidden = !$("#shortcuts").hidden;
  }
}

main().catch((err) => console.error(err));
