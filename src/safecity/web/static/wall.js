// @ts-check
// The video wall: pages of live tiles in a grid (1, 2×2, 3×3, 4×4, 1+5), a tour through the pages,
// cameras dragged from the list onto tiles, layouts saved per operator or shared with a control room.
// Each tile plays the camera's sub-stream (liveplayer.js) and says why when it has no picture.
import { $, api, el, connectLive, when } from "/static/lib.js";
import { LivePlayer, VideoLink, reasonText } from "/static/liveplayer.js";

/** @type {Record<string, number>} */
const TILES = { "1": 1, "2x2": 4, "3x3": 9, "4x4": 16, "1+5": 6 };
/** @type {Record<string, number>} */
const COLS = { "1": 1, "2x2": 2, "3x3": 3, "4x4": 4, "1+5": 3 };
const REMEMBER = "safecity.wall.layout";
// Every tile's video on one socket: a tile switched to another camera starts without a new connection.
const link = new VideoLink();

/**
 * @typedef {{id: string, name: string, district: string, kind: string, health_state: string,
 *   health_detail: string, health_since: string|null, stream_url: string, substream_url: string}} Camera
 * @typedef {{cameraId: string|null, node: HTMLElement, player: LivePlayer|null, reason: HTMLElement,
 *   note: HTMLElement, badge: HTMLElement}} Tile
 * @typedef {{id: number, name: string, owner: string, grid: string, pages: (string|null)[][],
 *   tour_seconds: number|null, room: string|null}} Layout
 */

const state = {
  /** @type {Camera[]} */ cameras: [],
  /** @type {Map<string, Camera>} */ byId: new Map(),
  grid: "4x4",
  /** @type {(string|null)[][]} */ pages: [[]],
  page: 0,
  /** @type {Tile[]} */ tiles: [],
  /** @type {Layout[]} */ layouts: [],
  me: "",
  tourTimer: 0,
};

const at = (/** @type {string|null|undefined} */ iso) => (iso ? when(iso, "time") : "–");

function listed() {
  const find = /** @type {HTMLInputElement} */ ($("#find")).value.trim().toLowerCase();
  const district = /** @type {HTMLSelectElement} */ ($("#district")).value;
  const kind = /** @type {HTMLSelectElement} */ ($("#kind")).value;
  return state.cameras.filter((c) => (!district || c.district === district) && (!kind || c.kind === kind)
    && (!find || [c.id, c.name, c.district].some((v) => v.toLowerCase().includes(find))));
}

function drawList() {
  $("#camera-list").replaceChildren(...listed().map((c) => el("li", {
    draggable: "true", "data-camera-id": c.id, title: `${c.name} · ${c.kind} · ${c.health_state.replaceAll("_", " ")}`,
    ondragstart: (/** @type {DragEvent} */ e) => { e.dataTransfer?.setData("text/camera", c.id); },
  }, el("span", { class: `dot ${c.health_state}` }), el("span", { class: "name" }, c.name),
  el("span", { class: "muted small" }, c.kind),
  el("a", { class: "play", href: `/live/${encodeURIComponent(c.id)}`, title: `open ${c.name} live` }, "▶"))));
}

/** Cuts a list of camera ids into pages of the grid's size (at least one page). */
function paginate(/** @type {(string|null)[]} */ ids, /** @type {string} */ grid) {
  const size = TILES[grid];
  const pages = [];
  for (let i = 0; i < ids.length; i += size) pages.push(ids.slice(i, i + size));
  if (!pages.length) pages.push([]);
  return pages.map((p) => [...p, ...Array(size - p.length).fill(null)]);
}

function setGrid(/** @type {string} */ grid) {
  const ids = state.pages.flat().filter((id) => id !== null);
  state.grid = grid;
  state.pages = paginate(ids, grid);
  state.page = Math.min(state.page, state.pages.length - 1);
  /** @type {HTMLSelectElement} */ ($("#grid")).value = grid;
  render();
}

function render() {
  const wall = $("#wall");
  const slots = state.pages[state.page] || [];
  wall.className = `wall${state.grid === "1+5" ? " g-1p5" : ""}`;
  wall.style.setProperty("--cols", String(COLS[state.grid]));
  $("#page-label").textContent = `page ${state.page + 1} of ${state.pages.length}`;
  const keep = state.tiles.length === slots.length;
  const tiles = slots.map((id, i) => {
    const old = state.tiles[i];
    if (keep && old && old.cameraId === id) return old;
    if (old && old.player) old.player.stop();
    return makeTile(id, i);
  });
  for (const old of state.tiles.slice(slots.length)) if (old.player) old.player.stop();
  state.tiles = tiles;
  wall.replaceChildren(...tiles.map((t) => t.node));
}

