// The maintenance page: every camera's state and uptime, open faults with their evidence frames,
// tickets (open, assign, close with a note) and a camera's health history drawn as an SVG timeline
// (one row per local day, coloured by state) beside its daily uptime bars. No chart library.
import { $, api, el, svg, connectLive, when as at } from "/static/lib.js";

const API = "/api/maintenance";
const root = $("#maintenance");
const CAN_ACT = root.dataset.canAct === "yes";
const COLOURS = {
  online: "#37c978", reconnecting: "#f5d547", offline: "#ff4d4f", frozen: "#c0392b", covered: "#8e44ad",
  out_of_focus: "#ff9f43", too_dark: "#34495e", moved: "#e67e22", low_fps: "#3fa7ff",
  degraded: "#ff9f43",
};
const words = (state) => (state || "").replaceAll("_", " ");
const pct = (share) => (share == null ? "–" : `${(share * 100).toFixed(1)}%`);
const when = (iso) => at(iso, "short");
const lasted = (iso) => {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  return s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
};

let cameras = [];
let team = [];
let selected = null;

function badge(state, detail) {
  return el("span", { class: `health ${state}`, title: detail || "" }, words(state));
}

/** Draws the cameras the filters let through (filtered here: the page already holds every camera). */
function showCameras() {
  const form = new FormData($("#mnt-filters"));
  const [district, state, faulty] = [form.get("district"), form.get("state"), form.get("faulty")];
  drawCameras(cameras.filter((c) => (!district || c.district === district) && (!state || c.state === state) &&
    (!faulty || !["online", "unknown"].includes(c.state))));
}

function drawCameras(rows) {
  const body = $("#mnt-camera-table tbody");
  body.replaceChildren(...rows.map((c) => el("tr", { "data-camera": c.camera_id },
    el("td", {}, el("strong", {}, c.name), el("div", { class: "muted small" }, c.camera_id)),
    el("td", {}, c.district),
    el("td", {}, badge(c.state, c.detail), c.detail && c.state !== "online" ? el("div", { class: "small" }, c.detail) : ""),
    el("td", {}, when(c.since)),
    el("td", { class: c.uptime_today != null && c.uptime_today < 0.9 ? "bad" : "" }, pct(c.uptime_today)),
    el("td", {}, pct(c.uptime_7d)),
    el("td", {}, c.open_tickets || ""),
    el("td", {}, el("button", { type: "button", class: "link", onclick: () => showHistory(c.camera_id) }, "History")))));
  $("#mnt-status").textContent = `${rows.length} camera(s)`;
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No camera matches.")));
}

function fillCameraChoices() {
  const districts = [...new Set(cameras.map((c) => c.district))].sort();
  const pick = $("#mnt-district");
  const current = pick.value;
  pick.replaceChildren(el("option", { value: "" }, "all"), ...districts.map((d) => el("option", { value: d }, d)));
  pick.value = current;
  const target = $("#mnt-new-camera");
  if (target) {
    const chosen = target.value;
    target.replaceChildren(...cameras.map((c) => el("option", { value: c.camera_id }, `${c.name} (${c.camera_id})`)));
    if (chosen) target.value = chosen;
  }
}

/** City figures from every camera's seconds online and watched (one request serves table and summary). */
function drawSummary() {
  const sum = (key) => cameras.reduce((total, c) => total + c[key], 0);
  const share = (online, known) => (known > 0 ? online / known : null);
  $("#mnt-uptime-today").textContent = pct(share(sum("online_today_s"), sum("known_today_s")));
  $("#mnt-uptime-week").textContent = pct(share(sum("online_7d_s"), sum("known_7d_s")));
}

async function loadFaults() {
  const faults = await api(`${API}/faults?open=true`);
  $("#mnt-faulty").textContent = String(faults.length);
  const names = Object.fromEntries(cameras.map((c) => [c.camera_id, c.name]));
  const list = $("#mnt-fault-list");
  list.replaceChildren(...faults.map((f) => el("figure", { class: "mnt-fault", "data-fault": f.id },
    f.frame_ref ? el("img", { src: `/media/${f.frame_ref}`, alt: `Evidence: ${words(f.state)}`, loading: "lazy" })
      : el("div", { class: "mnt-no-frame muted" }, "no picture"),
    el("figcaption", {},
      el("strong", {}, names[f.camera_id] || f.camera_id), " ", badge(f.state, f.detail),
      el("div", { class: "small" }, f.detail),
      el("div", { class: "muted small" }, `since ${when(f.started_at)} (${lasted(f.outage_since)} down)`),
      f.open_ticket_id ? el("a", { href: ticketHref(f.open_ticket_id), class: "mnt-open-ticket", onclick: (ev) => {
        ev.preventDefault(); focusTicket(f.open_ticket_id);
      } }, `Ticket open: ${f.open_ticket_id}`)
        : CAN_ACT ? el("button", { type: "button", class: "secondary", onclick: () => ticketFromFault(f) }, "Open ticket") : "",
      el("button", { type: "button", class: "link", onclick: () => showHistory(f.camera_id) }, "History")))));
  if (!faults.length) list.append(el("p", { class: "muted" }, "No open faults: every reporting camera is online."));
}

