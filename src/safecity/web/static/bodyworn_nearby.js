// @ts-check
// The fixed cameras beside a body-worn recording, on one timeline with it: the body camera's playhead
// moves the chosen camera's footage (the recordings API's fragmented MP4) to the same wall-clock moment,
// and says "no recording" where that camera kept none. The body camera's player leads; this one follows.
import { $, api, el, when } from "/static/lib.js";
import { CatchUp, CLOSE_S } from "/static/catchup.js";

const REC = "/api/recordings";
const DRIFT_S = 0.8;  // the follower is moved only when it is further than this from the leader
const RETRY_MS = 3000;  // after a failed load, the follower waits this long before it asks again
const MAX_CATCH_UP_S = 20;  // further ahead than this, the follower loads from there instead of playing fast

/**
 * What GET /api/bodyworn/items/{id}/cameras answers.
 * @typedef {{start: string, end: string}} Span
 * @typedef {{camera_id: string, name: string, distance_m: number, closest_at: string, near: Span[],
 *   recorded: Span[], recorded_near_seconds: number}} NearbyCamera
 * @typedef {{start: string|null, end: string|null, within_m: number, note: string, cameras: NearbyCamera[]}} Nearby
 */

/**
 * The leader (`video`, the body camera's clip from `start` to `end`, epoch ms) and the follower: the chosen
 * camera, the wall-clock moment its stream starts at (`origin`), a load under way (`token` drops the answers
 * of earlier ones), whether it must land exactly on the leader's moment (after a load or a jump) and when a
 * failed load may be tried again.
 */
const state = {
  itemId: "",
  /** @type {HTMLVideoElement} */ video: /** @type {any} */ (null),
  start: 0, end: 0, within: 0,
  /** @type {NearbyCamera[]} */ cameras: [],
  /** @type {NearbyCamera|null} */ chosen: null,
  /** @type {number|null} */ origin: null,
  token: 0, loading: false, exact: false, retryAt: 0,
  /** @type {((cameras: NearbyCamera[]) => void)|null} */ onCameras: null,
};

const fixed = () => /** @type {HTMLVideoElement} */ ($("#bw-fixed"));
/** @type {CatchUp|null} */
let follower = null;
/** The follower's catch-up to the leader's moment (made on the page's player when first asked for). */
const catchUp = () => (follower ??= new CatchUp(fixed(), onCatchUp));
const box = () => $("#bw-fixed-box");
const at = (/** @type {number} */ ms) => new Date(ms).toISOString();
const span = (/** @type {Span} */ s) => /** @type {[number, number]} */ ([Date.parse(s.start), Date.parse(s.end)]);
const leaderMs = () => state.start + state.video.currentTime * 1000;

/** Where epoch `ms` falls on the shared timeline, 0–100. @param {number} ms */
function percent(ms) {
  return Math.max(0, Math.min(100, (ms - state.start) / (state.end - state.start) * 100));
}

/** @param {string} className @param {[number, number]} span @param {string} title */
function bar(className, [from, to], title) {
  const node = el("div", { class: className, title });
  node.style.left = `${percent(from)}%`;
  node.style.width = `${Math.max(0.4, percent(to) - percent(from))}%`;
  return node;
}

/** The shared timeline: the body camera's clip, when the officer was near the chosen camera, its footage. */
function drawTimeline() {
  const cam = state.chosen;
  const lane = (label, ...bars) => el("div", { class: "bw-tl-row" }, el("span", { class: "bw-tl-label" }, label), ...bars);
  const rows = [lane("body camera", bar("bw-tl-body", [state.start, state.end], "the body-worn recording"))];
  if (cam) {
    rows.push(lane(cam.camera_id,
      ...cam.near.map((s) => bar("bw-tl-near", span(s), `the officer within ${state.within} m: ${when(s.start, "time")}–${when(s.end, "time")}`)),
      ...cam.recorded.map((s) => bar("bw-tl-rec", span(s), `recorded ${when(s.start, "time")}–${when(s.end, "time")}`))));
  }
  $("#bw-timeline").replaceChildren(el("div", { class: "bw-tl-lanes" }, ...rows, el("div", { class: "bw-tl-cursor" })));
  $("#bw-timeline").hidden = false;
  $("#bw-timeline-legend").hidden = false;
  $("#bw-timeline-legend").textContent = `${when(state.start, "seconds")} – ${when(state.end, "time")}` +
    (cam ? ` · outlined: the officer within ${state.within} m of ${cam.camera_id} · filled: its footage` : "");
  showCursor(leaderMs());
}

