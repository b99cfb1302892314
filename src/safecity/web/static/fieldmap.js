// @ts-check
// The officer's map: the incident's place, where the officer is, and the straight line between, over the
// city's own tiles or packaged base layer (citymap.js: Leaflet served by this app, nothing from outside).
// Loaded only when an incident is shown; the service worker keeps it, Leaflet and the base layer, so it
// draws on a poor or absent connection.
import { cityBase } from "/static/citymap.js";
import { el } from "/static/lib.js";

/** @type {any} */
const L = /** @type {any} */ (globalThis).L;
const MIN_SPAN = 0.004;  // degrees (~400 m): on the scene, the map still shows the streets around

/** @typedef {{latitude: number, longitude: number}} Place */

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
    /** @type {{place: Place|null, me: Place|null, key: string}|null} */ this.pending = null;
    // Drawn while its panel was hidden, the map had no size to frame in: frame when it gets one.
    new ResizeObserver(() => { if (this.pending) this.frame(this.pending.place, this.pending.me, this.pending.key); })
      .observe(node);
  }

  /**
   * Shows the incident (`id`, `title`, `place`) and the officer (`me`: null while nothing knows where);
   * frames both when the incident or the knowledge of where the officer is changes, not on every fix.
   * @param {{id: string, title: string, place: Place|null, me: Place|null, meLabel: string}} what
   */
  show({ id, title, place, me, meLabel }) {
    this.incident = this.mark(this.incident, place, "field-incident", "!", title);
    this.me = this.mark(this.me, me, "field-me", "", meLabel);
    this.line?.remove();
    this.line = place && me
      ? L.polyline([[me.latitude, me.longitude], [place.latitude, place.longitude]],
        { className: "field-route", interactive: false }).addTo(this.map)
      : null;
    const key = `${id}|${!!place}|${!!me}`;
    if (key !== this.framedFor) this.frame(place, me, key);
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

  /** Frames the incident and the officer; the city when neither is known. */
  frame(/** @type {Place|null} */ place, /** @type {Place|null} */ me, /** @type {string} */ key) {
    this.pending = { place, me, key };
    const size = this.map.getSize();
    if (!size.x || !size.y) return;
    this.pending = null;
    const points = [place, me].filter((p) => p !== null).map((p) => [/** @type {Place} */ (p).latitude, /** @type {Place} */ (p).longitude]);
    if (!points.length) return;
    let bounds = L.latLngBounds(points);
    const centre = bounds.getCenter();
    bounds = bounds.extend([centre.lat - MIN_SPAN / 2, centre.lng - MIN_SPAN / 2])
      .extend([centre.lat + MIN_SPAN / 2, centre.lng + MIN_SPAN / 2]);
    this.map.fitBounds(bounds, { padding: [28, 28], maxZoom: 17 });
    this.framedFor = key;
  }
}