/** Fills the new-ticket form with a fault's camera and words; the user completes it and opens the ticket. */
function ticketFromFault(fault) {
  const form = $("#mnt-new-ticket");
  form.elements.camera_id.value = fault.camera_id;
  form.elements.fault_id.value = fault.id;
  form.elements.description.value = `${words(fault.state)}: ${fault.detail || "check the camera"}`;
  form.scrollIntoView({ block: "nearest" });
  form.elements.description.focus();
}

const ticketHref = (id) => `/maintenance?ticket=${encodeURIComponent(id)}`;

/** Scrolls to a ticket's card and marks it (the link a fault or a refused duplicate gives). */
function focusTicket(id) {
  const card = document.querySelector(`[data-ticket="${CSS.escape(id)}"]`);
  document.querySelectorAll(".mnt-ticket.focus").forEach((c) => c.classList.remove("focus"));
  if (!card) return;
  card.classList.add("focus");
  card.scrollIntoView({ block: "nearest" });
}

/** Runs a ticket action, says how it went, refreshes the page; returns whether it succeeded. */
async function act(call, done) {
  const status = $("#mnt-ticket-status");
  let message = done;
  let other = null;
  try {
    await call();
  } catch (err) {
    message = err.message;
    other = err.data?.ticket_id || null;
  }
  await refresh();
  // Said after the refresh, so the words stay beside the redrawn tickets they are about.
  status.replaceChildren(message);
  if (other) {
    status.append(" ", el("a", { href: ticketHref(other), onclick: (ev) => { ev.preventDefault(); focusTicket(other); } },
      `Go to ticket ${other}`));
    focusTicket(other);
  }
  status.classList.toggle("error", message !== done);
  return message === done;
}

async function loadTickets() {
  const which = $("#mnt-ticket-filter").value;
  const query = which === "open" ? "?open=true" : which === "closed" ? "?status=closed" : "";
  const tickets = await api(`${API}/tickets${query}`);
  const open = which === "open" ? tickets : await api(`${API}/tickets?open=true`);
  $("#mnt-open-tickets").textContent = String(open.length);
  const names = Object.fromEntries(cameras.map((c) => [c.camera_id, c.name]));
  const list = $("#mnt-ticket-list");
  list.replaceChildren(...tickets.map((t) => ticketCard(t, names)));
  if (!tickets.length) list.append(el("p", { class: "muted" }, "No tickets."));
}

function ticketCard(t, names) {
  const card = el("article", { class: `mnt-ticket ${t.status}`, "data-ticket": t.id },
    el("header", {}, el("strong", {}, names[t.camera_id] || t.camera_id),
      el("span", { class: "badge" }, t.status), t.assignee ? el("span", { class: "muted" }, `→ ${t.assignee}`) : "",
      el("span", { class: "muted small" }, `ticket ${t.id} · opened ${when(t.opened_at)} by ${t.opened_by}`)),
    el("p", {}, t.description));
  if (t.status === "closed") {
    card.append(el("p", { class: "small" }, el("em", {}, `Closed ${when(t.closed_at)} by ${t.closed_by}: `), t.close_note));
  } else if (CAN_ACT) {
    const who = el("select", { name: "assignee", "aria-label": "Assign to" },
      ...team.map((u) => el("option", { value: u.username }, u.full_name ? `${u.full_name} (${u.username})` : u.username)));
    if (t.assignee) who.value = t.assignee;
    const note = el("input", { name: "note", placeholder: "what was found and done", maxlength: 2000, "aria-label": "Closing note" });
    card.append(el("div", { class: "mnt-ticket-actions" },
      who, el("button", { type: "button", class: "secondary assign", onclick: () => act(() => api(`${API}/tickets/${t.id}/assign`,
        { method: "POST", body: JSON.stringify({ assignee: who.value, version: t.version }) }), `Assigned to ${who.value}.`) }, "Assign"),
      note, el("button", { type: "button", class: "close", onclick: () => act(() => api(`${API}/tickets/${t.id}/close`,
        { method: "POST", body: JSON.stringify({ note: note.value, version: t.version }) }), "Ticket closed.") }, "Close")));
  }
  const steps = el("details", {}, el("summary", { class: "muted small" }, "History"));
  steps.addEventListener("toggle", async () => {
    if (!steps.open || steps.dataset.loaded) return;
    const detail = await api(`${API}/tickets/${t.id}`);
    steps.dataset.loaded = "yes";
    steps.append(el("ol", { class: "small" }, ...detail.actions.map((a) => el("li", {},
      `${when(a.at)} · ${a.actor} · ${a.action}`, a.detail.assignee ? ` → ${a.detail.assignee}` : "", a.note ? `: ${a.note}` : ""))));
  });
  card.append(steps);
  return card;
}

