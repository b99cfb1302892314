// @ts-check
// Pan, tilt and zoom on the single camera view, for cameras that have it: hold an arrow (or an arrow key
// while the picture has focus) to move, let go to stop; + and − zoom; presets to go to, save and remove;
// pan, tilt and zoom as numbers, within the camera's own ranges, to send it to a position; a double-click
// on the picture (or a single click, with "Click to centre" ticked) turns the camera so that point
// comes to the centre, so ordinary clicks (focusing the picture) keep working. Commands
// go one after another, so a quick press never stops before it started; a held move is sent again every
// few seconds because each carries a timeout after which the camera stops by itself (a closed tab).
import { $, api, el, when, send } from "/static/lib.js";
import { pointOnPicture } from "/static/ptzaim.js";

const TIMEOUT_S = 5;
const RESEND_MS = 3000;
const POLL_MS = 5000;
/** @type {Record<string, [number, number, number]>} pan, tilt, zoom */
const DIRECTIONS = { up: [0, 1, 0], down: [0, -1, 0], left: [-1, 0, 0], right: [1, 0, 0], in: [0, 0, 1], out: [0, 0, -1] };
/** @type {Record<string, string>} */
const KEYS = { ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right", "+": "in", "=": "in", "-": "out", _: "out" };

/**
 * @typedef {{username: string, since: string, renewed_at: string, you: boolean}} Controller
 * @typedef {{camera_id: string, ptz: string, setting: string, detail: string, checked_at: string|null,
 *   controller: Controller|null, lease_s: number}} PtzState
 * @typedef {{min: number, max: number}} AxisRange
 * @typedef {{camera_id: string, absolute: boolean, detail: string, pan: number|null, tilt: number|null,
 *   zoom: number|null, pan_range: AxisRange|null, tilt_range: AxisRange|null, zoom_range: AxisRange|null}} PtzPosition
 */
/** @type {[string, "pan"|"tilt"|"zoom"][]} */
const AXES = [["#ptz-pan", "pan"], ["#ptz-tilt", "tilt"], ["#ptz-zoom", "zoom"]];
const shown = (/** @type {number} */ v) => String(Math.round(v * 10000) / 10000);

export class PtzPanel {
  /** @param {string} cameraId */
  constructor(cameraId) {
    this.cameraId = cameraId;
    this.base = `/api/cameras/${encodeURIComponent(cameraId)}/ptz`;
    /** @type {Promise<unknown>} */ this.queue = Promise.resolve();
    /** @type {string|null} */ this.held = null;
    this.byKey = false;
    this.resend = 0;
    this.status = $("#ptz-status");
  }

  /** Asks whether the camera can move; shows the controls when it can (and the user may). */
  async start(/** @type {boolean} */ mayMove) {
    /** @type {PtzState} */ const state = await api(this.base);
    if (state.ptz !== "yes") {
      const none = $("#ptz-none");
      none.textContent = state.ptz === "no" ? `No PTZ: ${state.detail}` : `PTZ unknown: ${state.detail}`;
      none.hidden = false;
      return;
    }
    const panel = $("#ptz");
    panel.hidden = false;
    this.showController(state.controller);
    setInterval(() => this.poll(), POLL_MS);
    if (!mayMove) {
      for (const node of panel.querySelectorAll("button, input, select")) /** @type {HTMLButtonElement} */ (node).disabled = true;
      this.say("your role may watch this camera but not move it");
      return;
    }
    for (const button of panel.querySelectorAll("[data-ptz]")) {
      const direction = button.getAttribute("data-ptz") || "";
      button.addEventListener("pointerdown", (ev) => {
        /** @type {HTMLElement} */ (button).setPointerCapture(/** @type {PointerEvent} */ (ev).pointerId);
        this.press(direction, false);
      });
      for (const release of ["pointerup", "pointercancel", "lostpointercapture"]) button.addEventListener(release, () => this.release());
    }
    const stage = $("#stage");
    stage.addEventListener("keydown", (ev) => {
      const direction = KEYS[/** @type {KeyboardEvent} */ (ev).key];
      if (!direction) return;
      ev.preventDefault();
      if (!/** @type {KeyboardEvent} */ (ev).repeat) this.press(direction, true);
    });
    stage.addEventListener("keyup", (ev) => { if (KEYS[/** @type {KeyboardEvent} */ (ev).key]) this.release(); });
    // A key held while the picture loses focus never sends its keyup here; a pointer keeps its capture.
    stage.addEventListener("blur", () => { if (this.byKey) this.release(); });
    window.addEventListener("pagehide", () => this.release(true));
    stage.addEventListener("dblclick", (ev) => this.centreOn(/** @type {MouseEvent} */ (ev)));
    stage.addEventListener("click", (ev) => {
      if (/** @type {HTMLInputElement} */ ($("#ptz-click-centre")).checked) this.centreOn(/** @type {MouseEvent} */ (ev));
    });
    $("#preset-save").addEventListener("click", () => this.save());
    $("#ptz-position").addEventListener("submit", (ev) => { ev.preventDefault(); this.goTo(); });
    $("#ptz-where").addEventListener("click", () => this.loadPosition());
    await Promise.all([this.loadPresets(), this.loadPosition()]);
  }

  /** Reads where the camera points and its ranges into the position fields. */
  async loadPosition() {
    try {
      /** @type {PtzPosition} */ const where = await api(`${this.base}/position`);
      if (!where.absolute) {
        const none = $("#ptz-no-position");
        none.textContent = `Cannot be sent to a position: ${where.detail}`;
        none.hidden = false;
        return;
      }
      const form = $("#ptz-position");
      form.hidden = false;
      /** @type {string[]} */ const ranges = [];
      for (const [selector, axis] of AXES) {
        const input = /** @type {HTMLInputElement} */ ($(selector));
        const range = where[/** @type {"pan_range"|"tilt_range"|"zoom_range"} */ (`${axis}_range`)];
        input.disabled = !range;
        if (!range) { input.value = ""; continue; }
        input.min = String(range.min);
        input.max = String(range.max);
        input.step = String(Math.max(0.0001, (range.max - range.min) / 200));
        ranges.push(`${axis} ${shown(range.min)} to ${shown(range.max)}`);
        const now = where[axis];
        if (now !== null) input.value = shown(now);
      }
      $("#ptz-ranges").textContent = `This camera's ranges: ${ranges.join(", ")}`;
    } catch (err) {
      this.say(String(/** @type {Error} */ (err).message), true);
    }
  }

  /** Reads the position again after the camera moved, where the fields are shown. */
  refreshPosition() {
    if (!$("#ptz-position").hidden) return this.loadPosition();
    return Promise.resolve();
  }

  /** Sends the camera to the pan, tilt and zoom in the fields (an empty field: that axis stays). */
  async goTo() {
    /** @type {Record<string, number>} */ const body = {};
    for (const [selector, axis] of AXES) {
      const input = /** @type {HTMLInputElement} */ ($(selector));
      if (input.disabled || input.value.trim() === "") continue;
      const value = Number(input.value);
      if (!Number.isFinite(value)) { this.say(`${axis} is not a number`, true); return; }
      body[axis] = value;
    }
    await this.command(`${this.base}/absolute`, body);
  }

  /** Turns the camera so the picture's point under the pointer comes to the centre (audited). */
  centreOn(/** @type {MouseEvent} */ ev) {
    const stage = $("#stage");
    const screen = /** @type {HTMLElement} */ ($("#live-screen"));
    if (screen.hidden) return;  // recorded footage is playing: the camera is not what is shown
    const video = /** @type {HTMLVideoElement|null} */ (screen.querySelector("video"));
    const img = /** @type {HTMLImageElement|null} */ (screen.querySelector("img"));
    const [width, height] = video && !video.hidden ? [video.videoWidth, video.videoHeight]
      : img && !img.hidden ? [img.naturalWidth, img.naturalHeight] : [0, 0];
    const box = stage.getBoundingClientRect();
    const point = pointOnPicture(ev.clientX - box.left, ev.clientY - box.top, box.width, box.height, width, height);
    if (!point) { this.say("click on the picture itself to turn the camera there", true); return; }
    ev.preventDefault();
    this.command(`${this.base}/centre`, point).then(() => this.refreshPosition());
  }

  /** @param {string} direction @param {boolean} byKey */
  press(direction, byKey) {
    if (this.held === direction) return;
    this.held = direction;
    this.byKey = byKey;
    for (const b of document.querySelectorAll("[data-ptz]")) b.classList.toggle("held", b.getAttribute("data-ptz") === direction);
    this.move();
    clearInterval(this.resend);
    this.resend = window.setInterval(() => this.move(), RESEND_MS);
  }

  move() {
    if (!this.held) return;
    const speed = Number(/** @type {HTMLSelectElement} */ ($("#ptz-speed")).value) || 0.5;
    const [pan, tilt, zoom] = DIRECTIONS[this.held].map((v) => v * speed);
    this.command(`${this.base}/move`, { pan, tilt, zoom, timeout_s: TIMEOUT_S });
  }

  /** Stops the camera if a move is held (`leaving`: the page is going, the request must outlive it). */
  release(leaving = false) {
    if (!this.held) return;
    this.held = null;
    clearInterval(this.resend);
    for (const b of document.querySelectorAll("[data-ptz].held")) b.classList.remove("held");
    if (leaving) { send(`${this.base}/stop`, { method: "POST", keepalive: true }); return; }
    this.command(`${this.base}/stop`).then(() => this.refreshPosition());
  }

  /** Sends one command after those before it; shows who controls the camera, or why it failed. */
  command(/** @type {string} */ url, /** @type {object|undefined} */ body = undefined) {
    this.queue = this.queue.then(async () => {
      try {
        const options = body ? { method: "POST", body: JSON.stringify(body) } : { method: "POST" };
        /** @type {PtzState} */ const state = await api(url, options);
        this.showController(state.controller);
        this.say("");
      } catch (err) {
        this.say(String(/** @type {Error} */ (err).message), true);
      }
    });
    return this.queue;
  }

  async poll() {
    try { this.showController((/** @type {PtzState} */ (await api(this.base))).controller); } catch (_) { /* shown on the next command */ }
  }

  /** @param {Controller|null} controller */
  showController(controller) {
    const line = $("#ptz-controller");
    line.hidden = !controller;
    if (!controller) return;
    line.textContent = controller.you
      ? "You are controlling this camera"
      : `${controller.username} is controlling this camera (since ${when(controller.since, "time")}); your commands take it over`;
    line.dataset.controller = controller.username;
  }

  async loadPresets() {
    const list = $("#ptz-presets");
    try {
      /** @type {{token: string, name: string}[]} */ const presets = await api(`${this.base}/presets`);
      const at = (/** @type {string} */ token) => `${this.base}/presets/${encodeURIComponent(token)}`;
      list.replaceChildren(...presets.map((p) => el("li", { "data-token": p.token }, el("span", { class: "name" }, p.name),
        el("button", { type: "button", onclick: () => this.command(`${at(p.token)}/goto`).then(() => this.refreshPosition()) }, "Go"),
        el("button", { type: "button", class: "remove", title: `Remove the preset “${p.name}” from the camera (audited)`,
          "aria-label": `Remove preset ${p.name}`, onclick: () => this.remove(p.token, p.name) }, "✕"))));
      if (!presets.length) list.replaceChildren(el("li", { class: "muted" }, "no presets yet"));
    } catch (err) {
      this.say(String(/** @type {Error} */ (err).message), true);
    }
  }

  async save() {
    const input = /** @type {HTMLInputElement} */ ($("#preset-name"));
    const name = input.value.trim();
    if (!name) { this.say("give the preset a name first", true); return; }
    try {
      await api(`${this.base}/presets`, { method: "POST", body: JSON.stringify({ name }) });
      input.value = "";
      this.say(`saved “${name}”`);
      await this.loadPresets();
    } catch (err) {
      this.say(String(/** @type {Error} */ (err).message), true);
    }
  }

  /** Removes a preset from the camera, once the operator confirms (other operators lose it too). */
  async remove(/** @type {string} */ token, /** @type {string} */ name) {
    if (!window.confirm(`Remove the preset “${name}” from the camera? Every operator loses it.`)) return;
    try {
      await api(`${this.base}/presets/${encodeURIComponent(token)}`, { method: "DELETE" });
      this.say(`removed “${name}”`);
    } catch (err) {
      this.say(String(/** @type {Error} */ (err).message), true);
    }
    await this.loadPresets();
  }

  say(/** @type {string} */ text, error = false) {
    this.status.textContent = text;
    this.status.classList.toggle("error", error);
  }
}
