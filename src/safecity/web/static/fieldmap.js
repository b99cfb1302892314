// @ts-check
// The officer's map: the incident's place, where the officer is, and the way between (a solid line along the
// streets where the server routed it on the operator's roads, else a dashed straight line), over the
// city's own tiles or packaged base layer (citymap.js: Leaflet served by this app, nothing from outside).
// Loaded only when an incident is shown; the service worker keeps it, Leaflet and the base layer, so it
// draws on a poor or absent connection.
import { cityBase } from "/static/citymap.js";
import { el } from "/static/lib.js";

/** @type {any} */
const L = /** @type {any} */ (globalThis).L;
const MIN_SPAN = 0.004;  // degrees (~400 m): on the scene, the map still shows the streets around

/** @typedef {{latitude: number, longitude: number}} Place */
/** @typedef {{points: number[][], source: "roads" | "straight"}} Route */

export class FieldMap {
  /** @param {HTMLElement} node */
  constructor(node) {
    const { map, ready } = cityBase(node);
    this.map = map;
    this.ready = ready;
    /** @type {any} */ this.incident = null;
    /** @type {any} */ this.me = null;
    /** @type {any} */ this.line = null;
    this.framedFor = "";
    /** @type {{points: number[][], key: string}|null} */ this.pending = null;
    // Drawn while its panel was hidden, the map had no size to frame in: frame when it gets one.
    new ResizeObserver(() => { if (this.pending) this.frame(this.pending.points, this.pending.key); })
      .observe(node);
  }

  /**
   * Shows the incident (`id`, `title`, `place`), the officer (`me`: null while nothing knows where) and
   * the `route` the server found from the unit's last position: its streets when it came from the roads,
   * else a straight line from `me`. Frames them when the incident, the knowledge of where the officer is
   * or the kind of route changes, not on every fix.
   * @param {{id: string, title: string, place: Place|null, me: Place|null, meLabel: string, route: Route|null}} what
   */
  show({ id, title, place, me, meLabel, route }) {
    this.incident = this.mark(this.incident, place, "field-incident", "!", title);
    this.me = this.mark(this.me, me, "field-me", "", meLabel);
    this.line?.remove();
    const streets = route && route.source === "roads" ? route.points : null;
    /** @type {number[][]|null} */
    const points = streets || (place && me ? [[me.latitude, me.longitude], [place.latitude, place.longitude]] : null);
    this.line = points
      ? L.polyline(points, { className: streets ? "field-route" : "field-route field-straight", interactive: false })
        .addTo(this.map)
      : null;
    const key = `${id}|${!!place}|${!!me}|${streets ? "roads" : "straight"}`;
    if (key !== this.framedFor) {
      const ends = [place, me].filter((p) => p !== null).map((p) => [/** @type {Place} */ (p).latitude, /** @type {Place} */ (p).longitude]);
      this.frame([...ends, ...(streets || [])], key);
    }
  }

  /** A marker at `where` (moved, or removed when `where` is null) drawn as a labelled dot. */
  mark(/** @type {any} */ marker, /** @type {Place|null} */ where, /** @type {string} */ kind,
    /** @type {string} */ text, /** @type {string} */ label) {
    if (!where) { marker?.remove(); return null; }
    const at = [where.latitude, where.longitude];
    if (marker) { marker.setLatLng(at); marker.getElement()?.setAttribute("title", label); return marker; }
    const icon = L.divIcon({ className: "map-mark", iconSize: null,
      html: el("span", { class: kind, title: label, "aria-label": label }, text) });
    return L.marker(at, { icon, keyboard: false, interactive: false }).addTo(this.map);
  }

  /** Frames the incident, the officer and the route ([lat, lon] `points`); the city when none is known. */
  frame(/** @type {number[][]} */ points, /** @type {string} */ key) {
    this.pending = { points, key };
    const size = this.map.getSize();
    if (!size.x || !size.y) return;
    this.pending = null;
    if (!points.length) return;
    let bounds = L.latLngBounds(points);
    const centre = bounds.getCenter();
    bounds = bounds.extend([centre.lat - MIN_SPAN / 2, centre.lng - MIN_SPAN / 2])
      .extend([centre.lat + MIN_SPAN / 2, centre.lng + MIN_SPAN / 2]);
    this.map.fitBounds(bounds, { padding: [28, 28], maxZoom: 17 });
    this.framedFor = key;
  }
}
