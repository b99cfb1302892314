// The officer's phone's service worker: keeps the page and its own assets so it opens on a poor or
// absent connection. The page is network-first (a fresh sign-in token when online); the assets (the map's
// Leaflet and MapLibre among them) are served from the cache and refreshed behind. The map's description,
// base layer and vector style are network-first with the last copy kept, and its tiles (streets, not people) are kept as they
// are seen, up to MAX_TILES. Other API answers and pictures are never cached here.
const CACHE = "safecity-field-v3";
const MAP_CACHE = "safecity-field-map-v1";
const PAGE = "/field";
const ASSETS = ["/static/field.js", "/static/lib.js", "/static/nav.js", "/static/field.css", "/static/app.css",
  "/static/favicon.svg", "/static/field-192.png", "/field/manifest.webmanifest", "/static/fieldmap.js",
  "/static/citymap.js", "/static/vendor/leaflet/leaflet.js", "/static/vendor/leaflet/leaflet.css",
  "/static/map-blank.png", "/static/vendor/maplibre/maplibre-gl.mjs",
  "/static/vendor/maplibre/maplibre-gl-worker.mjs", "/static/vendor/maplibre/maplibre-gl.css",
  "/static/vendor/maplibre/leaflet-maplibre-gl.js"];
const MAP_DATA = ["/api/map", "/map/base.geojson", "/map/style.json"];
const MAX_TILES = 400;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(ASSETS)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("safecity-field-") && k !== CACHE && k !== MAP_CACHE)
      .map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname === PAGE) {
    event.respondWith(fetch(request).then((response) => {
      // Only the page itself: a redirect to /login must not be kept as the page.
      if (response.ok && !response.redirected) {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(PAGE, copy));
      }
      return response;
    }).catch(() => caches.match(PAGE).then((hit) => hit || Response.error())));
    return;
  }
  if (MAP_DATA.includes(url.pathname)) {
    event.respondWith(fetch(request).then((response) => {
      if (response.ok && !response.redirected) {
        const copy = response.clone();
        caches.open(MAP_CACHE).then((cache) => cache.put(url.pathname, copy));
      }
      return response;
    }).catch(() => caches.match(url.pathname, { cacheName: MAP_CACHE }).then((hit) => hit || Response.error())));
    return;
  }
  if (url.pathname.startsWith("/map/tiles/")) {
    event.respondWith(caches.open(MAP_CACHE).then(async (cache) => {
      const hit = await cache.match(url.pathname);
      if (hit) return hit;
      const response = await fetch(request);
      if (response.ok) {
        await cache.put(url.pathname, response.clone());
        const keys = (await cache.keys()).filter((k) => new URL(k.url).pathname.startsWith("/map/tiles/"));
        await Promise.all(keys.slice(0, Math.max(0, keys.length - MAX_TILES)).map((k) => cache.delete(k)));
      }
      return response;
    }));
    return;
  }
  if (!ASSETS.includes(url.pathname)) return;
  event.respondWith(caches.open(CACHE).then(async (cache) => {
    const hit = await cache.match(url.pathname);
    const fresh = fetch(request).then((response) => {
      if (response.ok) cache.put(url.pathname, response.clone());
      return response;
    });
    if (hit) { fresh.catch(() => {}); return hit; }
    return fresh;
  }));
});
