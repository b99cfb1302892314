// @ts-check
// The recordings page: several cameras played side by side at the same moment (fragmented MP4, which
// the browser plays natively), a timeline per camera with recorded spans, gaps and events, search
// across the city, and audited exports. No player library: <video src> and fetch only.
import { $, api, el, when, fromZoneInput, toZoneInput } from "/static/lib.js";
import { CatchUp } from "/static/catchup.js";

/**
 * What the recordings API answers (src/safecity/recordings/api.py).
 * @typedef {{start: string, end: string}} Span
 * @typedef {{recorded: Span[], events: {kind: string, reason: string, ref: string, start: string}[],
 *   recorder: string|null, oldest: string|null}} Timeline
 * @typedef {{url: string, origin: string, offset_seconds: number}} Located
 * @typedef {{id: string, name: string}} Camera
 * @typedef {{name: string, state: string, used_bytes: number|null, free_bytes: number|null}} Volume
 * @typedef {{camera_id: string, state: string, detail: string, since: string}} RecorderState
 * @typedef {{camera_id: string, name: string, district: string, recorded_seconds: number, recorded: Span[]}} SearchHit
 * @typedef {{id: string, manifest_ref: string, files: {name: string, media_ref: string, sha256: string}[]}} Manifest
 */
/**
 * One camera's tile: its player, its timeline (`windowStart`–`windowEnd`, epoch ms) and the wall-clock
 * moment its stream starts at (`origin`). `token` is bumped by every moment asked, so an answer for an
 * earlier one is dropped.
 * @typedef {{cameraId: string, root: HTMLElement, video: HTMLVideoElement, timeline: HTMLElement,
 *   legend: HTMLElement, msg: HTMLElement, clockEl: HTMLElement, origin: Date|null, spans: [number, number][],
 *   windowStart: number, windowEnd: number, token: number, catchUp: CatchUp}} Tile
 */

const API = "/api/recordings";
const WINDOW_MS = 30 * 60 * 1000;  // the timeline shows half an hour either side of the moment
/** @type {Map<string, Tile>} */
const tiles = new Map();

// The page's elements (every one is in the template), typed as what they are.
const input = (/** @type {string} */ sel) => /** @type {HTMLInputElement} */ ($(sel));
const cameraSelect = () => /** @type {HTMLSelectElement} */ ($("#rec-cameras"));
// The date-time fields and the labels are in the display zone, whatever the browser's own zone is.
const clock = (/** @type {Date} */ date) => when(date, "seconds");
const message = (/** @type {unknown} */ error) => (error instanceof Error ? error.message : String(error));

/**
 * A date-time field's value as UTC ISO; a field the browser lets through empty or malformed is refused
 * with what to type.
 * @param {FormData} form @param {string} name @param {string} label
 */
function isoField(form, name, label) {
  const moment = fromZoneInput(String(form.get(name) ?? ""));
  if (!moment) throw new Error(`${label}: type a date and time, e.g. 2025-12-19 09:30:00`);
  return moment.toISOString();
}

/** @param {string} cameraId @returns {Tile} */
function tileFor(cameraId) {
  const known = tiles.get(cameraId);
  if (known) return known;
  const clockEl = el("span", { class: "rec-clock" }, "—");
  const video = /** @type {HTMLVideoElement} */ (el("video", { muted: true, playsinline: true, controls: true,
                                                               preload: "auto" }));
  video.muted = true;
  const timeline = el("div", { class: "rec-timeline", title: "Click to play from that moment" });
  const legend = el("div", { class: "rec-legend" });
  const msg = el("p", { class: "rec-msg", role: "status" });
  const root = el("article", { class: "rec-tile", "data-camera": cameraId },
                  el("header", {}, el("strong", {}, cameraId), clockEl), video, timeline, legend, msg);
  $("#rec-tiles").append(root);
  /** @type {Tile} */
  const tile = { cameraId, root, video, timeline, legend, msg, clockEl, origin: null, spans: [], windowStart: 0,
                 windowEnd: 0, token: 0, catchUp: new CatchUp(video, (state) => {
                   root.dataset.state = state;
                   if (state !== "catching") showClock(tile);
                 }) };
  video.addEventListener("timeupdate", () => showClock(tile));
  video.addEventListener("playing", () => { if (!tile.catchUp.catching) root.dataset.state = "playing"; });
  video.addEventListener("ended", () => playNextSpan(tile));
  video.addEventListener("error", () => { tile.msg.textContent = "the browser could not play this footage"; });
  timeline.addEventListener("click", (event) => {
    const box = timeline.getBoundingClientRect();
    const ms = tile.windowStart + (event.clientX - box.left) / box.width * (tile.windowEnd - tile.windowStart);
    playAll(new Date(ms));
  });
  tiles.set(cameraId, tile);
  return tile;
}

