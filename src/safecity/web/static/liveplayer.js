// @ts-check
// Live video of one camera in a <video>: fragmented MP4 from /ws/video/{id} appended to Media Source
// Extensions, kept near the live edge; JPEG pictures for a codec the browser cannot play; and, when there
// is no picture, a state that says why (the caller shows it). A page of many players (the wall) shares
// one socket, a VideoLink, with a channel per player; a player alone opens its own. Both reconnect.
// Message layout (safecity/live/protocol.py): kind, flags, seq (u64), wall ms (u64), payload.

const INIT = 1, FRAGMENT = 2, PICTURE = 3, STATE = 4;
const HEADER = 18;
const KEEP_S = 8;             // seconds of video kept behind the playhead
const CATCH_UP_S = 0.25;      // further behind the live edge than this: play a little faster
const JUMP_S = 1.0;           // further behind than this: jump to the edge
const STALL_MS = 3000;        // no frame for this long while connected: say so

/**
 * @typedef {{state: string, detail?: string, health_state?: string, health_detail?: string,
 *   health_since?: string|null, codec?: string, name?: string, variant?: string, health?: boolean,
 *   last_frame_ms?: number}} LiveState
 */

export class LivePlayer {
  /**
   * @param {HTMLElement} host  where the <video> and <img> go (emptied)
   * @param {{cameraId: string, variant?: string, onState?: (s: LiveState) => void, link?: VideoLink|null}} options
   *   link: the page's one socket for all its players (a socket of its own without one)
   */
  constructor(host, { cameraId, variant = "main", onState = () => {}, link = null }) {
    this.host = host;
    this.link = link;
    this.channel = 0;
    this.cameraId = cameraId;
    this.variant = variant;
    this.onState = onState;
    this.video = document.createElement("video");
    this.video.muted = true;
    this.video.autoplay = true;
    this.video.playsInline = true;
    this.video.disablePictureInPicture = true;
    this.img = document.createElement("img");
    this.img.alt = "latest picture";
    this.img.hidden = true;
    host.replaceChildren(this.video, this.img);
    /** @type {WebSocket|null} */ this.ws = null;
    /** @type {MediaSource|null} */ this.ms = null;
    /** @type {SourceBuffer|null} */ this.sb = null;
    /** @type {ArrayBuffer[]} */ this.pending = [];
    this.mime = "";
    this.timescale = 0;
    this.offsetSet = false;
    this.startTime = /** @type {number|null} */ (null);
    this.stopped = true;
    this.retries = 0;
    this.startedAt = 0;
    this.firstFrameMs = /** @type {number|null} */ (null);
    /** @type {Record<string, number>} */ this.steps = {};  // ms since start() of each step to the first frame
    this.lastFrameAt = 0;        // performance.now() of the last frame shown
    this.lastFrameWall = 0;      // wall ms the relay received the newest frame appended
    this.frames = 0;
    this.stalled = false;
    this.reason = /** @type {LiveState|null} */ (null);
    this.timer = 0;
    this.pictureUrl = "";
    this.trimmedAt = 0;
    this.onFrame = this.onFrame.bind(this);
    for (const event of ["loadedmetadata", "seeking", "seeked", "loadeddata", "canplay", "playing"]) {
      this.video.addEventListener(event, () => this.mark(event));
    }
  }

