// The dispatch board: open alerts, the nearest available units with ETA, one-click dispatch, field
// status updates, incidents and their outcome — all kept live from /ws/live.
import { $, api, el, time, minutes, me, can, placeAlert, connectLive, alertFromMessage } from "/static/lib.js";
import { CityMap } from "/static/citymap.js";

const OPEN = ["new", "acknowledged", "confirmed"];
const STATUSES = ["available", "en_route", "on_scene", "off_duty"];
const OUTCOMES = [["arrest", "Arrest"], ["not_found", "Not found"], ["false_alarm", "False alarm"], ["resolved", "Resolved"]];
const state = { me: null, cameras: new Map(), alerts: new Map(), units: new Map(), incidents: [], selected: null };
let map;
const fail = (err) => { $("#dispatch-error").textContent = err.message; };

function openAlerts() {
  return [...state.alerts.values()].filter((a) => OPEN.includes(a.status))
    .sort((a, b) => a.priority - b.priority || (b.created_at || "").localeCompare(a.created_at || ""));
}

function render() {
  const alerts = openAlerts();
  $("#alert-count").textContent = alerts.length;
  $("#alerts").replaceChildren(...alerts.map((a) => el("li", {
    class: `alert p${a.priority} ${a.status}${state.selected === a.id ? " selected" : ""}`, "data-alert-id": a.id,
    onclick: () => select(a.id) }, el("span", { class: "prio" }, `P${a.priority}`), el("span", { class: "title" }, a.title),
    el("span", { class: "muted" }, `${a.kind.replace("_", " ")} · ${a.camera_id || ""} · ${time(a.created_at)}`),
    el("span", { class: `status ${a.status}` }, a.status))));
  const units = [...state.units.values()].sort((a, b) => a.callsign.localeCompare(b.callsign));
  $("#unit-count").textContent = `${units.filter((u) => u.status === "available").length} of ${units.length} available`;
  const mayAct = can(state.me, "dispatch:act");
  $("#units tbody").replaceChildren(...units.map((u) => el("tr", { "data-unit-id": u.id },
    el("td", {}, el("strong", {}, u.callsign), el("div", { class: "muted small" }, `${u.kind || ""} ${u.district || ""}`),
      el("div", { class: "muted small officer" }, u.officer ? `officer ${u.officer} since ${time(u.officer_since)}` : "no officer signed in")),
    el("td", {}, el("span", { class: `unit-status ${u.status}` }, u.status.replace("_", " "))),
    el("td", { class: "small", title: u.latitude != null ? `at ${u.latitude.toFixed(4)}, ${u.longitude.toFixed(4)}` : "position unknown" },
      u.incident_id ? (state.incidents.find((i) => i.id === u.incident_id)?.title || u.incident_id) : ""),
    el("td", {}, mayAct ? el("select", { class: "set-status", "aria-label": `status of ${u.callsign}`,
      onchange: (e) => setStatus(u.id, e.target.value) }, STATUSES.map((s) =>
        el("option", { value: s, selected: s === u.status }, s.replace("_", " ")))) : ""))));
  $("#incidents").replaceChildren(...state.incidents.map((i) => el("li", { class: `incident ${i.status}`, "data-incident-id": i.id },
    el("strong", {}, i.title), el("span", { class: "muted small" },
      ` P${i.priority} · ${time(i.created_at)} · ${i.dispatches.map((d) => state.units.get(d.unit_id)?.callsign || d.unit_id).join(", ")}`
      + (i.outcome ? ` · ${i.outcome.replace("_", " ")}` : "")),
    i.status === "open" && mayAct ? el("span", { class: "close-incident" },
      el("select", { "aria-label": "outcome" }, OUTCOMES.map(([v, l]) => el("option", { value: v }, l))),
      el("button", { class: "secondary", onclick: (e) => closeIncident(i.id, e.target.previousSibling.value) }, "Close")) : "")));
  map.set({ cameras: [...state.cameras.values()], units, alerts: alerts.map((a) => placeAlert(a, state.cameras)),
    selected: state.selected });
}

async function select(alertId) {
  state.selected = alertId;
  $("#dispatch-error").textContent = "";
  render();
  const a = state.alerts.get(alertId);
  $("#candidates-for").textContent = a ? `for “${a.title}”` : "";
  if (!can(state.me, "dispatch:act")) {
    $("#candidates").replaceChildren(el("li", { class: "muted" }, "Your role may not send units."));
    return;
  }
  try {
    const found = await api(`/api/dispatch/candidates?alert_id=${encodeURIComponent(alertId)}`);
    $("#candidates").replaceChildren(...(found.length ? found.map((c) => el("li", { class: "candidate", "data-unit-id": c.unit.id },
      el("strong", {}, c.unit.callsign), ` ${(c.distance_m / 1000).toFixed(1)} km · ETA ${minutes(c.eta_s)} `,
      el("button", { class: "send", onclick: () => send(c.unit.id, alertId) }, "Dispatch")))
      : [el("li", { class: "muted" }, "No unit is available.")]));
  } catch (err) { $("#candidates").replaceChildren(el("li", { class: "muted" }, err.message)); }
}

async function send(unitId, alertId) {
  try {
    await api("/api/dispatch", { method: "POST", body: JSON.stringify({ unit_id: unitId, alert_id: alertId }) });
    await refresh();
    await select(alertId);
  } catch (err) { fail(err); }
}

async function setStatus(unitId, status) {
  try { await api(`/api/units/${unitId}/status`, { method: "POST", body: JSON.stringify({ status }) }); await refresh(); }
  catch (err) { fail(err); await refresh(); }
}

async function closeIncident(id, outcome) {
  try { await api(`/api/incidents/${id}/close`, { method: "POST", body: JSON.stringify({ outcome }) }); await refresh(); }
  catch (err) { fail(err); }
}

async function refresh() {
  const [units, incidents] = await Promise.all([api("/api/units"), api("/api/incidents?limit=30")]);
  state.units = new Map(units.map((u) => [u.id, u]));
  state.incidents = incidents;
  render();
}

function onLive(msg) {
  if (msg.channel === "alert") {
    state.alerts.set(msg.alert_id, alertFromMessage(msg, state.alerts.get(msg.alert_id)));
    render();
  } else if (msg.type === "unit") {
    const known = state.units.get(msg.unit_id) || {};
    state.units.set(msg.unit_id, { ...known, id: msg.unit_id, callsign: msg.callsign, status: msg.status,
      latitude: msg.latitude, longitude: msg.longitude, incident_id: msg.incident_id });
    render();
  }
}

async function main() {
  map = new CityMap($("#map"), { onAlert: select });
  state.me = await me();
  const [cameras, alerts] = await Promise.all([api("/api/cameras?limit=20000"), api("/api/alerts?open_only=true")]);
  state.cameras = new Map(cameras.map((c) => [c.id, c]));
  state.alerts = new Map(alerts.map((a) => [a.id, a]));
  await refresh();
  connectLive(onLive);
  document.body.dataset.ready = "yes";
}

main().catch((err) => console.error(err));
