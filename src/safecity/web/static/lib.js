// @ts-check
// Shared helpers of the command-centre pages: API calls, DOM building, times, the live feed (the city map
// is citymap.js).

/**
 * The first element under `root` that `sel` selects: an HTML element of the page's template (cast it to
 * say which: an <input>, a <video>).
 * @param {string} sel @param {ParentNode} [root]
 */
export const $ = (sel, root = document) => /** @type {HTMLElement} */ (root.querySelector(sel));

/** The content of the page's <meta name="…">; "" where the page has none. @param {string} name */
const meta = (name) => /** @type {HTMLMetaElement|null} */ (document.querySelector(`meta[name="${name}"]`))?.content || "";

/** The page's CSRF token (its <meta name="csrf-token">): the server refuses a change without it. */
export const csrfToken = () => meta("csrf-token");

/**
 * fetch() on this server: same-origin cookies and the CSRF token (every page's changes go through here).
 * @param {string} path @param {RequestInit} [options]
 */
export function send(path, options = {}) {
  return fetch(path, { credentials: "same-origin", ...options,
    headers: { "X-CSRF-Token": csrfToken(), ...(options.headers || {}) } });
}

/** What api() throws for a refused request: the server's message (with its hint), the HTTP status and the
 * error's own fields (`data`: a 422 names each field in data.fields, a 409 the ticket it names). */
export class ApiError extends Error {
  /** @param {string} message @param {number} status @param {any} data */
  constructor(message, status, data) {
    super(message);
    this.status = status;
    this.data = data;
  }
}

/**
 * Calls the API: the answer's JSON (null for 204); sign-in when the session ended; an ApiError otherwise.
 * @param {string} path @param {RequestInit} [options]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}) {
  const json = typeof options.body === "string" ? { "Content-Type": "application/json" } : {};
  const res = await send(path, { ...options, headers: { ...json, ...(options.headers || {}) } });
  if (res.status === 401) { window.location.href = "/login"; throw new Error("signed out"); }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    throw new ApiError((data && (data.detail + (data.hint ? " — " + data.hint : ""))) || res.statusText, res.status, data);
  }
  return data;
}

/**
 * A new element: `attrs` set as attributes (`class`, `style` through the CSSOM, `on…` as listeners; true
 * as an empty attribute, false/null/undefined left out), `children` appended (nodes, or text).
 * @param {string} tag @param {Record<string, any>} [attrs] @param {...any} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "style") node.style.cssText = v;  // through the CSSOM: the CSP refuses style attributes
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

/** The zone every time on a page is shown in: the server's display_timezone (the API speaks UTC). */
export const displayZone = () => meta("display-timezone") || "UTC";

const STYLES = {
  datetime: { day: "2-digit", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" },
  seconds: { day: "2-digit", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
    timeZoneName: "short" },
  date: { day: "2-digit", month: "short", year: "numeric" },
  time: { hour: "2-digit", minute: "2-digit", second: "2-digit" },
  short: { day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit" },
  hour: { hour: "2-digit" },
};
const formatters = new Map();
function formatter(style) {
  const key = `${displayZone()}|${style}`;
  if (!formatters.has(key)) {
    formatters.set(key, new Intl.DateTimeFormat("en-GB", { timeZone: displayZone(), hourCycle: "h23", ...STYLES[style] }));
  }
  return formatters.get(key);
}

/**
 * The one way a page shows a moment to people: in the display zone, "19 Dec 2025, 14:05 GMT+5".
 * Styles: datetime (default), seconds, date ("19 Dec 2025"), time ("14:05:09"), short ("19 Dec, 14:05"),
 * hour ("14"). Takes an ISO string, a Date or milliseconds; "–" for none.
 */
export function when(moment, style = "datetime") {
  if (moment === null || moment === undefined || moment === "") return "–";
  const date = moment instanceof Date ? moment : new Date(moment);
  return Number.isNaN(date.getTime()) ? "–" : formatter(style).format(date);
}

export const time = (iso) => (iso ? when(iso, "time") : "");

/** Milliseconds the display zone's wall clock is ahead of UTC at instant `ms`. */
function zoneOffset(ms) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", { timeZone: displayZone(), hourCycle: "h23",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
    .formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return wall - (ms - (ms % 1000));
}

/** A date-time input's value ("2025-12-19T14:05") read as wall-clock time in the display zone. */
export function fromZoneInput(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value || "");
  if (!m) return null;
  const guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  const first = guess - zoneOffset(guess);
  return new Date(guess - zoneOffset(first));  // again at the answer: right across a clock change
}

