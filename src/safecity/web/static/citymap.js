// The city map of every console page: Leaflet (vendored from npm, served by the app) over the operator's
// tiles file, or over the packaged coast and neighbourhood names where none is given; cameras, units,
// alerts and a sighting trail on top. Vector tiles are drawn by MapLibre GL (vendored too, loaded only
// for them) as a layer inside the Leaflet map. Nothing is fetched from outside this server.
import "/static/vendor/leaflet/leaflet.js";
import { api, el } from "/static/lib.js";

const L = globalThis.L;
const KARACHI = [66.85, 24.75, 67.35, 25.1];  // west, south, east, north: until /api/map answers
const LABELS_FROM_ZOOM = 11;  // further out the city is a blur of names
const MIN_SPAN = 0.01;  // degrees (~1 km): a single camera does not fill the map
// Up to this many cameras each is a link of its own (keyboard, middle-click); past it they are dots on one
// canvas, as a page of 4,000 links spends two seconds on every zoom step (bench/bench_map.py).
const LINKED_CAMERAS = 1500;
const DOT_COLOURS = { fixed: "#37c978", anpr: "#3fa7ff", face: "#c77dff", unhealthy: "#ff4d4f" };
const UNHEALTHY = new Set(["offline", "frozen", "covered", "reconnecting"]);
const liveUrl = (id) => `/live/${encodeURIComponent(id)}`;
const cameraTitle = (c) => `${c.name} · ${c.kind} · ${(c.health_state || "").replace("_", " ")} — click for the live view`;

let described = null;
/** What the server says about its map (one request per page): tiles, base layer, bounds. */
export function mapDescription() {
  described = described || api("/api/map").catch((err) => ({ tiles: null, problem: err.message, base_url: null,
    base_attribution: "", bounds: KARACHI }));
  return described;
}

let base = null;
function baseLayer(url) {
  base = base || fetch(url, { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : null)).catch(() => null);
  return base;
}

const MAPLIBRE = "/static/vendor/maplibre";
let maplibre = null;
/** MapLibre GL and its Leaflet binding (which reads the globals L and maplibregl), loaded once. */
function loadMapLibre() {
  maplibre = maplibre || (async () => {
    const link = document.createElement("link");
    link.rel = "stylesheet"; link.href = `${MAPLIBRE}/maplibre-gl.css`;
    document.head.append(link);
    globalThis.maplibregl = await import(`${MAPLIBRE}/maplibre-gl.mjs`);
    await import(`${MAPLIBRE}/leaflet-maplibre-gl.js`);
  })();
  return maplibre;
}

/** Why this browser cannot draw vector tiles (no WebGL, e.g. a GPU switched off), or null. */
function noWebGL() {
  const canvas = document.createElement("canvas");
  return canvas.getContext("webgl2") || canvas.getContext("webgl") ? null : "this browser has no WebGL";
}

/** Adds the operator's vector tiles, drawn by MapLibre with the server's style; returns why not, or null. */
async function vectorLayer(map, tiles) {
  const missing = noWebGL();
  if (missing) return missing;
  try {
    await loadMapLibre();
    // attributionControl false: the binding would read the credit off the style; it is the file's, as text.
    L.maplibreGL({ style: tiles.style_url, attributionControl: false, minZoom: 0,
      // The style names tiles by path; MapLibre's worker fetches them and needs the page's origin.
      transformRequest: (url) => ({ url: new URL(url, location.href).href }) }).addTo(map);
    map.attributionControl.addAttribution(el("span", {}, tiles.attribution).innerHTML);
    return null;
  } catch (err) {
    return `MapLibre could not start (${err.message})`;
  }
}

const toBounds = ([west, south, east, north]) => L.latLngBounds([south, west], [north, east]);
const placed = (p) => p && typeof p.latitude === "number" && typeof p.longitude === "number";

/** A Leaflet map on `node` with the city's tiles or base layer under it (the caller frames what it shows);
 * `ready` settles when the base is drawn. */
