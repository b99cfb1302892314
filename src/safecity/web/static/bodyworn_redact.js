// The redaction editor: boxes drawn on a paused frame (each following its object to its end time), faces and
// plates, stretches of sound to mute; the redaction runs as a job on the server, its progress polled here,
// and its result is a new item of its own.
import { $, api, el, when } from "/static/lib.js";

const API = "/api/bodyworn";
const itemId = decodeURIComponent(location.pathname.split("/").at(-2));
const video = $("#rd-video"), canvas = $("#rd-canvas");
const boxes = [], mutes = [];
let item = null, drag = null, muteFrom = null;
const say = (text) => { $("#rd-status").textContent = text; };
const secs = (t) => Math.round(t * 100) / 100;

/** Canvas pixels to the pixels of the picture as the player shows it (scaled to the page; turned and mirrored
 * by the recording's display matrix, which the server undoes: the boxes are sent `shown`). */
function framePoint(ev) {
  const r = canvas.getBoundingClientRect();
  const scale = Math.min(r.width / video.videoWidth, r.height / video.videoHeight);
  const left = (r.width - video.videoWidth * scale) / 2, top = (r.height - video.videoHeight * scale) / 2;
  const x = (ev.clientX - r.left - left) / scale, y = (ev.clientY - r.top - top) / scale;
  return [Math.max(0, Math.min(video.videoWidth, x)), Math.max(0, Math.min(video.videoHeight, y))];
}

function draw() {
  const r = canvas.getBoundingClientRect();
  canvas.width = r.width; canvas.height = r.height;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!video.videoWidth) return;
  const scale = Math.min(r.width / video.videoWidth, r.height / video.videoHeight);
  const left = (r.width - video.videoWidth * scale) / 2, top = (r.height - video.videoHeight * scale) / 2;
  const now = video.currentTime;
  const shown = boxes.filter((b) => b.t0 <= now + 0.05 && now <= b.t1 + 0.05);
  if (drag) shown.push(drag);
  ctx.lineWidth = 2;
  for (const b of shown) {
    ctx.strokeStyle = b === drag ? "#ffcc00" : "#ff4d4d";
    ctx.strokeRect(left + b.x * scale, top + b.y * scale, b.w * scale, b.h * scale);
  }
}

function showBoxes() {
  $("#rd-boxes tbody").replaceChildren(...boxes.map((b, i) => el("tr", {},
    el("td", {}, b.t0.toFixed(2)),
    el("td", {}, el("input", { type: "number", step: "0.1", min: b.t0, max: item.duration_s || "", value: b.t1,
      onchange: (ev) => { b.t1 = Number(ev.target.value); draw(); } })),
    el("td", {}, `${Math.round(b.x)},${Math.round(b.y)} ${Math.round(b.w)}×${Math.round(b.h)}`),
    el("td", {}, el("input", { type: "checkbox", checked: b.follow, onchange: (ev) => { b.follow = ev.target.checked; } })),
    el("td", {}, el("button", { type: "button", class: "link", onclick: () => { boxes.splice(i, 1); showBoxes(); draw(); } }, "remove")))));
}

function showMutes() {
  $("#rd-mutes tbody").replaceChildren(...mutes.map((m, i) => el("tr", {},
    el("td", {}, m.t0.toFixed(2)), el("td", {}, m.t1.toFixed(2)),
    el("td", {}, el("button", { type: "button", class: "link", onclick: () => { mutes.splice(i, 1); showMutes(); } }, "remove")))));
}

canvas.addEventListener("pointerdown", (ev) => {
  if (!video.paused) { say("pause on the frame first, then drag over what to hide"); return; }
  const [x, y] = framePoint(ev);
  drag = { x0: x, y0: y, x, y, w: 0, h: 0 };
  canvas.setPointerCapture(ev.pointerId);
});
canvas.addEventListener("pointermove", (ev) => {
  if (!drag) return;
  const [x, y] = framePoint(ev);
  Object.assign(drag, { x: Math.min(x, drag.x0), y: Math.min(y, drag.y0), w: Math.abs(x - drag.x0), h: Math.abs(y - drag.y0) });
  draw();
});
canvas.addEventListener("pointerup", () => {
  if (!drag) return;
  const { x, y, w, h } = drag;
  drag = null;
  if (w >= 4 && h >= 4) {
    const t0 = secs(video.currentTime), end = item.duration_s || t0 + 2;
    boxes.push({ t0, t1: secs(Math.min(end, t0 + 2)), x: Math.round(x), y: Math.round(y), w: Math.round(w), h: Math.round(h), follow: true, shown: true });
    showBoxes();
  }
  draw();
});
video.addEventListener("timeupdate", () => { $("#rd-clock").textContent = `${video.currentTime.toFixed(2)} s`; draw(); });
video.addEventListener("seeked", draw);
video.addEventListener("loadedmetadata", draw);
window.addEventListener("resize", draw);

$("#rd-mute-start").addEventListener("click", () => { muteFrom = secs(video.currentTime); say(`muting from ${muteFrom} s: play on, then "…to here"`); });
$("#rd-mute-end").addEventListener("click", () => {
  const to = secs(video.currentTime);
  if (muteFrom == null || to <= muteFrom) { say("mark where the muting starts first, then a later moment"); return; }
  mutes.push({ t0: muteFrom, t1: to }); muteFrom = null; showMutes(); say("");
});

async function showDone() {
  const rows = await api(`${API}/items/${itemId}/redactions`);
  $("#rd-done").replaceChildren(...rows.map((r) => el("li", {},
    `${when(r.requested_at)} by ${r.requested_by}: ${r.status}`,
    r.result_item_id ? el("a", { href: `/evidence/items/${r.result_item_id}` }, " open the redacted copy") : "",
    r.error ? ` — ${r.error}` : "")));
  if (!rows.length) $("#rd-done").replaceChildren(el("li", { class: "muted" }, "none yet"));
}

async function follow(jobId) {
  const bar = $("#rd-progress");
  bar.hidden = false;
  for (;;) {
    const job = await api(`${API}/redactions/${jobId}`);
    if (job.frames_total) { bar.max = job.frames_total; bar.value = job.frames_done; }
    if (job.status === "done") {
      say(""); $("#rd-status").replaceChildren(`done: ${job.frames_done} frames. `,
        el("a", { href: `/evidence/items/${job.result_item_id}` }, "Open the redacted copy"));
      bar.hidden = true; await showDone(); return;
    }
    if (job.status === "failed") { say(`failed: ${job.error}`); bar.hidden = true; await showDone(); return; }
    say(job.status === "queued" ? "waiting for the redaction job to start…" : `redacting: ${job.frames_done} of ${job.frames_total || "?"} frames`);
    await new Promise((done) => setTimeout(done, 1000));
  }
}

$("#rd-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = { faces: !!f.get("faces"), plates: !!f.get("plates"), boxes, mutes, reason: f.get("reason") };
  try {
    const job = await api(`${API}/items/${itemId}/redactions`, { method: "POST", body: JSON.stringify(body) });
    await follow(job.id);
  } catch (err) { say(err.message); }
});

async function load() {
  try { item = await api(`${API}/items/${itemId}`); } catch (err) { say(err.message); return; }
  $("#rd-title").textContent = `Redact ${item.officer} · ${item.device} · ${when(item.recorded_at || item.ingested_at)}`;
  video.src = `${API}/items/${itemId}/video`;
  await showDone();
}

load();