  /** Opens the socket (again); a player that is running is left alone. */
  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.startedAt = performance.now();
    this.firstFrameMs = null;
    this.steps = {};
    this.connect();
    this.attachMedia();  // while the socket opens: a MediaSource takes a while to open
    this.timer = window.setInterval(() => this.tick(), 500);
    if ("requestVideoFrameCallback" in this.video) this.video.requestVideoFrameCallback(this.onFrame);
  }

  /** Closes the socket and releases the media (the tile went away or shows another camera). */
  stop() {
    this.stopped = true;
    window.clearInterval(this.timer);
    if (this.ws) { this.ws.onclose = null; this.ws.close(); this.ws = null; }
    if (this.link && this.channel) { this.link.remove(this.channel); this.channel = 0; }
    this.resetMedia();
    if (this.pictureUrl) URL.revokeObjectURL(this.pictureUrl);
  }

  connect() {
    if (this.link) {
      this.channel = this.link.add(this);
      return;
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}/ws/video/${encodeURIComponent(this.cameraId)}?variant=${this.variant}`;
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onmessage = (event) => this.receive(event.data);
    ws.onopen = () => { this.retries = 0; this.mark("open"); };
    ws.onclose = (event) => {
      if (!this.lost(event.code, event.reason)) return;
      this.retries += 1;
      window.setTimeout(() => { if (!this.stopped) { this.connect(); this.attachMedia(); } },
        Math.min(10_000, 500 * 2 ** Math.min(this.retries, 5)));
    };
    this.ws = ws;
  }

  /** The socket closed: says why; returns whether to connect again. */
  lost(/** @type {number} */ code, /** @type {string} */ reason) {
    if (this.stopped) return false;
    if (code === 4401) { this.say({ state: "signed_out", detail: reason || "sign in again" }); return false; }
    if (code === 4403 || code === 4404) { this.say({ state: "refused", detail: reason }); return false; }
    if (this.reason && this.reason.state === "no_stream") return false;
    this.say({ state: "reconnecting", detail: "connection to the server lost; trying again" });
    return true;
  }

  /** Notes when a step towards the first frame first happened (read by bench/bench_live.py). */
  mark(/** @type {string} */ step) {
    if (this.firstFrameMs === null && !(step in this.steps)) this.steps[step] = Math.round(performance.now() - this.startedAt);
  }

  /** @param {ArrayBuffer} data */
  receive(data) {
    if (!(data instanceof ArrayBuffer) || data.byteLength < HEADER) return;
    this.mark("message");
    const view = new DataView(data);
    const kind = view.getUint8(0);
    const wallMs = Number(view.getBigUint64(10));
    if (kind === STATE) {
      const state = JSON.parse(new TextDecoder().decode(new Uint8Array(data, HEADER)));
      this.say(state);
    } else if (kind === INIT) {
      this.mark("init");
      const length = view.getUint16(HEADER);
      const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(data, HEADER + 2, length)));
      this.init(meta, data.slice(HEADER + 2 + length));
    } else if (kind === FRAGMENT) {
      if (!this.ms || !this.mime) return;
      this.mark("fragment");
      this.lastFrameWall = wallMs;
      const fragment = data.slice(HEADER);
      if (this.startTime === null) this.startTime = decodeTime(fragment);
      this.pending.push(fragment);
      this.pump();
    } else if (kind === PICTURE) {
      this.showPicture(new Blob([data.slice(HEADER)], { type: "image/jpeg" }), wallMs);
    }
  }

  /** @param {{codec: string, width: number, height: number, timescale?: number}} meta @param {ArrayBuffer} segment */
  init(meta, segment) {
    const mime = `video/mp4; codecs="${meta.codec}"`;
    if (!window.MediaSource || !MediaSource.isTypeSupported(mime)) {
      this.resetMedia();
      this.say({ state: "unplayable", detail: `this browser cannot play ${meta.codec}` });
      return;
    }
    // A new track (or the first one) on a MediaSource that already took one: start afresh.
    if (!this.ms || this.mime) this.attachMedia();
    this.mime = mime;
    this.timescale = meta.timescale || 0;
    this.startTime = /** @type {number|null} */ (null);
    this.video.hidden = false;
    this.img.hidden = true;
    this.pending = [segment];
    if (this.ms && this.ms.readyState === "open") this.addSourceBuffer(this.ms);
  }

  /** Gives the <video> a fresh MediaSource; its SourceBuffer comes with the track's INIT. */
  attachMedia() {
    this.resetMedia();
    if (!window.MediaSource) return;
    const ms = new MediaSource();
    this.ms = ms;
    ms.addEventListener("sourceopen", () => {
      if (this.ms !== ms) return;
      this.mark("sourceopen");
      if (this.mime) this.addSourceBuffer(ms);
    }, { once: true });
    this.video.src = URL.createObjectURL(ms);
  }

  /** @param {MediaSource} ms */
  addSourceBuffer(ms) {
    if (this.sb) return;
    const sb = ms.addSourceBuffer(this.mime);
    sb.mode = "segments";
    sb.addEventListener("updateend", () => { this.mark("appended"); this.pump(); });
    sb.addEventListener("error", () => this.say({ state: "error", detail: "the browser could not decode the video" }));
    this.sb = sb;
    this.offsetSet = false;
    this.pump();
  }

  resetMedia() {
    this.sb = null;
    this.pending = [];
    this.mime = "";
    if (this.ms) {
      const old = this.video.src;
      this.ms = null;
      this.video.removeAttribute("src");
      this.video.load();
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    }
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || !this.ms || this.ms.readyState !== "open") return;
    const now = performance.now();
    if (now - this.trimmedAt > 5000 && sb.buffered.length && this.video.currentTime - sb.buffered.start(0) > KEEP_S * 2) {
      this.trimmedAt = now;
      sb.remove(0, this.video.currentTime - KEEP_S);
      return;
    }
    if (!this.pending.length) return;
    if (!this.offsetSet && this.startTime !== null) {
      // The first fragment's decode time becomes time 0: the key-frame then plays where the element
      // already stands, with no seek (a pipeline flush and restart) before the first picture.
      if (this.timescale) sb.timestampOffset = -this.startTime / this.timescale;
      this.offsetSet = true;
    }
    // Frames are small: append what has arrived in one go.
    const parts = this.pending.splice(0, this.pending.length);
    const size = parts.reduce((n, p) => n + p.byteLength, 0);
    const joined = new Uint8Array(size);
    let at = 0;
    for (const p of parts) { joined.set(new Uint8Array(p), at); at += p.byteLength; }
    try {
      sb.appendBuffer(joined);
    } catch (err) {
      // QuotaExceeded: drop what we hold and start again at the next init.
      this.say({ state: "error", detail: `video buffer: ${err}` });
      this.resetMedia();
      return;
    }
    this.followEdge();
  }

  /** Keeps playback near the newest frame: a little faster when behind, a jump when far behind. */
  followEdge() {
    const v = this.video, ranges = v.buffered;
    if (!ranges.length) return;
    const end = ranges.end(ranges.length - 1), start = ranges.start(ranges.length - 1);
    if (this.firstFrameMs === null && !this.video.seeking) {
      // The first picture is the key-frame itself (one frame to decode, not a whole group of them);
      // the jump to the newest frame comes once it shows.
      if (v.currentTime < start || v.currentTime > start + 0.5) v.currentTime = start;
    } else {
      const behind = end - v.currentTime;
      if (v.currentTime < start || behind > JUMP_S) v.currentTime = Math.max(start, end - 0.1);
      else v.playbackRate = behind > CATCH_UP_S ? 1.25 : 1.0;
    }
    if (v.paused) v.play().catch(() => {});
  }

  /** @param {number} _now @param {VideoFrameCallbackMetadata} _meta */
  onFrame(_now, _meta) {
    if (this.stopped) return;
    this.frames += 1;
    this.lastFrameAt = performance.now();
    const first = this.firstFrameMs === null;
    if (first) {
      this.firstFrameMs = this.lastFrameAt - this.startedAt;
      this.host.dataset.firstFrameMs = String(Math.round(this.firstFrameMs));
      this.host.dataset.firstFrameSteps = JSON.stringify(this.steps);
    }
    // Once per change, not per frame: sixteen tiles at 25 fps would restyle the page 400 times a second.
    if (this.host.dataset.playing !== "yes") this.host.dataset.playing = "yes";
    if (first || this.stalled) { this.stalled = false; this.say({ state: "playing" }); }
    if (first) this.followEdge();  // the key-frame shows: now on to the newest frame
    this.video.requestVideoFrameCallback(this.onFrame);
  }

  /** @param {Blob} blob @param {number} wallMs */
  showPicture(blob, wallMs) {
    if (this.pictureUrl) URL.revokeObjectURL(this.pictureUrl);
    this.pictureUrl = URL.createObjectURL(blob);
    this.img.src = this.pictureUrl;
    this.img.hidden = false;
    this.video.hidden = true;
    this.lastFrameAt = performance.now();
    this.lastFrameWall = wallMs;
    const first = this.host.dataset.playing !== "picture";
    this.host.dataset.playing = "picture";
    if (first) this.say({ state: "picture" });
  }

  tick() {
    if (this.stopped) return;
    this.followEdge();
    const quiet = performance.now() - this.lastFrameAt;
    const expectsVideo = this.sb !== null;
    if (expectsVideo && this.lastFrameAt && quiet > STALL_MS && !this.stalled) {
      this.stalled = true;
      this.host.dataset.playing = "stalled";
      this.say({ state: "stalled", detail: "no new picture", last_frame_ms: Date.now() - quiet });
    }
  }

  /** @param {LiveState} state */
  say(state) {
    if (!state.health && state.state !== "playing") this.reason = state;
    this.onState(state);
  }
}

/**
 * A page's one video socket (`/ws/video`, live/sockets.py): each player watches its camera on a channel
 * of its own, so a tile switched to another camera starts without a new connection. Text commands go
 * up (`{"watch": n, "camera": id, "variant": v}`, `{"leave": n}`); each binary message comes down
 * behind the 4-byte number of its channel.
 */
export class VideoLink {
  constructor() {
    /** @type {WebSocket|null} */ this.ws = null;
    /** @type {Map<number, LivePlayer>} */ this.players = new Map();
    this.next = 1;
    this.open = false;
    this.retries = 0;
  }

  /** Starts a channel for the player; returns its number. @param {LivePlayer} player */
  add(player) {
    const channel = this.next++;
    this.players.set(channel, player);
    if (this.open) this.watch(channel, player); else this.connect();
    return channel;
  }

  /** Ends a channel. @param {number} channel */
  remove(channel) {
    if (this.players.delete(channel) && this.open && this.ws) this.ws.send(JSON.stringify({ leave: channel }));
  }

  /** @param {number} channel @param {LivePlayer} player */
  watch(channel, player) {
    if (!this.ws) return;
    this.ws.send(JSON.stringify({ watch: channel, camera: player.cameraId, variant: player.variant }));
    player.mark("open");
  }

  connect() {
    if (this.ws) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/video`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      this.open = true;
      this.retries = 0;
      for (const [channel, player] of this.players) this.watch(channel, player);
    };
    ws.onmessage = (event) => {
      const data = event.data;
      if (typeof data === "string") { console.warn("video link:", data); return; }
      if (!(data instanceof ArrayBuffer) || data.byteLength < 4) return;
      const player = this.players.get(new DataView(data).getUint32(0));
      if (player) player.receive(data.slice(4));
    };
    ws.onclose = (event) => {
      this.ws = null;
      this.open = false;
      let again = false;
      for (const player of this.players.values()) again = player.lost(event.code, event.reason) || again;
      if (!again) return;
      this.retries += 1;
      window.setTimeout(() => {
        if (!this.players.size || this.ws) return;
        for (const player of this.players.values()) player.attachMedia();
        this.connect();
      }, Math.min(10_000, 500 * 2 ** Math.min(this.retries, 5)));
    };
    this.ws = ws;
  }
}