export function cityBase(node) {
  const map = L.map(node, { zoomControl: true, attributionControl: true, minZoom: 3, maxZoom: 19, zoomSnap: 0.5,
    markerZoomAnimation: false });
  map.attributionControl.setPrefix("Leaflet");  // plain text: no link, no flag
  map.fitBounds(toBounds(KARACHI));
  node.classList.add("city-map");
  const labels = () => { node.classList.toggle("far", map.getZoom() < LABELS_FROM_ZOOM); declutter(node); };
  map.on("zoomend moveend", labels); labels();
  // A map drawn inside a closed dialog or a hidden panel has no size yet: take it when it comes.
  new ResizeObserver(() => { map.invalidateSize(); }).observe(node);
  const ready = mapDescription().then(async (d) => {
    const raster = Boolean(d.tiles) && d.tiles.kind !== "vector";
    if (d.tiles && !raster) {
      const problem = await vectorLayer(map, d.tiles);
      if (problem) node.append(el("p", { class: "map-problem", role: "status" },
        `Vector map not drawn: ${problem}; showing the packaged base layer`));
      node.dataset.vector = problem ? "fallback" : "drawn";
    } else if (raster) {
      L.tileLayer(d.tiles.url, { minNativeZoom: d.tiles.minzoom, maxNativeZoom: d.tiles.maxzoom,
        bounds: toBounds(d.tiles.bounds), attribution: el("span", {}, d.tiles.attribution).innerHTML,
        errorTileUrl: "/static/map-blank.png", className: "tiles" }).addTo(map);
    } else if (d.problem) {
      node.append(el("p", { class: "map-problem", role: "status" }, `Map tiles not used: ${d.problem}`));
    }
    const layer = d.base_url ? await baseLayer(d.base_url) : null;
    if (!layer) return map;
    const land = layer.features.filter((f) => f.properties.kind === "land");
    // Under the tiles (their pane is at z-index 200): the coast shows only beyond the operator's tiles.
    map.createPane("land").style.zIndex = "150";
    L.geoJSON(land, { pane: "land", interactive: false, style: { className: "land" },
      attribution: d.base_attribution }).addTo(map);
    if (!raster) {  // raster tiles carry their own names; vector ones are drawn without labels
      for (const f of layer.features.filter((f) => f.properties.kind === "neighbourhood")) {
        const [lon, lat] = f.geometry.coordinates;
        L.marker([lat, lon], { interactive: false, keyboard: false, icon: L.divIcon({ className: "place-label",
          html: el("span", {}, f.properties.name), iconSize: null }) }).addTo(map);
      }
      declutter(node);
    }
    return map;
  });
  return { map, ready };
}

/** Hides each neighbourhood name that would overlap one already shown (the package's order: a city's
 * main areas first). */
function declutter(node) {
  const shown = [];
  for (const label of node.querySelectorAll(".place-label")) {
    label.classList.remove("crowded");
    const box = label.firstElementChild?.getBoundingClientRect();
    if (!box || !box.width) continue;
    const overlaps = shown.some((b) => box.left < b.right + 4 && box.right + 4 > b.left && box.top < b.bottom
      && box.bottom > b.top);
    if (overlaps) label.classList.add("crowded"); else shown.push(box);
  }
}

/** One marker per key, moved or redrawn only when its place or look changed. */
class Markers {
  constructor(map, zIndexOffset) { this.map = map; this.z = zIndexOffset; this.known = new Map(); }

  sync(items, key, draw, onClick) {
    const seen = new Set();
    for (const item of items) {
      const id = key(item);
      seen.add(id);
      const known = this.known.get(id);
      const place = `${item.lat},${item.lon}`;
      if (known && known.place !== place) { known.marker.setLatLng([item.lat, item.lon]); known.place = place; }
      const { look, html } = draw(item);
      if (known && known.look === look) continue;  // a city's cameras: most redraws change nothing
      const icon = L.divIcon({ className: "map-mark", html: html(), iconSize: null });
      if (known) { known.marker.setIcon(icon); known.look = look; continue; }
      const marker = L.marker([item.lat, item.lon], { icon, zIndexOffset: this.z, keyboard: false, riseOnHover: true });
      if (onClick) marker.on("click", () => onClick(id));
      this.known.set(id, { marker: marker.addTo(this.map), look, place });
    }
    for (const [id, { marker }] of this.known) {
      if (!seen.has(id)) { marker.remove(); this.known.delete(id); }
    }
  }

  points() { return [...this.known.values()].map(({ marker }) => marker.getLatLng()); }

  clear() { for (const { marker } of this.known.values()) marker.remove(); this.known.clear(); }
}

/** A city's cameras as dots on one canvas; a click opens the camera's live view (ctrl-click: a new tab). */
class CameraDots {
  constructor(map) { this.map = map; this.renderer = L.canvas({ padding: 0.3 }); this.known = new Map(); }

  sync(cameras) {
    const seen = new Set();
    for (const c of cameras) {
      seen.add(c.id);
      const fillColor = UNHEALTHY.has(c.health_state) ? DOT_COLOURS.unhealthy : DOT_COLOURS[c.kind] || DOT_COLOURS.fixed;
      const known = this.known.get(c.id);
      if (known) {
        known.camera = c;
        const at = known.getLatLng();
        if (at.lat !== c.latitude || at.lng !== c.longitude) known.setLatLng([c.latitude, c.longitude]);
        if (known.options.fillColor !== fillColor) known.setStyle({ fillColor });
        continue;
      }
      const dot = L.circleMarker([c.latitude, c.longitude], { renderer: this.renderer, radius: 5, weight: 1,
        color: "#000", fillColor, fillOpacity: 1, bubblingMouseEvents: false });
      dot.camera = c;
      dot.bindTooltip(() => el("span", {}, cameraTitle(dot.camera)), { direction: "top", offset: [0, -4] });
      dot.on("click", (e) => {
        const url = liveUrl(dot.camera.id);
        if (e.originalEvent.ctrlKey || e.originalEvent.metaKey) window.open(url, "_blank"); else location.href = url;
      });
      this.known.set(c.id, dot.addTo(this.map));
    }
    for (const [id, dot] of this.known) {
      if (!seen.has(id)) { dot.remove(); this.known.delete(id); }
    }
  }

