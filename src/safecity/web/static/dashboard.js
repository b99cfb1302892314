// The dashboard: alerts per hour by type, challans per day, camera health, response times and false
// alarms, drawn as plain SVG (no charting library, nothing fetched from outside the centre).
import { $, api, el, svg, minutes, when } from "/static/lib.js";

const COLORS = ["#3fa7ff", "#ff9f43", "#c77dff", "#37c978", "#ff4d4f", "#f5d547", "#4dd0e1", "#a1887f"];
const HEALTH_COLORS = { online: "#37c978", reconnecting: "#f5d547", offline: "#ff4d4f", frozen: "#ff4d4f",
  covered: "#ff4d4f", out_of_focus: "#ff9f43", too_dark: "#ff9f43", moved: "#ff9f43", low_fps: "#f5d547", degraded: "#ff9f43", unknown: "#667" };

/** Stacked bar chart: `labels` along x, `series` {name: [values]} stacked per label. */
function bars(node, labels, series, { every = 1 } = {}) {
  const [W, H, L, B] = [640, 220, 34, 22];
  const names = Object.keys(series);
  const totals = labels.map((_, i) => names.reduce((s, n) => s + series[n][i], 0));
  const max = Math.max(1, ...totals);
  const bw = (W - L) / labels.length;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H + 24}`, class: "bars", role: "img" });
  for (const t of [0, 0.5, 1]) {
    const y = H - B - t * (H - B - 10);
    root.append(svg("line", { x1: L, x2: W, y1: y, y2: y, class: "grid" }),
      svg("text", { x: L - 4, y: y + 4, class: "axis", "text-anchor": "end" }, Math.round(t * max)));
  }
  labels.forEach((label, i) => {
    let y = H - B;
    names.forEach((n, k) => {
      const h = (series[n][i] / max) * (H - B - 10);
      if (h > 0) {
        const r = svg("rect", { x: L + i * bw + 1, y: y - h, width: Math.max(1, bw - 2), height: h, fill: COLORS[k % COLORS.length] });
        r.append(svg("title", {}, `${label}: ${series[n][i]} ${n}`));
        root.append(r);
      }
      y -= h;
    });
    if (i % every === 0) root.append(svg("text", { x: L + i * bw + bw / 2, y: H - 6, class: "axis", "text-anchor": "middle" }, label));
  });
  names.forEach((n, k) => {
    const x = L + k * 120;
    root.append(svg("rect", { x, y: H + 8, width: 10, height: 10, fill: COLORS[k % COLORS.length] }),
      svg("text", { x: x + 14, y: H + 17, class: "axis" }, n.replace("_", " ")));
  });
  node.replaceChildren(root);
}

/** Horizontal bars: [[label, value, colour?], …] with a value label. */
function hbars(node, rows, fmt = (v) => v) {
  const [W, row] = [420, 24];
  const max = Math.max(1, ...rows.map((r) => r[1] || 0));
  const root = svg("svg", { viewBox: `0 0 ${W} ${rows.length * row + 4}`, class: "hbars", role: "img" });
  rows.forEach(([label, value, color], i) => {
    const w = ((value || 0) / max) * (W - 200);
    root.append(svg("text", { x: 0, y: i * row + 16, class: "axis" }, label),
      svg("rect", { x: 130, y: i * row + 4, width: Math.max(1, w), height: 16, fill: color || COLORS[0] }),
      svg("text", { x: 136 + w, y: i * row + 16, class: "axis" }, fmt(value)));
  });
  node.replaceChildren(root);
}

async function alertsPerHour() {
  const data = await api("/api/alerts/stats/hourly?hours=24");
  const labels = data.hours.map((h) => when(h, "hour"));
  const series = Object.keys(data.counts).length ? data.counts : { alerts: labels.map(() => 0) };
  bars($("#chart-alerts"), labels, series, { every: 2 });
}

async function challansPerDay() {
  // Served by the challans domain when it is installed; the chart stays hidden otherwise.
  let data;
  try { data = await api("/api/challans/stats/daily"); } catch (_) { return; }
  const days = Array.isArray(data) ? data : data.days || [];
  if (!days.length) return;
  const labels = days.map((d) => (d.day || d.date || "").slice(5));
  const series = {};
  for (const key of Object.keys(days[0]).filter((k) => typeof days[0][k] === "number")) series[key] = days.map((d) => d[key]);
  bars($("#chart-challans"), labels, series, { every: Math.ceil(labels.length / 10) });
  $("#challans-panel").hidden = false;
}

async function cameraHealth() {
  const cameras = await api("/api/cameras?limit=20000");
  const counts = {};
  for (const c of cameras) counts[c.health_state] = (counts[c.health_state] || 0) + 1;
  const online = counts.online || 0;
  $("#uptime").textContent = cameras.length ? `${Math.round((100 * online) / cameras.length)} % online now` : "no cameras";
  hbars($("#chart-health"), Object.entries(counts).sort((a, b) => b[1] - a[1])
    .map(([s, n]) => [s.replace("_", " "), n, HEALTH_COLORS[s] || "#667"]));
}

async function responseTimes() {
  const [alerts, dispatch] = await Promise.all([api("/api/alerts/stats/response"), api("/api/dispatch/stats").catch(() => null)]);
  const rows = [["alert → decision p50", alerts.p50_s], ["alert → decision p90", alerts.p90_s]];
  for (const [p, s] of Object.entries(alerts.by_priority)) rows.push([`P${p} median`, s]);
  if (dispatch) rows.push(["dispatch → scene p50", dispatch.p50_s, "#ff9f43"], ["dispatch → scene p90", dispatch.p90_s, "#ff9f43"]);
  hbars($("#chart-response"), rows, minutes);
}

async function falseAlarms() {
  const report = await api("/api/alerts/stats/false-alarms?days=7");
  const fill = (sel, rows) => $(sel).querySelector("tbody").replaceChildren(...rows.slice(0, 12).map((r) => el("tr", {},
    el("td", {}, r.key), el("td", {}, r.raised), el("td", {}, r.dismissed), el("td", {}, r.false_alarms),
    el("td", { class: r.false_alarm_rate > 0.3 ? "bad" : "" }, `${Math.round(r.false_alarm_rate * 100)} %`))));
  fill("#fa-camera", report.by_camera);
  fill("#fa-rule", report.by_rule);
}

async function pipeline() {
  // Shown to the roles that watch the system (system:read); the panel stays hidden for the others.
  let state;
  try { state = await api("/api/system/pipeline"); } catch (_) { return; }
  const seconds = (s) => (s == null ? "—" : s < 1 ? `≤ ${Math.round(s * 1000)} ms` : `≤ ${s} s`);
  const rows = Object.entries(state.consumers).map(([name, c]) => el("tr", {},
    el("td", {}, name), el("td", {}, c.handled), el("td", { class: c.waiting > 1000 ? "bad" : "" }, c.waiting ?? "—"),
    el("td", { class: (state.dead_letters[name] || 0) > 0 ? "bad" : "" }, state.dead_letters[name] || 0),
    el("td", {}, seconds(c.p95_s))));
  $("#pipeline-consumers").querySelector("tbody").replaceChildren(...rows);
  const cluster = state.cluster || {};
  const workers = (cluster.workers || []).filter((w) => w.alive !== false);
  $("#pipeline-workers").querySelector("tbody").replaceChildren(...workers.map((w) => el("tr", {},
    el("td", {}, w.id), el("td", {}, w.host), el("td", {}, w.cameras.length),
    el("td", {}, when(w.last_seen, "time")))));
  const unassigned = (cluster.unassigned || []).length;
  $("#pipeline-summary").textContent = [
    `bus ${state.bus}`,
    `${state.outbox_pending} to publish`,
    `${state.dead_letters_total} dead letters`,
    cluster.error ? cluster.error : `${unassigned} camera(s) unassigned · ${cluster.lease_moves ?? 0} lease moves`,
    `jobs: ${state.jobs.leader ? "this process" : "another process"}`,
    state.media
      ? `media ${(state.media.bytes / 2 ** 30).toFixed(2)} GiB in ${state.media.objects} objects, ` +
        `${state.media.open_holds} hold(s); last sweep removed ${state.media.removed}`
      : "media not swept yet",
  ].join(" · ");
  $("#pipeline-panel").hidden = false;
}

Promise.allSettled([alertsPerHour(), challansPerDay(), cameraHealth(), responseTimes(), falseAlarms(), pipeline()])
  .then((results) => {
    results.filter((r) => r.status === "rejected").forEach((r) => console.error(r.reason));
    document.body.dataset.ready = "yes";
  });