/** @returns {Tile} */
function makeTile(/** @type {string|null} */ id, /** @type {number} */ slot) {
  const cam = id ? state.byId.get(id) : undefined;
  const screen = el("div", { class: "screen" });
  const reason = el("div", { class: "reason" }, id ? (cam ? "connecting…" : `camera ${id} is not registered`) : "drop a camera here");
  const note = el("div", { class: "note", hidden: true });
  const badge = el("span", { class: `health ${cam ? cam.health_state : ""}` }, cam ? cam.health_state.replaceAll("_", " ") : "");
  const caption = el("figcaption", {},
    el("span", { class: "title" }, cam ? `${cam.name} · ${cam.district}` : id || "empty"), badge,
    id ? el("a", { href: `/live/${encodeURIComponent(id)}`, title: "open this camera's view" }, "▶") : "",
    id ? el("button", { type: "button", class: "clear", title: "empty this tile", onclick: () => assign(slot, null) }, "×") : "");
  const node = el("figure", { class: "tile", "data-slot": slot, "data-camera-id": id || "" }, screen, reason, note, caption);
  node.addEventListener("dragover", (e) => { e.preventDefault(); node.classList.add("drop"); });
  node.addEventListener("dragleave", () => node.classList.remove("drop"));
  node.addEventListener("drop", (e) => {
    e.preventDefault();
    node.classList.remove("drop");
    const dropped = e.dataTransfer?.getData("text/camera");
    if (dropped) assign(slot, dropped);
  });
  if (id) node.addEventListener("dblclick", () => { window.location.href = `/live/${encodeURIComponent(id)}`; });
  /** @type {Tile} */
  const tile = { cameraId: id, node, player: null, reason, note, badge };
  if (id && cam) {
    tile.player = new LivePlayer(screen, { cameraId: id, variant: "sub", link, onState: (s) => onTileState(tile, s) });
    tile.player.start();
  }
  return tile;
}

function showBadge(/** @type {Tile} */ tile, /** @type {string} */ health) {
  tile.badge.className = `health ${health}`;
  tile.badge.textContent = health.replaceAll("_", " ");
}

/** What a tile shows over (or instead of) its picture. */
function onTileState(/** @type {Tile} */ tile, /** @type {import("/static/liveplayer.js").LiveState} */ s) {
  const playing = tile.node.querySelector(".screen")?.getAttribute("data-playing");
  if (s.state === "playing" || s.state === "picture") {
    tile.reason.hidden = true;
    return;
  }
  if (s.state === "connecting") {
    if (s.health_state) showBadge(tile, s.health_state);
    tile.reason.textContent = "connecting…";
    return;
  }
  if (s.health) {
    showBadge(tile, s.state);
    const cam = tile.cameraId ? state.byId.get(tile.cameraId) : undefined;
    if (cam) cam.health_state = s.state;
    if (s.state === "online") { tile.note.hidden = true; return; }
    const text = `${s.state.replaceAll("_", " ")} since ${at(new Date().toISOString())}${s.detail ? ` — ${s.detail}` : ""}`;
    tile.note.textContent = text;
    tile.note.hidden = false;
    if (playing !== "yes" && playing !== "picture") { tile.reason.textContent = text; tile.reason.hidden = false; }
    return;
  }
  const text = reasonText(s, at);
  if (s.state === "unplayable") {
    tile.note.textContent = text;
    tile.note.hidden = false;
    if (playing === "picture") return;
  }
  tile.reason.textContent = text;
  tile.reason.hidden = false;
}

function assign(/** @type {number} */ slot, /** @type {string|null} */ id) {
  state.pages[state.page][slot] = id;
  render();
}

function fill() {
  state.pages = paginate(listed().map((c) => c.id), state.grid);
  state.page = 0;
  render();
}

function tour() {
  window.clearInterval(state.tourTimer);
  const on = /** @type {HTMLInputElement} */ ($("#tour")).checked;
  const seconds = Math.max(5, Number(/** @type {HTMLInputElement} */ ($("#tour-seconds")).value) || 20);
  if (on) {
    state.tourTimer = window.setInterval(() => {
      if (document.hidden || state.pages.length < 2) return;
      state.page = (state.page + 1) % state.pages.length;
      render();
    }, seconds * 1000);
  }
}

function drawLayouts(/** @type {string} */ chosen = "") {
  const options = state.layouts.map((l, i) => el("option", { value: String(i) },
    l.room ? `${l.room}: ${l.name}${l.owner === state.me ? "" : ` (${l.owner})`}` : l.name));
  $("#layouts").replaceChildren(el("option", { value: "" }, "(not saved)"), ...options);
  const index = state.layouts.findIndex((l) => `${l.owner}/${l.name}` === chosen);
  /** @type {HTMLSelectElement} */ ($("#layouts")).value = index >= 0 ? String(index) : "";
}