/** @param {number} ms */
function showCursor(ms) {
  const cursor = $("#bw-timeline .bw-tl-cursor");
  if (cursor) cursor.style.left = `${percent(ms)}%`;
}

/** Whether the chosen camera kept footage of epoch `ms`. */
const covered = (/** @type {number} */ ms) =>
  (state.chosen?.recorded ?? []).some((s) => { const [a, b] = span(s); return a <= ms && ms < b; });

/** Says what the follower does (`kind` goes to the box's data-state, which the page's style shows).
 * @param {string} text @param {string} kind */
function say(text, kind) {
  box().dataset.state = kind;
  $("#bw-fixed-status").textContent = text;
}

/** @param {number} ms */
function noRecording(ms) {
  state.token += 1;  // a load under way is for a moment that has passed
  state.loading = false;
  catchUp().cancel();
  fixed().pause();
  say(`no recording from ${state.chosen?.camera_id} at ${when(ms, "time")}`, "none");
  $("#bw-fixed-clock").textContent = "";
}

/** Shows the follower's wall-clock moment (and keeps it in `data-wall`). */
function showWall() {
  if (state.origin == null || box().dataset.state === "none") return;
  const wall = state.origin + fixed().currentTime * 1000;
  box().dataset.wall = at(wall);
  $("#bw-fixed-clock").textContent = when(wall, "seconds");
}

/** Plays the follower with the leader: paused with it, at its rate. */
function follow() {
  const player = fixed();
  player.playbackRate = state.video.playbackRate;
  if (state.video.paused) { player.pause(); say("", "paused"); } else { player.play().catch(() => {}); say("", "playing"); }
}

/** Brings the follower forward to `want` (seconds of its stream). A live recording streamed from a moment
 * cannot be sought in (the browser finds no seekable range), so catchup.js plays it fast until it gets to
 * the leader's moment, which moves on while the leader plays. */
function steer(/** @type {number} */ want) {
  if (catchUp().catching) return;  // on its way already, to wherever the leader is
  // Exactly after a load or a jump; during playback only when the two drifted apart.
  if (want - fixed().currentTime > (state.exact ? CLOSE_S : DRIFT_S)) {
    const origin = state.origin ?? 0;
    catchUp().to(() => (leaderMs() - origin) / 1000);
    return;
  }
  arrived();
}

/** The follower is at the leader's moment: from here it plays along. */
function arrived() {
  state.exact = false;
  if (box().dataset.state !== (state.video.paused ? "paused" : "playing")) follow();
  showWall();
}

/** What the catch-up says: on its way, there, or at the end of its footage short of the leader's moment.
 * @param {import("/static/catchup.js").CatchState} now */
function onCatchUp(now) {
  if (now === "catching") say("", "catching");
  else if (now === "ended") {
    state.retryAt = performance.now() + RETRY_MS;  // then loaded again from the leader's moment
    say(`the footage from ${state.chosen?.camera_id} ends before this moment`, "none");
  } else arrived();
}

/** Loads the chosen camera's footage from the moment the body camera shows (the key-frame before it).
 * @param {number} ms */
async function load(ms) {
  const token = ++state.token, player = fixed(), cam = /** @type {NearbyCamera} */ (state.chosen);
  state.loading = true;
  catchUp().cancel();
  say(`loading ${cam.camera_id} at ${when(ms, "time")}…`, "loading");
  try {
    const where = await api(`${REC}/cameras/${encodeURIComponent(cam.camera_id)}/locate?at=${encodeURIComponent(at(ms))}`);
    if (token !== state.token) return;
    player.src = where.url;
    await new Promise((resolve, reject) => {
      player.addEventListener("loadedmetadata", resolve, { once: true });
      player.addEventListener("error", () => reject(new Error("the browser could not play this footage")), { once: true });
    });
    if (token !== state.token) return;
    state.origin = Date.parse(where.origin);
    state.loading = false;
    state.exact = true;
    say("", "loaded");
    sync();
  } catch (err) {
    if (token !== state.token) return;
    state.loading = false;
    state.origin = null;
    state.retryAt = performance.now() + RETRY_MS;
    say(err instanceof Error ? err.message : String(err), "none");
  }
}

/** Brings the follower to the leader's moment: forward by playing fast, backward or far by loading again. */
function sync() {
  if (!state.chosen) return;
  const ms = leaderMs();
  showCursor(ms);
  if (!covered(ms)) { noRecording(ms); return; }
  if (state.loading || performance.now() < state.retryAt) return;
  const want = state.origin == null ? -1 : (ms - state.origin) / 1000;
  const have = fixed().currentTime;
  if (want < 0 || want < have - DRIFT_S || want > have + MAX_CATCH_UP_S || box().dataset.state === "none") {
    load(ms);
    return;
  }
  steer(want);
}

