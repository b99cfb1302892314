// @ts-check
// One camera's own view: its main stream live, the last 30 s again at a click, its recording at any
// moment, a snapshot of what is on screen kept as evidence, and pan, tilt and zoom where it has them.
import { $, api, el, me, can, when, fromZoneInput, toZoneInput } from "/static/lib.js";
import { LivePlayer, reasonText } from "/static/liveplayer.js";
import { PtzPanel } from "/static/ptz.js";

const cameraId = decodeURIComponent(location.pathname.split("/").pop() || "");
const at = (/** @type {string|null|undefined} */ iso) => (iso ? when(iso, "seconds") : "–");
/** @type {LivePlayer|null} */ let player = null;

const playback = /** @type {HTMLVideoElement} */ ($("#playback"));
const reason = $("#reason");
const mode = $("#mode");
const status = $("#status");

function showHealth(/** @type {string} */ state, /** @type {string} */ detail, /** @type {string|null|undefined} */ since) {
  const badge = $("#camera-health");
  badge.className = `health ${state}`;
  badge.textContent = state.replaceAll("_", " ");
  $("#camera-health-detail").textContent = state === "online" ? "" : `${since ? `since ${at(since)}` : ""} ${detail || ""}`;
}

function onState(/** @type {import("/static/liveplayer.js").LiveState} */ s) {
  if (s.state === "playing" || s.state === "picture") { reason.hidden = true; return; }
  if (s.state === "connecting") { if (s.health_state) showHealth(s.health_state, s.health_detail || "", s.health_since); return; }
  if (s.health) { showHealth(s.state, s.detail || "", new Date().toISOString()); return; }
  reason.textContent = reasonText(s, at);
  reason.hidden = false;
  if (s.state === "unplayable" && $("#live-screen").dataset.playing === "picture") reason.hidden = true;
}

function goLive() {
  playback.pause();
  playback.removeAttribute("src");
  playback.load();
  playback.hidden = true;
  $("#live-screen").hidden = false;
  mode.textContent = "● LIVE";
  mode.className = "mode live";
  /** @type {HTMLButtonElement} */ ($("#go-live")).disabled = true;
  if (!player) player = new LivePlayer($("#live-screen"), { cameraId, variant: "main", onState });
  player.start();
}

/** Plays recorded footage from `url` in place of the live picture (the live socket closes meanwhile). */
function play(/** @type {string} */ url, /** @type {string} */ label) {
  if (player) player.stop();
  $("#live-screen").hidden = true;
  reason.hidden = true;
  playback.hidden = false;
  mode.textContent = label;
  mode.className = "mode";
  /** @type {HTMLButtonElement} */ ($("#go-live")).disabled = false;
  status.textContent = "";
  playback.onerror = async () => {
    // The response's own words (no footage there, recording off) rather than a bare media error.
    const res = await fetch(url, { credentials: "same-origin" }).catch(() => null);
    const body = res ? await res.json().catch(() => null) : null;
    status.textContent = body ? `${body.detail}${body.hint ? ` — ${body.hint}` : ""}` : "the footage could not be played";
  };
  playback.src = url;
  playback.play().catch(() => {});
}

async function snapshot() {
  status.textContent = "keeping the picture…";
  try {
    const shot = await api(`/api/live/cameras/${encodeURIComponent(cameraId)}/snapshots`, { method: "POST" });
    status.textContent = `kept as evidence (frame of ${at(shot.frame_at)})`;
    $("#snapshots").prepend(el("li", {}, el("a", { href: shot.url, target: "_blank", rel: "noopener" }, `snapshot ${at(shot.frame_at)}`),
      el("span", { class: "muted" }, ` · sha256 ${shot.sha256.slice(0, 12)}…`)));
  } catch (err) { status.textContent = String(/** @type {Error} */ (err).message); }
}

async function main() {
  const [camera, who] = await Promise.all([api(`/api/cameras/${encodeURIComponent(cameraId)}`), me()]);
  document.title = `${camera.name} · SafeCity`;
  $("#camera-name").textContent = camera.name;
  $("#camera-where").textContent = `${camera.id} · ${camera.kind} · ${camera.district}`;
  showHealth(camera.health_state, camera.health_detail, camera.health_since);
  for (const node of document.querySelectorAll("[data-perm]")) {
    if (!can(who, node.getAttribute("data-perm") || "")) /** @type {HTMLElement} */ (node).hidden = true;
  }
  /** @type {HTMLInputElement} */ ($("#at")).value = toZoneInput(new Date(Date.now() - 5 * 60_000));
  $("#go-live").addEventListener("click", goLive);
  $("#replay").addEventListener("click", () => play(
    `/api/live/cameras/${encodeURIComponent(cameraId)}/replay.mp4?seconds=30`, `REPLAY · last 30 s from ${at(new Date(Date.now() - 30_000).toISOString())}`));
  $("#go-at").addEventListener("click", () => {
    const moment = fromZoneInput(/** @type {HTMLInputElement} */ ($("#at")).value);
    if (!moment) { status.textContent = "pick a date and time"; return; }
    play(`/api/recordings/cameras/${encodeURIComponent(cameraId)}/play.mp4?at=${encodeURIComponent(moment.toISOString())}`,
      `RECORDING · ${at(moment.toISOString())}`);
  });
  $("#snapshot").addEventListener("click", snapshot);
  goLive();
  new PtzPanel(cameraId).start(can(who, "cameras:ptz")).catch((err) => { status.textContent = String(err.message || err); });
  document.body.dataset.ready = "yes";
}

main().catch((err) => { status.textContent = String(err.message || err); console.error(err); });
