// The command centre: alert queue, live events, camera map and health, fed by /ws/live.
const $ = (sel) => document.querySelector(sel);
const state = { cameras: new Map(), alerts: new Map(), events: 0, me: null };

async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) } });
  if (res.status === 401) { window.location.href = "/login"; throw new Error("signed out"); }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new Error((data && (data.detail + (data.hint ? " — " + data.hint : ""))) || res.statusText);
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

const time = (iso) => new Date(iso).toLocaleTimeString();

function renderAlerts() {
  const list = $("#alerts");
  const alerts = [...state.alerts.values()]
    .filter((a) => ["new", "acknowledged", "confirmed"].includes(a.status))
    .sort((a, b) => a.priority - b.priority || b.created_at.localeCompare(a.created_at));
  $("#alert-count").textContent = alerts.length;
  list.replaceChildren(...alerts.slice(0, 200).map((a) =>
    el("li", { class: `alert p${a.priority} ${a.status}`, "data-alert-id": a.id, onclick: () => openAlert(a.id) },
      el("span", { class: "prio" }, `P${a.priority}`),
      el("span", { class: "title" }, a.title),
      el("span", { class: "muted" }, `${a.kind} · ${a.camera_id || ""} · ${time(a.created_at)}`),
      el("span", { class: `status ${a.status}` }, a.status))));
}

async function openAlert(id) {
  const a = await api(`/api/alerts/${id}`);
  const dialog = $("#alert-dialog");
  const crop = a.evidence && (a.evidence.crop_ref || a.evidence.frame_ref);
  const act = async (action) => {
    let reason = "";
    if (action === "dismiss") { reason = prompt("Why dismiss this alert?") || ""; if (!reason) return; }
    try {
      const updated = await api(`/api/alerts/${id}/actions`, { method: "POST",
        body: JSON.stringify({ action, reason, version: a.version }) });
      state.alerts.set(id, updated); renderAlerts(); dialog.close();
    } catch (err) { dialog.querySelector(".error").textContent = err.message; }
  };
  dialog.replaceChildren(
    el("h3", {}, a.title),
    el("p", { class: "muted" }, `${a.kind} · priority ${a.priority} · ${a.status} · seen ${a.occurrences}×`),
    crop ? el("img", { src: `/media/${crop}`, alt: "evidence", class: "evidence" }) : el("p", {}, "No picture"),
    el("pre", {}, JSON.stringify(a.detail, null, 1)),
    el("p", { class: "error", role: "alert" }),
    el("div", { class: "actions" },
      ...["acknowledge", "confirm", "dismiss", "close"].map((x) => el("button", { onclick: () => act(x), id: `act-${x}` }, x)),
      el("button", { class: "link", onclick: () => dialog.close() }, "cancel")));
  dialog.showModal();
}

function addEvent(msg) {
  state.events += 1;
  $("#event-count").textContent = state.events;
  const list = $("#events");
  const what = msg.plate ? `plate ${msg.plate}` : msg.state ? `health ${msg.state}` : msg.kind || msg.offence || msg.title || "";
  list.prepend(el("li", { class: `event ${msg.type}` },
    el("span", { class: "muted" }, time(msg.at)), ` ${msg.type} `, el("strong", {}, what), ` ${msg.camera_id || ""}`));
  while (list.children.length > 100) list.lastChild.remove();
}

function renderCameras() {
  const rows = [...state.cameras.values()].sort((a, b) => a.id.localeCompare(b.id));
  $("#camera-count").textContent = `${rows.length} cameras`;
  $("#cameras tbody").replaceChildren(...rows.map((c) => el("tr", { "data-camera-id": c.id },
    el("td", {}, c.name), el("td", {}, c.district), el("td", {}, c.kind),
    el("td", {}, el("span", { class: `health ${c.health_state}` }, c.health_state)))));
  drawMap(rows);
}

function drawMap(cams) {
  const svg = $("#map");
  if (!cams.length) return;
  const lats = cams.map((c) => c.latitude), lons = cams.map((c) => c.longitude);
  const [minLat, maxLat, minLon, maxLon] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const pad = 30, w = 600 - 2 * pad, h = 420 - 2 * pad;
  const sx = (lon) => pad + ((lon - minLon) / (maxLon - minLon || 1)) * w;
  const sy = (lat) => pad + (1 - (lat - minLat) / (maxLat - minLat || 1)) * h;
  const ns = "http://www.w3.org/2000/svg";
  const nodes = [];
  const districts = new Map();
  for (const c of cams) {
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("cx", sx(c.longitude)); dot.setAttribute("cy", sy(c.latitude)); dot.setAttribute("r", 5);
    dot.setAttribute("class", `cam ${c.kind} ${c.health_state}`);
    const title = document.createElementNS(ns, "title"); title.textContent = `${c.name} (${c.health_state})`;
    dot.append(title); nodes.push(dot);
    if (!districts.has(c.district)) districts.set(c.district, c);
  }
  for (const [name, c] of districts) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", sx(c.longitude) + 7); label.setAttribute("y", sy(c.latitude) - 7);
    label.textContent = name; nodes.push(label);
  }
  svg.replaceChildren(...nodes);
}

function connectLive() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${proto}://${location.host}/ws/live`);
  ws.onopen = () => { $("#live-status").textContent = "live"; $("#live-status").className = "badge on"; };
  ws.onclose = () => {
    $("#live-status").textContent = "reconnecting"; $("#live-status").className = "badge off";
    setTimeout(connectLive, 2000);
  };
  ws.onmessage = async (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.channel === "alert") {
      const alert = await api(`/api/alerts/${msg.alert_id}`).catch(() => null);
      if (alert) { state.alerts.set(alert.id, alert); renderAlerts(); if (alert.priority === 1) beep(); }
    } else {
      addEvent(msg);
      if (msg.type === "camera_health" && state.cameras.has(msg.camera_id)) {
        const cam = state.cameras.get(msg.camera_id); cam.health_state = msg.state; renderCameras();
      }
    }
  };
}

function beep() {
  try {
    const ctx = new AudioContext(); const osc = ctx.createOscillator();
    osc.frequency.value = 880; osc.connect(ctx.destination); osc.start(); osc.stop(ctx.currentTime + 0.25);
  } catch (_) { /* no audio device */ }
}

async function main() {
  state.me = await api("/api/me");
  $("#whoami").textContent = `${state.me.username} (${state.me.role})`;
  $("#logout").onclick = async () => { await api("/api/logout", { method: "POST" }); location.href = "/login"; };
  for (const c of await api("/api/cameras")) state.cameras.set(c.id, c);
  renderCameras();
  for (const a of await api("/api/alerts?open_only=true")) state.alerts.set(a.id, a);
  renderAlerts();
  connectLive();
}

main().catch((err) => console.error(err));