/** A moment as a date-time input's value, in the display zone ("2025-12-19T14:05:09"). */
export function toZoneInput(moment) {
  const ms = moment instanceof Date ? moment.getTime() : new Date(moment).getTime();
  return new Date(ms + zoneOffset(ms)).toISOString().slice(0, 19);
}
export const minutes = (s) => (s == null ? "–" : s < 90 ? `${Math.round(s)} s` : `${(s / 60).toFixed(1)} min`);

/** The signed-in user with role and permissions (fetched once per page). */
let mePromise = null;
export function me() {
  mePromise = mePromise || api("/api/ui/me");
  return mePromise;
}
export const can = (who, permission) => who.permissions.includes(permission);

const NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Adds where an alert happened (its evidence's lat/lon, else its camera's) for the map. */
export function placeAlert(alert, cameras) {
  const ev = alert.evidence || {};
  if (typeof ev.lat === "number" && typeof ev.lon === "number") return { ...alert, lat: ev.lat, lon: ev.lon };
  const cam = cameras.get(alert.camera_id);
  return cam ? { ...alert, lat: cam.latitude, lon: cam.longitude } : alert;
}

/**
 * Opens /ws/live with a one-use ticket (POST /api/live/ticket) and calls `onMessage` with each message;
 * reconnects after a drop with a new ticket, goes to sign-in when the session ended, reloads when the
 * role changed.
 */
export function connectLive(onMessage, badge = $("#live-status")) {
  const down = () => { if (badge) { badge.textContent = "reconnecting"; badge.className = "badge off"; } };
  const again = () => setTimeout(() => connectLive(onMessage, badge), 2000);
  api("/api/live/ticket", { method: "POST" }).then(({ ticket }) => {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws/live?ticket=${encodeURIComponent(ticket)}`);
    ws.onopen = () => { if (badge) { badge.textContent = "live"; badge.className = "badge on"; } };
    ws.onclose = (ev) => {
      down();
      if (ev.code === 4401) window.location.href = "/login";
      else if (ev.code === 4403) window.location.reload();
      else again();
    };
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  }).catch((err) => { down(); if (err.status !== 403) again(); });
}

/** Merges a live alert message into the alert the page already has (no extra request). */
export function alertFromMessage(msg, known) {
  return { ...(known || { created_at: msg.at, occurrences: 1, evidence: {}, detail: {} }), id: msg.alert_id,
    kind: msg.kind, priority: msg.priority, status: msg.status, title: msg.title, camera_id: msg.camera_id,
    updated_at: msg.at, escalated_at: msg.escalated ? (known?.escalated_at || msg.at) : known?.escalated_at || null };
}

let audio = null;
/** A short two-tone alarm for priority-1 alerts (silent where the browser has no audio device). */
export function alarm() {
  try {
    audio = audio || new AudioContext();
    for (const [i, f] of [[0, 880], [1, 660]]) {
      const osc = audio.createOscillator(); const gain = audio.createGain();
      gain.gain.value = 0.15; osc.frequency.value = f; osc.connect(gain); gain.connect(audio.destination);
      osc.start(audio.currentTime + i * 0.2); osc.stop(audio.currentTime + i * 0.2 + 0.18);
    }
    document.body.dataset.lastAlarm = String(Date.now());
  } catch (_) { /* no audio device */ }
}