function applyLayout(/** @type {Layout} */ layout) {
  state.grid = layout.grid;
  state.pages = layout.pages.length ? layout.pages.map((p) => [...p]) : paginate([], layout.grid);
  state.page = 0;
  /** @type {HTMLSelectElement} */ ($("#grid")).value = layout.grid;
  /** @type {HTMLInputElement} */ ($("#layout-name")).value = layout.name;
  /** @type {HTMLInputElement} */ ($("#layout-room")).value = layout.room || "";
  /** @type {HTMLInputElement} */ ($("#tour")).checked = layout.tour_seconds !== null;
  if (layout.tour_seconds) /** @type {HTMLInputElement} */ ($("#tour-seconds")).value = String(layout.tour_seconds);
  localStorage.setItem(REMEMBER, `${layout.owner}/${layout.name}`);
  tour();
  render();
}

async function loadLayouts(/** @type {string} */ chosen) {
  state.layouts = await api("/api/wall/layouts");
  drawLayouts(chosen);
}

async function save() {
  const name = /** @type {HTMLInputElement} */ ($("#layout-name")).value.trim();
  const status = $("#wall-status");
  if (!name) { status.textContent = "give the layout a name first"; return; }
  const room = /** @type {HTMLInputElement} */ ($("#layout-room")).value.trim() || null;
  const touring = /** @type {HTMLInputElement} */ ($("#tour")).checked;
  const body = { grid: state.grid, pages: state.pages, room,
    tour_seconds: touring ? Number(/** @type {HTMLInputElement} */ ($("#tour-seconds")).value) : null };
  try {
    const saved = await api(`/api/wall/layouts/${encodeURIComponent(name)}`, { method: "PUT", body: JSON.stringify(body) });
    localStorage.setItem(REMEMBER, `${saved.owner}/${saved.name}`);
    await loadLayouts(`${saved.owner}/${saved.name}`);
    status.textContent = room ? `saved and shared with ${room}` : "saved";
  } catch (err) { status.textContent = String(/** @type {Error} */ (err).message); }
}

async function remove() {
  const name = /** @type {HTMLInputElement} */ ($("#layout-name")).value.trim();
  const status = $("#wall-status");
  try {
    await api(`/api/wall/layouts/${encodeURIComponent(name)}`, { method: "DELETE" });
    localStorage.removeItem(REMEMBER);
    await loadLayouts("");
    status.textContent = `layout ${name} removed`;
  } catch (err) { status.textContent = String(/** @type {Error} */ (err).message); }
}

function onLive(/** @type {any} */ msg) {
  if (msg.type !== "camera_health") return;
  const cam = state.byId.get(msg.camera_id);
  if (!cam) return;
  cam.health_state = msg.state;
  cam.health_detail = msg.detail || "";
  cam.health_since = msg.since || msg.at || null;
  for (const tile of state.tiles) if (tile.cameraId === msg.camera_id) showBadge(tile, msg.state);
  const dot = document.querySelector(`#camera-list li[data-camera-id="${CSS.escape(msg.camera_id)}"] .dot`);
  if (dot) dot.className = `dot ${msg.state}`;
}

async function main() {
  const [cameras, who] = await Promise.all([api("/api/cameras?limit=20000"), api("/api/ui/me")]);
  state.me = who.username;
  // Cameras with a stream first: an operator fills a wall with pictures, not with "no stream" tiles.
  state.cameras = cameras.sort((/** @type {Camera} */ a, /** @type {Camera} */ b) =>
    Number(!a.stream_url) - Number(!b.stream_url) || a.district.localeCompare(b.district) || a.name.localeCompare(b.name));
  state.byId = new Map(state.cameras.map((c) => [c.id, c]));
  const districts = [...new Set(state.cameras.map((c) => c.district))].sort();
  $("#district").append(...districts.map((d) => el("option", {}, d)));
  for (const id of ["#find", "#district", "#kind"]) $(id).addEventListener("input", drawList);
  $("#grid").addEventListener("change", (e) => setGrid(/** @type {HTMLSelectElement} */ (e.target).value));
  $("#prev").addEventListener("click", () => { state.page = (state.page - 1 + state.pages.length) % state.pages.length; render(); });
  $("#next").addEventListener("click", () => { state.page = (state.page + 1) % state.pages.length; render(); });
  $("#add-page").addEventListener("click", () => { state.pages.push(Array(TILES[state.grid]).fill(null)); state.page = state.pages.length - 1; render(); });
  $("#tour").addEventListener("change", tour);
  $("#tour-seconds").addEventListener("change", tour);
  $("#fill").addEventListener("click", fill);
  $("#save").addEventListener("click", save);
  $("#delete").addEventListener("click", remove);
  $("#layouts").addEventListener("change", (e) => {
    const index = /** @type {HTMLSelectElement} */ (e.target).value;
    if (index !== "") applyLayout(state.layouts[Number(index)]);
  });
  drawList();
  const remembered = localStorage.getItem(REMEMBER) || "";
  await loadLayouts(remembered);
  const layout = state.layouts.find((l) => `${l.owner}/${l.name}` === remembered);
  if (layout) applyLayout(layout); else fill();
  connectLive(onLive);
  document.body.dataset.ready = "yes";
}

main().catch((err) => console.error(err));
