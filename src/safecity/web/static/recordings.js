// The recordings page: several cameras played side by side at the same moment (fragmented MP4, which
// the browser plays natively), a timeline per camera with recorded spans, gaps and events, search
// across the city, and audited exports. No player library: <video src> and fetch only.
import { when, fromZoneInput, toZoneInput } from "/static/lib.js";

const API = "/api/recordings";
const WINDOW_MS = 30 * 60 * 1000;  // the timeline shows half an hour either side of the moment
const CLOSE_S = 0.05;  // near enough to the moment asked for
const MAX_RATE = 16;  // how fast a tile plays on to the moment asked for
const tiles = new Map();

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, text = "") => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
};
// The date-time fields and the labels are in the display zone, whatever the browser's own zone is.
const toIso = (local) => fromZoneInput(local).toISOString();
const toLocal = (date) => toZoneInput(date);
const clock = (date) => when(date, "seconds");

async function getJson(url, options = {}) {
  // The page's CSRF token goes with every request: the server refuses a change without it.
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const answer = await fetch(url, { credentials: "same-origin", ...options,
    headers: { "X-CSRF-Token": csrf, ...(options.headers || {}) } });
  const body = answer.headers.get("content-type")?.includes("json") ? await answer.json() : {};
  if (!answer.ok) {
    const error = new Error(body.detail || `request failed (${answer.status})`);
    error.hint = body.hint || "";
    error.status = answer.status;
    throw error;
  }
  return body;
}