/** The wall-clock moment the tile shows; null before its footage is found. @param {Tile} tile */
function wallTime(tile) {
  return tile.origin ? new Date(tile.origin.getTime() + tile.video.currentTime * 1000) : null;
}

/** @param {Tile} tile */
function showClock(tile) {
  const now = wallTime(tile);
  if (!now) return;
  tile.clockEl.textContent = clock(now);
  tile.root.dataset.wall = now.toISOString();
  const cursor = /** @type {HTMLElement|null} */ ($(".cursor", tile.timeline));
  if (cursor) cursor.style.left = `${percent(tile, now.getTime())}%`;
}

/** Where epoch `ms` falls on the tile's timeline, 0–100. @param {Tile} tile @param {number} ms */
function percent(tile, ms) {
  const span = tile.windowEnd - tile.windowStart;
  return Math.max(0, Math.min(100, (ms - tile.windowStart) / span * 100));
}

/** @param {Tile} tile @param {Date} at */
async function drawTimeline(tile, at) {
  tile.windowStart = at.getTime() - WINDOW_MS;
  tile.windowEnd = at.getTime() + WINDOW_MS;
  const params = new URLSearchParams({ start: new Date(tile.windowStart).toISOString(),
                                       end: new Date(tile.windowEnd).toISOString() });
  /** @type {Timeline} */
  const data = await api(`${API}/cameras/${encodeURIComponent(tile.cameraId)}/timeline?${params}`);
  tile.spans = data.recorded.map((s) => [Date.parse(s.start), Date.parse(s.end)]);
  tile.timeline.replaceChildren();
  for (const [start, end] of tile.spans) {
    const bar = el("div", { class: "span", title: `recorded ${clock(new Date(start))} – ${clock(new Date(end))}` });
    bar.style.left = `${percent(tile, start)}%`;
    bar.style.width = `${Math.max(0.3, percent(tile, end) - percent(tile, start))}%`;
    tile.timeline.append(bar);
  }
  for (const event of data.events) {
    const mark = el("div", { class: `event ${event.kind}`, title: `${event.reason} (${event.ref})` });
    mark.style.left = `${percent(tile, Date.parse(event.start))}%`;
    tile.timeline.append(mark);
  }
  tile.timeline.append(el("div", { class: "cursor" }));
  const recorder = data.recorder ? `recorder: ${data.recorder}` : "";
  const oldest = data.oldest ? `oldest kept: ${clock(new Date(data.oldest))}` : "nothing kept";
  tile.legend.replaceChildren(el("span", {}, clock(new Date(tile.windowStart))),
                              el("span", {}, `${oldest} ${recorder}`),
                              el("span", {}, clock(new Date(tile.windowEnd))));
}

/** Plays the tile's footage from `at`: the stream starts at the key-frame before it, and catchup.js plays
 * fast from there to the very moment (the browser cannot seek in a stream sent as it is read).
 * @param {Tile} tile @param {Date} at */
async function playAt(tile, at) {
  const token = ++tile.token;
  tile.catchUp.cancel();
  tile.msg.textContent = "";
  tile.root.dataset.state = "loading";
  try {
    const params = new URLSearchParams({ at: at.toISOString() });
    /** @type {Located} */
    const where = await api(`${API}/cameras/${encodeURIComponent(tile.cameraId)}/locate?${params}`);
    if (token !== tile.token) return;
    tile.origin = new Date(where.origin);
    tile.video.src = where.url;
    tile.video.addEventListener("loadedmetadata", () => {
      if (token === tile.token) tile.catchUp.to(where.offset_seconds);  // else a stream loaded since
    }, { once: true });
  } catch (error) {
    if (token !== tile.token) return;
    tile.origin = null;
    tile.video.removeAttribute("src");
    tile.root.dataset.state = "none";
    tile.msg.textContent = message(error);
  }
}

/** @param {Tile} tile */
function playNextSpan(tile) {
  const now = wallTime(tile);
  if (!now) return;
  const next = tile.spans.find(([start]) => start > now.getTime() + 500);
  if (next) playAt(tile, new Date(next[0]));
  else tile.msg.textContent = "end of the recorded footage in this window";
}

/** Plays every chosen camera from `at`, side by side; drops the tiles of cameras no longer chosen.
 * @param {Date} at */
async function playAll(at) {
  const chosen = [...cameraSelect().selectedOptions].map((o) => o.value);
  if (!chosen.length) {
    $("#rec-status").textContent = "pick one or more cameras";
    return;
  }
  for (const [id, tile] of tiles) {
    if (!chosen.includes(id)) { tile.catchUp.cancel(); tile.root.remove(); tiles.delete(id); }
  }
  input("#rec-at").value = toZoneInput(at);
  $("#rec-status").textContent = `playing ${chosen.length} camera(s) from ${clock(at)}`;
  await Promise.all(chosen.map(async (id) => {
    const tile = tileFor(id);
    try { await drawTimeline(tile, at); } catch (error) { tile.msg.textContent = message(error); }
    await playAt(tile, at);
  }));
}

