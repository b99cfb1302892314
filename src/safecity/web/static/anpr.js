// The /plates page: plate-history search with a map and a timeline, hot-list upkeep, sensitive areas.
// Plain DOM and the console's city map (Leaflet, served by this server): nothing beyond it (air-gapped centres).

const root = document.getElementById("anpr");
const canSearch = root.dataset.canSearch === "yes";
const canWrite = root.dataset.canWrite === "yes";
import { send, when as at, fromZoneInput } from "/static/lib.js";
import { cityBase } from "/static/citymap.js";

const L = globalThis.L;

const SVG = "http://www.w3.org/2000/svg"; // XML namespace name, not a link: nothing is fetched from it

async function api(url, options = {}) {
  const response = await send(url, options);
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.detail || `request failed (${response.status})`);
    error.hint = body.hint || "";
    throw error;
  }
  return body;
}

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function when(iso) {
  return iso ? at(iso, "seconds") : "";
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell ?? "";
    tr.append(td);
  }
  return tr;
}

function say(id, text, isError = false) {
  const node = document.getElementById(id);
  node.textContent = text;
  node.classList.toggle("error", isError);
}

// --- search -------------------------------------------------------------------------------------

const palette = ["#3fa7ff", "#ff9f43", "#37c978", "#c77dff", "#f5d547", "#ff4d4f", "#5ee7df", "#b8b8b8"];

let trailMap = null;  // the plate's cameras on the city map, made at the first search

/** The cameras that read the plate (a dot per camera, larger for more reads) and the route between them. */
function drawMap(cameras, reads) {
  const node = document.getElementById("anpr-map");
  const placed = cameras.filter((c) => c.latitude !== null && c.longitude !== null);
  document.getElementById("anpr-map-note").textContent = placed.length ? "" : "no camera positions to show";
  if (!trailMap) trailMap = { ...cityBase(node), layer: null };
  trailMap.layer?.remove();
  const layer = L.featureGroup().addTo(trailMap.map);
  trailMap.layer = layer;
  const position = new Map(placed.map((c) => [c.camera_id, [c.latitude, c.longitude]]));
  const path = [...reads].reverse().map((r) => position.get(r.camera_id)).filter(Boolean);
  if (path.length > 1) L.polyline(path, { className: "route", interactive: false }).addTo(layer);
  placed.forEach((camera, i) => {
    const colour = palette[i % palette.length];
    const detail = `${camera.name || camera.camera_id}: ${camera.reads} read(s), ${when(camera.first_at)} – ${when(camera.last_at)}`;
    L.circleMarker([camera.latitude, camera.longitude], { className: "anpr-camera", radius: 5 + Math.min(10, camera.reads * 1.5),
      color: "#000", weight: 1, fillColor: colour, fillOpacity: 0.9 })
      .bindTooltip(el("span", camera.name || camera.camera_id, { title: detail }),
        { permanent: true, direction: "right", offset: [8, 0], className: "anpr-label", interactive: true })
      .addTo(layer);
  });
  if (placed.length) {
    const fit = () => trailMap.map.fitBounds(layer.getBounds().pad(0.2), { maxZoom: 16 });
    fit();
    trailMap.ready.then(fit);
  }
}

function drawTimeline(cameras, reads) {
  const line = document.getElementById("anpr-timeline");
  line.replaceChildren();
  if (!reads.length) return;
  const colour = new Map(cameras.map((c, i) => [c.camera_id, palette[i % palette.length]]));
  const times = reads.map((r) => Date.parse(r.at));
  const [first, last] = [Math.min(...times), Math.max(...times)];
  const width = Math.max(last - first, 60000);
  const x = (t) => 20 + ((t - first) / width) * 560;
  line.append(svg("line", { x1: 20, x2: 580, y1: 45, y2: 45, class: "axis" }));
  line.append(svg("text", { x: 20, y: 80 }, when(first)));
  line.append(svg("text", { x: 580, y: 80, "text-anchor": "end" }, when(last)));
  reads.forEach((r) => {
    const dot = svg("circle", { cx: x(Date.parse(r.at)), cy: 45, r: 6, fill: colour.get(r.camera_id) || "#888" });
    dot.append(svg("title", {}, `${r.plate} at ${r.camera_id} · ${when(r.at)}`));
    line.append(dot);
  });
}

function drawReads(reads) {
  const body = document.querySelector("#anpr-reads tbody");
  body.replaceChildren(
    ...reads.map((r) => {
      const crop = r.crop_ref ? el("img", null, { src: `/media/${r.crop_ref}`, alt: `crop of ${r.plate}`, class: "crop" }) : "";
      return row([when(r.at), r.plate, r.camera_id, `${Math.round(r.confidence * 100)}%`, r.direction, crop]);
    }),
  );
}

function isoOrEmpty(local) {
  return local ? fromZoneInput(local).toISOString() : "";
}

async function search(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const params = new URLSearchParams();
  for (const name of ["plate", "match", "camera_id", "reason"]) if (form.get(name)) params.set(name, form.get(name));
  for (const name of ["since", "until"]) if (form.get(name)) params.set(name, isoOrEmpty(form.get(name)));
  say("search-status", "searching…");
  try {
    const result = await api(`/api/plates/reads?${params}`);
    const more = result.truncated ? " (more matched: narrow the search)" : "";
    say("search-status", `${result.reads.length} read(s) at ${result.cameras.length} camera(s)${more}`);
    drawMap(result.cameras, result.reads);
    drawTimeline(result.cameras, result.reads);
    drawReads(result.reads);
  } catch (error) {
    say("search-status", `${error.message} ${error.hint}`, true);
  }
}