/**
 * Returns a fragment's decode time (its tfdt, in the track's timescale), or null where it has none.
 * @param {ArrayBuffer} fragment  moof+mdat
 */
export function decodeTime(fragment) {
  const bytes = new Uint8Array(fragment, 0, Math.min(fragment.byteLength, 256));
  const view = new DataView(fragment);
  for (let i = 4; i + 16 <= bytes.length; i++) {
    if (bytes[i] === 0x74 && bytes[i + 1] === 0x66 && bytes[i + 2] === 0x64 && bytes[i + 3] === 0x74) {  // "tfdt"
      return bytes[i + 4] === 1 ? Number(view.getBigUint64(i + 8)) : view.getUint32(i + 8);
    }
  }
  return null;
}

/** Why a tile has no picture, in words, from what the socket said and the camera's health. */
export function reasonText(/** @type {LiveState} */ s, /** @type {(iso: string|null|undefined) => string} */ at) {
  const since = s.health_since ? ` since ${at(s.health_since)}` : "";
  switch (s.state) {
    case "no_stream": return s.detail || "no stream configured";
    case "unplayable": return s.detail || "codec not playable in the browser";
    case "waiting": {
      const health = s.health_state || "unknown";
      if (health === "unknown") return "no picture: no worker has reported this camera yet";
      if (health === "online") return "no picture for a few seconds, though the camera was last reported online";
      return `${health.replaceAll("_", " ")}${since}${s.health_detail ? ` — ${s.health_detail}` : ""}`;
    }
    case "stalled": return `no new picture since ${at(new Date(s.last_frame_ms || Date.now()).toISOString())}`;
    case "reconnecting": return s.detail || "reconnecting";
    case "offline": return `offline${since}${s.detail ? ` — ${s.detail}` : ""}`;
    default: return s.detail || s.state.replaceAll("_", " ");
  }
}
