// The video wall: a page of camera tiles, each picture refreshed from the worker's latest snapshot,
// with a health badge kept live from /ws/live. Only the tiles on screen fetch pictures.
import { $, api, el, connectLive } from "/static/lib.js";

const REFRESH_MS = 1500;
const state = { cameras: [], page: 0, tiles: new Map() };

function filtered() {
  const district = $("#district").value, kind = $("#kind").value;
  return state.cameras.filter((c) => (!district || c.district === district) && (!kind || c.kind === kind));
}

function render() {
  const per = Number($("#per-page").value);
  const cams = filtered();
  const pages = Math.max(1, Math.ceil(cams.length / per));
  state.page = Math.min(state.page, pages - 1);
  $("#page-label").textContent = `page ${state.page + 1} of ${pages} · ${cams.length} cameras`;
  const wall = $("#wall");
  wall.style.setProperty("--cols", Math.ceil(Math.sqrt(per)));
  state.tiles.clear();
  wall.replaceChildren(...cams.slice(state.page * per, (state.page + 1) * per).map((c) => {
    const img = el("img", { alt: `live picture of ${c.name}`, hidden: true });
    const none = el("div", { class: "no-picture" }, "no picture");
    img.onload = () => { img.hidden = false; none.hidden = true; };
    img.onerror = () => { img.hidden = true; none.hidden = false; };
    const badge = el("span", { class: `health ${c.health_state}` }, c.health_state.replace("_", " "));
    const tile = el("figure", { class: "tile", "data-camera-id": c.id }, img, none,
      el("figcaption", {}, el("span", {}, `${c.name} · ${c.district}`), badge));
    state.tiles.set(c.id, { img, badge });
    return tile;
  }));
  refreshPictures();
}

function refreshPictures() {
  const now = Date.now();
  for (const [id, { img }] of state.tiles) img.src = `/api/cameras/${encodeURIComponent(id)}/snapshot?t=${now}`;
}

function onLive(msg) {
  if (msg.type !== "camera_health") return;
  const cam = state.cameras.find((c) => c.id === msg.camera_id);
  if (cam) cam.health_state = msg.state;
  const tile = state.tiles.get(msg.camera_id);
  if (tile) { tile.badge.className = `health ${msg.state}`; tile.badge.textContent = msg.state.replace("_", " "); }
}

async function main() {
  state.cameras = (await api("/api/cameras")).sort((a, b) => a.district.localeCompare(b.district) || a.name.localeCompare(b.name));
  const districts = [...new Set(state.cameras.map((c) => c.district))].sort();
  $("#district").append(...districts.map((d) => el("option", {}, d)));
  for (const id of ["#district", "#kind", "#per-page"]) $(id).onchange = () => { state.page = 0; render(); };
  $("#prev").onclick = () => { state.page = Math.max(0, state.page - 1); render(); };
  $("#next").onclick = () => { state.page += 1; render(); };
  render();
  setInterval(() => { if (!document.hidden) refreshPictures(); }, REFRESH_MS);
  connectLive(onLive);
  document.body.dataset.ready = "yes";
}

main().catch((err) => console.error(err));