// --- hot lists ----------------------------------------------------------------------------------

let editing = null;

async function loadHotlist() {
  const filter = new FormData(document.getElementById("hotlist-filter"));
  const params = new URLSearchParams();
  for (const name of ["plate", "list_name"]) if (filter.get(name)) params.set(name, filter.get(name));
  try {
    const [entries, summary] = await Promise.all([api(`/api/plates/hotlist?${params}`), api("/api/plates/hotlist/summary")]);
    document.getElementById("hotlist-summary").textContent = Object.entries(summary).map(([k, v]) => `${k} ${v}`).join(" · ");
    const body = document.querySelector("#hotlist tbody");
    body.replaceChildren(
      ...entries.map((entry) => {
        const actions = document.createElement("span");
        if (canWrite) {
          const edit = el("button", "Edit", { class: "link", type: "button" });
          edit.addEventListener("click", () => openEdit(entry));
          const remove = el("button", "Remove", { class: "link", type: "button" });
          remove.addEventListener("click", () => removeEntry(entry));
          actions.append(edit, remove);
        }
        return row([entry.plate, entry.list_name, entry.reason, entry.vehicle, entry.reference, `${entry.updated_by}, ${when(entry.updated_at)}`, actions]);
      }),
    );
  } catch (error) {
    say("hotlist-status", error.message, true);
  }
}

function showErrors(lines) {
  document.getElementById("hotlist-errors").replaceChildren(...lines.map((line) => el("li", line)));
}

async function addEntry(event) {
  event.preventDefault();
  const form = event.target;
  const body = Object.fromEntries(new FormData(form));
  try {
    const entry = await api("/api/plates/hotlist", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    say("hotlist-status", `${entry.plate} added to the ${entry.list_name} list`);
    form.reset();
    showErrors([]);
    loadHotlist();
  } catch (error) {
    say("hotlist-status", `${error.message} ${error.hint}`, true);
  }
}

async function importCsv(event) {
  event.preventDefault();
  const form = event.target;
  const data = new FormData();
  data.append("file", form.file.files[0]);
  try {
    const report = await api(`/api/plates/hotlist/import?upsert=${form.upsert.checked}`, { method: "POST", body: data });
    say("hotlist-status", `imported: ${report.created} new, ${report.updated} updated`);
    showErrors([]);
    form.reset();
    loadHotlist();
  } catch (error) {
    say("hotlist-status", "nothing was imported; fix these lines:", true);
    // The API answers "N problem(s); nothing was imported: line 3: …; line 7: …".
    const marker = "nothing was imported: ";
    const at = error.message.indexOf(marker);
    showErrors(at >= 0 ? error.message.slice(at + marker.length).split("; ") : [error.message]);
  }
}

function openEdit(entry) {
  editing = entry;
  const dialog = document.getElementById("hotlist-edit");
  const form = dialog.querySelector("form");
  document.getElementById("edit-plate").textContent = entry.plate;
  form.list_name.value = entry.list_name;
  form.reason.value = entry.reason;
  form.vehicle.value = entry.vehicle;
  form.reference.value = entry.reference;
  form.why.value = "";
  dialog.showModal();
}

async function saveEdit() {
  const dialog = document.getElementById("hotlist-edit");
  if (dialog.returnValue !== "save" || !editing) return;
  const body = Object.fromEntries(new FormData(dialog.querySelector("form")));
  try {
    await api(`/api/plates/hotlist/${editing.id}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    say("hotlist-status", `${editing.plate} changed`);
    loadHotlist();
  } catch (error) {
    say("hotlist-status", `${error.message} ${error.hint}`, true);
  }
}

async function removeEntry(entry) {
  const why = window.prompt(`Why take ${entry.plate} off the ${entry.list_name} list? (audited)`);
  if (!why) return;
  try {
    await api(`/api/plates/hotlist/${entry.id}?${new URLSearchParams({ why })}`, { method: "DELETE" });
    say("hotlist-status", `${entry.plate} removed from the ${entry.list_name} list`);
    loadHotlist();
  } catch (error) {
    say("hotlist-status", `${error.message} ${error.hint}`, true);
  }
}

// --- sensitive areas ----------------------------------------------------------------------------

async function loadAreas() {
  try {
    const areas = await api("/api/plates/areas");
    const names = new Map(areas.map((a) => [a.id, a.name]));
    document.querySelector("#areas tbody").replaceChildren(
      ...areas.map((a) => {
        const rules = [a.alert_on_entry && "entry", a.alert_on_exit && "exit", a.alert_unlisted && "every vehicle"].filter(Boolean);
        return row([a.name, a.mode, a.camera_ids.join(", "), a.exit_camera_ids.join(", "), rules.join(", ") || "log only"]);
      }),
    );
    const visits = await api("/api/plates/visits?open_only=true&limit=200");
    document.querySelector("#visits tbody").replaceChildren(
      ...visits.map((v) => row([v.plate, names.get(v.area_id) || v.area_id, v.lists.join(", "), when(v.entered_at), when(v.last_seen_at)])),
    );
  } catch (error) {
    say("hotlist-status", error.message, true);
  }
}

if (canSearch) document.getElementById("plate-search").addEventListener("submit", search);
document.getElementById("hotlist-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  loadHotlist();
});
if (canWrite) {
  document.getElementById("hotlist-add").addEventListener("submit", addEntry);
  document.getElementById("hotlist-import").addEventListener("submit", importCsv);
}
document.getElementById("hotlist-edit").addEventListener("close", saveEdit);
loadHotlist();
loadAreas();