function tileFor(cameraId) {
  if (tiles.has(cameraId)) return tiles.get(cameraId);
  const root = el("article", { class: "rec-tile", "data-camera": cameraId });
  const header = el("header");
  header.append(el("strong", {}, cameraId), el("span", { class: "rec-clock" }, "—"));
  const video = el("video", { muted: "", playsinline: "", controls: "", preload: "auto" });
  video.muted = true;
  const timeline = el("div", { class: "rec-timeline", title: "Click to play from that moment" });
  const legend = el("div", { class: "rec-legend" });
  const msg = el("p", { class: "rec-msg", role: "status" });
  root.append(header, video, timeline, legend, msg);
  $("#rec-tiles").append(root);
  const tile = { cameraId, root, video, timeline, legend, msg, clockEl: $(".rec-clock", header),
                 origin: null, spans: [], windowStart: 0, windowEnd: 0, token: 0, catching: false };
  video.addEventListener("timeupdate", () => showClock(tile));
  video.addEventListener("playing", () => { if (!tile.catching) root.dataset.state = "playing"; });
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

function wallTime(tile) {
  return tile.origin ? new Date(tile.origin.getTime() + tile.video.currentTime * 1000) : null;
}

function showClock(tile) {
  const now = wallTime(tile);
  if (!now) return;
  tile.clockEl.textContent = clock(now);
  tile.root.dataset.wall = now.toISOString();
  const cursor = $(".cursor", tile.timeline);
  if (cursor) cursor.style.left = `${percent(tile, now.getTime())}%`;
}

function percent(tile, ms) {
  const span = tile.windowEnd - tile.windowStart;
  return Math.max(0, Math.min(100, (ms - tile.windowStart) / span * 100));
}

async function drawTimeline(tile, at) {
  tile.windowStart = at.getTime() - WINDOW_MS;
  tile.windowEnd = at.getTime() + WINDOW_MS;
  const params = new URLSearchParams({ start: new Date(tile.windowStart).toISOString(),
                                       end: new Date(tile.windowEnd).toISOString() });
  const data = await getJson(`${API}/cameras/${encodeURIComponent(tile.cameraId)}/timeline?${params}`);
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

const seekable = (video, s) => [...Array(video.seekable.length).keys()]
  .some((i) => video.seekable.start(i) <= s && s <= video.seekable.end(i));

/** Takes a tile from the key-frame its stream starts at to `offset` seconds into it. The footage is sent
 * as it is read from the disk, so the browser finds no seekable range in it and setting currentTime does
 * nothing: where it cannot seek, the tile plays fast until it gets there (as the body-worn item page's
 * fixed camera does), then at normal speed. */
function reach(tile, offset, token) {
  if (token !== tile.token) return;  // the metadata of a stream loaded since
  const video = tile.video;
  if (offset > CLOSE_S && seekable(video, offset)) video.currentTime = offset;
  const step = () => {
    if (token !== tile.token) return;  // the tile was sent to another moment meanwhile
    const behind = offset - video.currentTime;
    if (behind <= CLOSE_S) {
      tile.catching = false;
      video.playbackRate = video.defaultPlaybackRate;
      tile.root.dataset.state = video.paused ? "paused" : "playing";
      showClock(tile);
      return;
    }
    tile.catching = true;
    tile.root.dataset.state = "catching";
    video.playbackRate = Math.min(MAX_RATE, Math.max(1.5, behind * 2));
    requestAnimationFrame(step);
  };
  video.play().catch(() => {});
  step();
}

async function playAt(tile, at) {
  const token = ++tile.token;
  tile.msg.textContent = "";
  tile.catching = false;
  tile.root.dataset.state = "loading";
  try {
    const params = new URLSearchParams({ at: at.toISOString() });
    const where = await getJson(`${API}/cameras/${encodeURIComponent(tile.cameraId)}/locate?${params}`);
    if (token !== tile.token) return;
    tile.origin = new Date(where.origin);
    tile.video.src = where.url;
    tile.video.addEventListener("loadedmetadata", () => reach(tile, where.offset_seconds, token), { once: true });
  } catch (error) {
    if (token !== tile.token) return;
    tile.origin = null;
    tile.video.removeAttribute("src");
    tile.root.dataset.state = "none";
    tile.msg.textContent = `${error.message}${error.hint ? ` — ${error.hint}` : ""}`;
  }
}

function playNextSpan(tile) {
  const now = wallTime(tile);
  if (!now) return;
  const next = tile.spans.find(([start]) => start > now.getTime() + 500);
  if (next) playAt(tile, new Date(next[0]));
  else tile.msg.textContent = "end of the recorded footage in this window";
}

async function playAll(at) {
  const chosen = [...$("#rec-cameras").selectedOptions].map((o) => o.value);
  if (!chosen.length) {
    $("#rec-status").textContent = "pick one or more cameras";
    return;
  }
  for (const [id, tile] of tiles) {
    if (!chosen.includes(id)) { tile.root.remove(); tiles.delete(id); }
  }
  $("#rec-at").value = toLocal(at);
  $("#rec-status").textContent = `playing ${chosen.length} camera(s) from ${clock(at)}`;
  await Promise.all(chosen.map(async (id) => {
    const tile = tileFor(id);
    try { await drawTimeline(tile, at); } catch (error) { tile.msg.textContent = error.message; }
    await playAt(tile, at);
  }));
}

async function loadCameras() {
  try {
    const cameras = await getJson("/api/cameras");
    const select = $("#rec-cameras");
    for (const cam of cameras) select.append(el("option", { value: cam.id }, `${cam.id} — ${cam.name}`));
  } catch (error) {
    $("#rec-status").textContent = error.message;
  }
}

async function loadStates() {
  try {
    const [volumes, recorders] = await Promise.all([getJson(`${API}/volumes`), getJson(`${API}/recorders`)]);
    const gib = (n) => (n == null ? "—" : `${(n / 2 ** 30).toFixed(1)} GiB`);
    $("#rec-volumes tbody").replaceChildren(...volumes.map((v) => {
      const row = el("tr");
      row.append(el("td", {}, v.name), el("td", {}, v.state), el("td", {}, gib(v.used_bytes)),
                 el("td", {}, gib(v.free_bytes)));
      return row;
    }));
    $("#rec-recorders tbody").replaceChildren(...recorders.map((r) => {
      const row = el("tr", { title: r.detail });
      row.append(el("td", {}, r.camera_id), el("td", {}, r.state), el("td", {}, clock(new Date(r.since))));
      return row;
    }));
  } catch (error) {
    $("#rec-volumes tbody").replaceChildren(el("tr", {}, error.message));
  }
}

$("#rec-pick").addEventListener("submit", (event) => {
  event.preventDefault();
  playAll(fromZoneInput($("#rec-at").value));
});
$("#rec-pause").addEventListener("click", () => tiles.forEach((t) => t.video.pause()));
$("#rec-resume").addEventListener("click", () => tiles.forEach((t) => t.video.play().catch(() => {})));

$("#rec-search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const params = new URLSearchParams({ start: toIso(form.get("start")), end: toIso(form.get("end")) });
  if (form.get("district")) params.set("district", form.get("district"));
  if (form.get("bbox")) params.set("bbox", form.get("bbox"));
  const status = $("#rec-search-status");
  try {
    const hits = await getJson(`${API}/search?${params}`);
    status.textContent = `${hits.length} camera(s) recorded there`;
    $("#rec-hits tbody").replaceChildren(...hits.map((hit) => {
      const row = el("tr");
      const add = el("button", { type: "button", class: "link" }, "play");
      add.addEventListener("click", () => {
        const option = [...$("#rec-cameras").options].find((o) => o.value === hit.camera_id);
        if (option) option.selected = true;
        playAll(new Date(hit.recorded[0].start));
      });
      const cell = el("td");
      cell.append(add);
      row.append(el("td", {}, `${hit.camera_id} — ${hit.name}`), el("td", {}, hit.district),
                 el("td", {}, `${Math.round(hit.recorded_seconds)} s`), cell);
      return row;
    }));
  } catch (error) {
    status.textContent = `${error.message}${error.hint ? ` — ${error.hint}` : ""}`;
  }
});

$("#rec-export").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = {
    cameras: form.get("cameras").split(",").map((s) => s.trim()).filter(Boolean),
    start: toIso(form.get("start")), end: toIso(form.get("end")), reason: form.get("reason"),
  };
  const status = $("#rec-export-status");
  status.textContent = "exporting…";
  try {
    const manifest = await getJson(`${API}/exports`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    status.textContent = `export ${manifest.id}: ${manifest.files.length} file(s)`;
    const items = manifest.files.map((f) => {
      const li = el("li");
      li.append(el("a", { href: `/media/${f.media_ref}`, download: f.name }, f.name),
                el("span", { class: "muted" }, ` sha256 ${f.sha256.slice(0, 16)}…`));
      return li;
    });
    const li = el("li");
    li.append(el("a", { href: `/media/${manifest.manifest_ref}`, download: "manifest.json" }, "manifest.json"));
    $("#rec-export-files").replaceChildren(...items, li);
  } catch (error) {
    status.textContent = `${error.message}${error.hint ? ` — ${error.hint}` : ""}`;
  }
});

$("#rec-at").value = toLocal(new Date(Date.now() - 5 * 60 * 1000));
loadCameras().then(() => {
  const wanted = new URLSearchParams(location.search);
  if (wanted.get("camera") && wanted.get("at")) {
    for (const id of wanted.get("camera").split(",")) {
      const option = [...$("#rec-cameras").options].find((o) => o.value === id);
      if (option) option.selected = true;
    }
    playAll(new Date(wanted.get("at")));
  }
});
loadStates();
