// The officer's phone's service worker: keeps the page and its own assets so it opens on a poor or
// absent connection. The page is network-first (a fresh sign-in token when online); the assets are
// served from the cache and refreshed behind. API answers and pictures are never cached here.
const CACHE = "safecity-field-v1";
const PAGE = "/field";
const ASSETS = ["/static/field.js", "/static/lib.js", "/static/nav.js", "/static/field.css", "/static/app.css",
  "/static/favicon.svg", "/static/field-192.png", "/field/manifest.webmanifest"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(ASSETS)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("safecity-field-") && k !== CACHE).map((k) => caches.delete(k))))
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