/** @param {NearbyCamera} cam */
function choose(cam) {
  state.chosen = cam;
  state.retryAt = 0;
  state.origin = null;
  state.token += 1;
  state.loading = false;
  catchUp().cancel();
  $("#bw-nearby").querySelectorAll("li").forEach((li) => {
    const mine = li.dataset.camera === cam.camera_id;
    li.classList.toggle("chosen", mine);
    li.querySelector("button")?.setAttribute("aria-pressed", String(mine));
  });
  box().hidden = false;
  box().dataset.camera = cam.camera_id;
  $("#bw-fixed-name").textContent = `${cam.name} (${cam.camera_id})`;
  drawTimeline();
  sync();
}

/** @param {Nearby} found */
function listCameras(found) {
  state.cameras = found.cameras;
  state.within = found.within_m;
  /** @type {HTMLInputElement} */ ($("#bw-nearby-form input[name=within_m]")).value = String(found.within_m);
  $("#bw-nearby-note").textContent = found.note || (found.cameras.length ?
    `${found.cameras.length} camera(s) within ${found.within_m} m of the officer during the recording` :
    `no camera within ${found.within_m} m recorded the officer's place during the recording`);
  $("#bw-nearby").replaceChildren(...found.cameras.map((c) => el("li", { "data-camera": c.camera_id },
    el("button", { type: "button", class: "link", "aria-pressed": "false", onclick: () => choose(c) },
      `${c.name} (${c.camera_id})`),
    ` · ${Math.round(c.distance_m)} m at ${when(c.closest_at, "time")} · ` +
    (c.recorded_near_seconds ? `${Math.round(c.recorded_near_seconds)} s of footage while near` : "no footage while near"))));
  if (state.onCameras) state.onCameras(found.cameras);
  if (found.start && found.end) {
    state.start = Date.parse(found.start);
    state.end = Date.parse(found.end);
    const first = found.cameras.find((c) => c.recorded_near_seconds > 0) || found.cameras.find((c) => c.recorded.length);
    if (first) choose(first); else { state.chosen = null; box().hidden = true; drawTimeline(); }
  }
}

/** Asks for the cameras within `within` metres (the server's default for null); `all` lists those that kept
 * nothing too. @param {string|null} within @param {boolean} all */
async function ask(within, all) {
  const query = new URLSearchParams();
  if (within) query.set("within_m", within);
  if (all) query.set("recorded_only", "false");
  try {
    listCameras(await api(`/api/bodyworn/items/${encodeURIComponent(state.itemId)}/cameras?${query}`));
  } catch (err) { $("#bw-nearby-note").textContent = err instanceof Error ? err.message : String(err); }
}

/**
 * Shows the cameras near the item `itemId` beside its player `video`; `onCameras(list)` places them on a map.
 * @param {string} itemId @param {HTMLVideoElement} video @param {(cameras: NearbyCamera[]) => void} onCameras
 */
export function showNearby(itemId, video, onCameras) {
  Object.assign(state, { itemId, video, onCameras });
  video.addEventListener("seeked", () => { state.exact = true; sync(); });
  video.addEventListener("timeupdate", () => sync());
  video.addEventListener("play", () => sync());
  video.addEventListener("pause", () => {
    if (state.chosen && !catchUp().catching) { fixed().pause(); if (box().dataset.state === "playing") say("", "paused"); }
  });
  video.addEventListener("ratechange", () => { if (!catchUp().catching) fixed().playbackRate = video.playbackRate; });
  fixed().addEventListener("timeupdate", showWall);
  fixed().addEventListener("seeked", showWall);
  $("#bw-timeline").addEventListener("click", (/** @type {MouseEvent} */ ev) => {
    const lanes = $("#bw-timeline .bw-tl-lanes");
    if (!lanes) return;
    const rect = lanes.getBoundingClientRect();
    const ms = state.start + (ev.clientX - rect.left) / rect.width * (state.end - state.start);
    video.currentTime = Math.max(0, Math.min(video.duration || Infinity, (ms - state.start) / 1000));
  });
  $("#bw-nearby-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = new FormData(/** @type {HTMLFormElement} */ (ev.target));
    ask(String(form.get("within_m") ?? "") || null, Boolean(form.get("all")));
  });
  return ask(null, false);
}