  points() { return [...this.known.values()].map((dot) => dot.getLatLng()); }

  clear() { for (const dot of this.known.values()) dot.remove(); this.known.clear(); }
}

/**
 * Cameras (one click opens the camera's live view), units and alerts on the city map, with a numbered
 * trail of sightings; `fit` "once" frames the map on the first things it gets, "always" on every set.
 */
export class CityMap {
  constructor(node, { onUnit, onAlert, fit = "once" } = {}) {
    this.onUnit = onUnit; this.onAlert = onAlert; this.fitMode = fit;
    this.cameras = []; this.units = []; this.alerts = []; this.selected = null; this.trail = [];
    const { map, ready } = cityBase(node);
    this.map = map; this.ready = ready;
    this.layers = { cameras: new Markers(map, 0), trail: new Markers(map, 1000), alerts: new Markers(map, 2000),
      units: new Markers(map, 3000) };
    this.trailLine = null;
    this.framed = false;
    ready.then((m) => { if (!this.framed) this.frame(true); return m; });
    new ResizeObserver(() => { if (this.fitMode === "always" || !this.framed) this.frame(); }).observe(node);
  }

  /** `trail`: sightings oldest first ({latitude, longitude, label}), drawn as a numbered path. */
  set({ cameras, units, alerts, selected, trail }) {
    if (cameras) this.cameras = cameras;
    if (units) this.units = units;
    if (alerts) this.alerts = alerts;
    if (trail) this.trail = trail.filter(placed);
    if (selected !== undefined) this.selected = selected;
    this.draw();
    if (this.fitMode === "always" || !this.framed) this.frame();
  }

  draw() {
    const placedCameras = this.cameras.filter(placed);
    const dots = placedCameras.length > LINKED_CAMERAS;
    if (dots !== this.layers.cameras instanceof CameraDots) {
      this.layers.cameras.clear();
      this.layers.cameras = dots ? new CameraDots(this.map) : new Markers(this.map, 0);
    }
    const { cameras, units, alerts, trail } = this.layers;
    if (dots) cameras.sync(placedCameras);
    else {
      cameras.sync(placedCameras.map((c) => ({ ...c, lat: c.latitude, lon: c.longitude })), (c) => c.id,
        (c) => ({ look: `${c.name}|${c.kind}|${c.health_state}`,
          html: () => el("a", { class: `cam ${c.kind} ${c.health_state}`, href: liveUrl(c.id), "data-camera-id": c.id,
            title: cameraTitle(c), "aria-label": `${c.name}: live view` }) }));
    }
    units.sync(this.units.filter(placed).map((u) => ({ ...u, lat: u.latitude, lon: u.longitude })), (u) => u.id,
      (u) => ({ look: `${u.callsign}|${u.status}`,
        html: () => el("span", { class: `unit ${u.status}`, "data-unit-id": u.id,
          title: `${u.callsign} · ${u.status.replace("_", " ")}` }, el("i"), el("b", {}, u.callsign)) }),
      this.onUnit);
    alerts.sync(this.alerts.filter((a) => a.lat != null && a.lon != null), (a) => a.id,
      (a) => ({ look: `${a.priority}|${this.selected === a.id}|${a.title}`,
        html: () => el("span", { class: `alert-mark p${a.priority}${this.selected === a.id ? " selected" : ""}`,
          "data-alert-id": a.id, title: a.title }, "!") }),
      this.onAlert);
    const steps = this.trail.map((p, i) => ({ ...p, id: String(i), lat: p.latitude, lon: p.longitude }));
    trail.sync(steps, (p) => p.id, (p) => ({ look: `${p.label}`,
      html: () => el("span", { class: "trail-point", title: p.label || "" }, String(Number(p.id) + 1)) }));
    this.trailLine?.remove();
    this.trailLine = steps.length > 1
      ? L.polyline(steps.map((p) => [p.lat, p.lon]), { className: "trail", interactive: false }).addTo(this.map) : null;
  }

  /** Frames the map on what it shows (cameras, units, trail, alerts); the city when it shows nothing. */
  frame(force = false) {
    const size = this.map.getSize();
    if (!size.x || !size.y) return;  // not laid out yet: the resize observer comes back
    const points = Object.values(this.layers).flatMap((layer) => layer.points());
    if (!points.length) {
      if (force) mapDescription().then((d) => this.map.fitBounds(toBounds(d.bounds)));
      return;
    }
    let bounds = L.latLngBounds(points);
    const centre = bounds.getCenter();
    bounds = bounds.extend([centre.lat - MIN_SPAN / 2, centre.lng - MIN_SPAN / 2])
      .extend([centre.lat + MIN_SPAN / 2, centre.lng + MIN_SPAN / 2]);
    this.map.fitBounds(bounds, { padding: [24, 24], maxZoom: 17 });
    this.framed = true;
  }
}