async function loadCameras() {
  try {
    /** @type {Camera[]} */
    const cameras = await api("/api/cameras");
    cameraSelect().append(...cameras.map((cam) => el("option", { value: cam.id }, `${cam.id} — ${cam.name}`)));
  } catch (error) {
    $("#rec-status").textContent = message(error);
  }
}

async function loadStates() {
  try {
    /** @type {[Volume[], RecorderState[]]} */
    const [volumes, recorders] = await Promise.all([api(`${API}/volumes`), api(`${API}/recorders`)]);
    const gib = (/** @type {number|null} */ n) => (n == null ? "—" : `${(n / 2 ** 30).toFixed(1)} GiB`);
    $("#rec-volumes tbody").replaceChildren(...volumes.map((v) => el("tr", {},
      el("td", {}, v.name), el("td", {}, v.state), el("td", {}, gib(v.used_bytes)), el("td", {}, gib(v.free_bytes)))));
    $("#rec-recorders tbody").replaceChildren(...recorders.map((r) => el("tr", { title: r.detail },
      el("td", {}, r.camera_id), el("td", {}, r.state), el("td", {}, clock(new Date(r.since))))));
  } catch (error) {
    $("#rec-volumes tbody").replaceChildren(el("tr", {}, message(error)));
  }
}

$("#rec-pick").addEventListener("submit", (event) => {
  event.preventDefault();
  const at = fromZoneInput(input("#rec-at").value);
  if (at) playAll(at);
  else $("#rec-status").textContent = "At: type a date and time, e.g. 2025-12-19 09:30:00";
});
$("#rec-pause").addEventListener("click", () => tiles.forEach((t) => t.video.pause()));
$("#rec-resume").addEventListener("click", () => tiles.forEach((t) => t.video.play().catch(() => {})));

$("#rec-search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(/** @type {HTMLFormElement} */ (event.target));
  const answer = $("#rec-search-status");
  try {
    const params = new URLSearchParams({ start: isoField(form, "start", "From"), end: isoField(form, "end", "To") });
    for (const name of ["district", "bbox"]) if (form.get(name)) params.set(name, String(form.get(name)));
    /** @type {SearchHit[]} */
    const hits = await api(`${API}/search?${params}`);
    answer.textContent = `${hits.length} camera(s) recorded there`;
    $("#rec-hits tbody").replaceChildren(...hits.map((hit) => el("tr", {},
      el("td", {}, `${hit.camera_id} — ${hit.name}`), el("td", {}, hit.district),
      el("td", {}, `${Math.round(hit.recorded_seconds)} s`),
      el("td", {}, el("button", { type: "button", class: "link", onclick: () => {
        const option = [...cameraSelect().options].find((o) => o.value === hit.camera_id);
        if (option) option.selected = true;
        playAll(new Date(hit.recorded[0].start));
      } }, "play")))));
  } catch (error) {
    answer.textContent = message(error);
  }
});

$("#rec-export").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(/** @type {HTMLFormElement} */ (event.target));
  const answer = $("#rec-export-status");
  try {
    const body = {
      cameras: String(form.get("cameras") ?? "").split(",").map((s) => s.trim()).filter(Boolean),
      start: isoField(form, "start", "From"), end: isoField(form, "end", "To"), reason: form.get("reason"),
    };
    answer.textContent = "exporting…";
    /** @type {Manifest} */
    const manifest = await api(`${API}/exports`, { method: "POST", body: JSON.stringify(body) });
    answer.textContent = `export ${manifest.id}: ${manifest.files.length} file(s)`;
    $("#rec-export-files").replaceChildren(...manifest.files.map((f) => el("li", {},
      el("a", { href: `/media/${f.media_ref}`, download: f.name }, f.name),
      el("span", { class: "muted" }, ` sha256 ${f.sha256.slice(0, 16)}…`))),
    el("li", {}, el("a", { href: `/media/${manifest.manifest_ref}`, download: "manifest.json" }, "manifest.json")));
  } catch (error) {
    answer.textContent = message(error);
  }
});

input("#rec-at").value = toZoneInput(new Date(Date.now() - 5 * 60 * 1000));
loadCameras().then(() => {
  // A link to a moment: /recordings?camera=cam-1,cam-2&at=2025-12-19T04:30:00Z
  const wanted = new URLSearchParams(location.search);
  const cameras = wanted.get("camera"), at = wanted.get("at");
  if (!cameras || !at) return;
  for (const id of cameras.split(",")) {
    const option = [...cameraSelect().options].find((o) => o.value === id);
    if (option) option.selected = true;
  }
  const moment = new Date(at);
  if (Number.isNaN(moment.getTime())) {
    $("#rec-status").textContent = `the link's at=${at} is not a moment: give an ISO time, e.g. 2025-12-19T04:30:00Z`;
  } else {
    playAll(moment);
  }
});
loadStates();