async function showHistory(cameraId) {
  selected = cameraId;
  const history = await api(`${API}/cameras/${encodeURIComponent(cameraId)}/history?days=7`);
  $("#mnt-history").hidden = false;
  $("#mnt-history-name").textContent = `${history.name} (${cameraId})`;
  drawTimeline(history);
  $("#mnt-history").scrollIntoView({ block: "nearest" });
}

/** One row per local day: coloured spans across 24 hours, then that day's uptime as a bar. */
function drawTimeline(history) {
  const [left, chartW, gap, barW, rowH, top] = [50, 600, 36, 120, 22, 20];
  const width = left + chartW + gap + barW + 50;
  const height = top + history.days.length * rowH + 10;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "mnt-timeline",
    "aria-label": `Health of ${history.name} over ${history.days.length} days` });
  for (const hour of [0, 6, 12, 18, 24]) {
    const x = left + (hour / 24) * chartW;
    chart.append(svg("line", { x1: x, x2: x, y1: top - 4, y2: height - 8, class: "axis" }),
      svg("text", { x, y: top - 8, class: "axis-label", "text-anchor": "middle" }, `${String(hour).padStart(2, "0")}:00`));
  }
  chart.append(svg("text", { x: left + chartW + gap, y: top - 8, class: "axis-label" }, "uptime"));
  const now = new Date(history.end).getTime();
  history.days.forEach((day, i) => {
    const y = top + i * rowH;
    const [start, end] = [new Date(day.start).getTime(), new Date(day.end).getTime()];
    chart.append(svg("text", { x: left - 8, y: y + 14, class: "axis-label", "text-anchor": "end" }, day.day.slice(5)),
      svg("rect", { x: left, y: y + 3, width: chartW, height: rowH - 6, class: "mnt-unknown" }));
    for (const span of history.spans) {
      const from = Math.max(start, new Date(span.since).getTime());
      const to = Math.min(end, span.until ? new Date(span.until).getTime() : now);
      if (to <= from) continue;
      const rect = svg("rect", { x: left + ((from - start) / (end - start)) * chartW, y: y + 3,
        width: Math.max(1, ((to - from) / (end - start)) * chartW), height: rowH - 6,
        fill: COLOURS[span.state] || "#888", class: `span ${span.state}`, "data-state": span.state });
      rect.append(svg("title", {}, `${words(span.state)} ${when(span.since)} – ${span.until ? when(span.until) : "now"}` +
        (span.detail ? `: ${span.detail}` : "")));
      chart.append(rect);
    }
    const barX = left + chartW + gap;
    chart.append(svg("rect", { x: barX, y: y + 4, width: barW, height: rowH - 8, class: "mnt-bar-bg" }));
    if (day.uptime != null) {
      chart.append(svg("rect", { x: barX, y: y + 4, width: day.uptime * barW, height: rowH - 8,
        class: `mnt-bar ${day.uptime < 0.9 ? "low" : ""}`, "data-day": day.day }));
    }
    chart.append(svg("text", { x: barX + barW + 6, y: y + 14, class: "axis-label" }, pct(day.uptime)));
  });
  $("#mnt-chart").replaceChildren(chart);
  const seen = [...new Set(history.spans.map((s) => s.state))];
  $("#mnt-legend").replaceChildren(...seen.map((s) => el("span", {},
    el("i", { class: "mnt-swatch", style: `background:${COLOURS[s] || "#888"}` }), words(s))));
}

async function refresh() {
  try {
    cameras = await api(`${API}/cameras`);
    fillCameraChoices();
    showCameras();
    drawSummary();
    await Promise.all([loadFaults(), loadTickets()]);
    if (selected) await showHistory(selected);
  } catch (err) {
    $("#mnt-status").textContent = err.message;
  }
}

let pending = null;
function refreshSoon() {
  clearTimeout(pending);
  pending = setTimeout(refresh, 1000);
}

async function start() {
  if (CAN_ACT) team = await api(`${API}/team`).catch(() => []);
  $("#mnt-filters").addEventListener("change", showCameras);
  $("#mnt-ticket-filter").addEventListener("change", () => loadTickets());
  const form = $("#mnt-new-ticket");
  if (form) {
    form.elements.camera_id.addEventListener("change", () => { form.elements.fault_id.value = ""; });
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const data = Object.fromEntries(new FormData(form));
      if (!data.fault_id) delete data.fault_id;
      act(() => api(`${API}/tickets`, { method: "POST", body: JSON.stringify(data) }), "Ticket opened.")
        .then((ok) => {
          if (!ok) return;
          form.elements.description.value = "";
          form.elements.fault_id.value = "";  // a hidden field keeps its value through reset()
        });
    });
  }
  await refresh();
  const wanted = new URLSearchParams(location.search).get("ticket");
  if (wanted) focusTicket(wanted);
  // Health changes and closed fault alerts arrive live; a minute's timer keeps "since" and uptime fresh.
  connectLive((msg) => {
    if (msg.type === "camera_health" || (msg.type === "alert" && msg.kind === "camera_fault")) refreshSoon();
  }, null);
  setInterval(refresh, 60_000);
}

start();
