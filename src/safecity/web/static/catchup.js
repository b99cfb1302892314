// @ts-check
// Brings a recorded video to a moment it cannot seek to: footage is streamed from the key-frame before the
// moment, as it is read from the disk, so the browser finds no seekable range in it and the player plays
// fast until it gets there. Used by /recordings and by the body-worn item page's fixed camera. The rate and
// the stop are plain functions, so Node tests them without a browser (tests/recordings).

/** Near enough to the moment asked for: seconds of footage. */
export const CLOSE_S = 0.05;
/** Chromium refuses a playbackRate above 16 (NotSupportedError). */
export const MAX_RATE = 16;
/** The slowest catch-up: a gap that closes at half a second per second. */
export const MIN_RATE = 1.5;

/**
 * How fast to play when `behind` seconds short of the moment. Twice the gap, so the player slows as it
 * comes near and a frame's step at the end (16 ms at 1.5×: 0.02 s of footage) stays inside CLOSE_S,
 * where a flat rate (liveplayer.js's 1.25× for the live edge) would take seconds and one of 16× would
 * overshoot by a quarter of a second a frame. Never under MIN_RATE: at twice a gap under half a second
 * the rate falls to 1× or less and the gap would never close.
 * @param {number} behind  seconds of footage still to play before the moment
 * @returns {number}
 */
export function catchUpRate(behind) {
  return Math.min(MAX_RATE, Math.max(MIN_RATE, behind * 2));
}

/**
 * Whether the player is at the moment (or past it: playing on is never undone by playing backward).
 * @param {number} behind  seconds of footage still to play before the moment
 */
export const arrived = (behind) => behind <= CLOSE_S;

/**
 * What the player is doing: playing fast to the moment, at it (playing or paused), or at the end of its
 * footage before it got there.
 * @typedef {"catching"|"playing"|"paused"|"ended"} CatchState
 */

/**
 * One video's catch-up. `to(want)` plays on to `want` (seconds of the stream, or a function read every
 * frame when the moment moves, as a leader's playhead does), and cancels any earlier ask; `onState` hears
 * "catching" once when it starts and "playing"/"paused" when it gets there ("ended" when the footage
 * ends first).
 *
 *     const catchUp = new CatchUp(video, (s) => { tile.dataset.state = s; });
 *     video.addEventListener("loadedmetadata", () => catchUp.to(3.0), { once: true });
 */
export class CatchUp {
  /**
   * @param {HTMLVideoElement} video
   * @param {(state: CatchState) => void} onState
   */
  constructor(video, onState) {
    this.video = video;
    this.onState = onState;
    /** Whether the video plays fast to a moment now. */
    this.catching = false;
    /** Bumped by every ask and cancel: a frame of an earlier ask stops there. */
    this.token = 0;
  }

  /** @param {number | (() => number)} want  seconds into the stream: a number, or a function read each frame */
  to(want) {
    const token = ++this.token, video = this.video;
    const wanted = typeof want === "function" ? want : () => want;
    const first = wanted();
    if (!arrived(first) && seekable(video, first)) video.currentTime = first;
    const step = () => {
      if (token !== this.token) return;
      const behind = wanted() - video.currentTime;
      if (arrived(behind) || video.ended) {
        this.stop();
        this.onState(video.ended && !arrived(behind) ? "ended" : video.paused ? "paused" : "playing");
        return;
      }
      if (!this.catching) { this.catching = true; this.onState("catching"); }
      video.playbackRate = catchUpRate(behind);
      requestAnimationFrame(step);
    };
    video.play().catch(() => {});
    step();
  }

  /** Stops playing fast (a new moment was asked, or the footage went); the video keeps its place. */
  cancel() {
    this.token += 1;
    this.stop();
  }

  /** @private */
  stop() {
    if (this.catching) this.video.playbackRate = this.video.defaultPlaybackRate;
    this.catching = false;
  }
}

/**
 * Whether the browser can seek `video` to `s` seconds (a file it has whole can; a stream it cannot).
 * @param {HTMLVideoElement} video
 * @param {number} s
 */
function seekable(video, s) {
  for (let i = 0; i < video.seekable.length; i += 1) {
    if (video.seekable.start(i) <= s && s <= video.seekable.end(i)) return true;
  }
  return false;
}
