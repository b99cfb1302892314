"""Playing fast to a moment a stream cannot seek to (web/static/catchup.js), without a browser.

/recordings and the body-worn item page's fixed camera share this module. Node runs it against a
stand-in video whose clock moves by its playback rate each 16 ms frame, so what is checked is what a
person sees: how fast the player goes, where it stops, and what the tile says meanwhile.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import safecity

CATCH_UP = Path(safecity.__file__).parent / "web" / "static" / "catchup.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed to run the page's module")

# A video that has no seekable range (footage streamed as it is read) and a frame clock the script drives:
# `frames(n)` runs n animation frames of 16 ms, moving the video on by its rate while it plays (`rates`
# keeps the rate each frame played at).
HARNESS = """
const queue = [];
globalThis.requestAnimationFrame = (cb) => { queue.push(cb); return queue.length; };
const video = { currentTime: 0, playbackRate: 1, defaultPlaybackRate: 1, paused: true, ended: false,
  duration: 600, seekable: { length: 0, start: () => 0, end: () => 0 },
  play() { this.paused = false; return Promise.resolve(); }, pause() { this.paused = true; } };
const states = [];
const rates = [];
let elapsed = 0;  // seconds of frames run
const frames = (n) => {
  for (let i = 0; i < n; i += 1) {
    rates.push(video.playbackRate);
    elapsed += 0.016;
    const step = video.paused ? 0 : 0.016 * video.playbackRate;
    video.currentTime = Math.min(video.duration, video.currentTime + step);
    if (video.currentTime >= video.duration) { video.ended = true; video.paused = true; }
    const due = queue.splice(0, queue.length);
    for (const cb of due) cb(i * 16);
  }
};
"""


def run(scenario: str) -> dict[str, Any]:
    """Runs `scenario` (JavaScript with `m`, the module, and HARNESS's names) and returns what it prints."""
    script = f"const m = await import({json.dumps(CATCH_UP.as_uri())});\n{HARNESS}\n{scenario}\n"
    assert NODE is not None
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_the_rate_is_twice_the_gap_between_one_and_a_half_and_sixteen_times() -> None:
    rates = run(
        "console.log(JSON.stringify({ rates: [0.1, 0.75, 1, 3, 8, 20, 600].map((b) => m.catchUpRate(b)) }));"
    )["rates"]
    assert rates == [1.5, 1.5, 2, 6, 16, 16, 16]


def test_three_seconds_short_it_plays_fast_and_stops_at_the_moment_at_normal_speed() -> None:
    seen = run(
        """
        const catchUp = new m.CatchUp(video, (s) => states.push(s));
        catchUp.to(3.0);
        frames(400);
        console.log(JSON.stringify({ at: video.currentTime, rate: video.playbackRate, states,
          catching: catchUp.catching, fastest: Math.max(...rates),
          framesFast: rates.filter((r) => r > 1).length }));
        """
    )
    # Stopped within CLOSE_S of the moment, not played on at speed past it; it went on playing at 1×.
    assert 3.0 <= seen["at"] <= 3.0 + 0.05 + 400 * 0.016
    assert seen["rate"] == 1 and seen["catching"] is False
    assert seen["states"] == ["catching", "playing"]
    assert seen["fastest"] == 6  # twice the three seconds
    assert seen["framesFast"] < 200  # some 3 s of wall time, not the 3 s of footage at 1× and more


def test_the_catch_up_stops_at_the_moment_not_a_frame_past_it() -> None:
    seen = run(
        """
        let stoppedAt = null;
        const catchUp = new m.CatchUp(video, (s) => {
          states.push(s);
          if (s !== "catching") stoppedAt = video.currentTime;
        });
        catchUp.to(12.0);
        frames(2000);
        console.log(JSON.stringify({ stoppedAt, states, after: rates.slice(-5) }));
        """
    )
    assert seen["states"] == ["catching", "playing"]
    # Within CLOSE_S short of it (the last frames come at 1.5×: 0.024 s each), and at 1× from there.
    assert 12.0 - 0.05 <= seen["stoppedAt"] <= 12.0
    assert seen["after"] == [1, 1, 1, 1, 1]


def test_already_at_the_moment_it_plays_without_catching_up() -> None:
    seen = run(
        """
        video.currentTime = 4.98;
        const catchUp = new m.CatchUp(video, (s) => states.push(s));
        catchUp.to(5.0);
        frames(5);
        console.log(JSON.stringify({ states, rates }));
        """
    )
    assert seen["states"] == ["playing"]
    assert set(seen["rates"]) == {1}


def test_a_new_moment_cancels_the_one_asked_before() -> None:
    seen = run(
        """
        const catchUp = new m.CatchUp(video, (s) => states.push(s));
        catchUp.to(30.0);
        frames(10);
        const midway = video.currentTime;
        catchUp.to(midway + 1.0);
        frames(300);
        const second = video.currentTime;
        catchUp.to(100.0);
        frames(3);
        catchUp.cancel();
        const rateAfterCancel = video.playbackRate;
        frames(50);
        console.log(JSON.stringify({ midway, second, states, rateAfterCancel, queued: queue.length,
          catching: catchUp.catching }));
        """
    )
    # The first ask (30 s) would have run on at 16×; the second stopped a second on from where it was.
    assert seen["midway"] + 1.0 <= seen["second"] <= seen["midway"] + 1.0 + 300 * 0.016
    assert seen["second"] < 10
    assert seen["states"] == ["catching", "playing", "catching"]
    assert seen["rateAfterCancel"] == 1 and seen["catching"] is False and seen["queued"] == 0


def test_a_moment_that_moves_on_is_followed_until_it_is_reached() -> None:
    seen = run(
        """
        const leader = () => 2.0 + elapsed;  // a leader playing at 1×, 2 s ahead
        let reached = null;
        const catchUp = new m.CatchUp(video, (s) => {
          states.push(s);
          if (s !== "catching") reached = { at: video.currentTime, leader: leader() };
        });
        catchUp.to(leader);
        frames(600);
        console.log(JSON.stringify({ reached, states }));
        """
    )
    assert seen["states"] == ["catching", "playing"]
    reached = seen["reached"]
    assert reached["leader"] > 2.5  # it moved on while the player caught up
    assert reached["leader"] - 0.05 <= reached["at"] <= reached["leader"]


def test_footage_that_ends_before_the_moment_says_so() -> None:
    seen = run(
        """
        video.duration = 2.0;
        const catchUp = new m.CatchUp(video, (s) => states.push(s));
        catchUp.to(5.0);
        frames(400);
        console.log(JSON.stringify({ states, queued: queue.length, catching: catchUp.catching }));
        """
    )
    assert seen["states"] == ["catching", "ended"]
    assert seen["queued"] == 0 and seen["catching"] is False


def test_a_stream_the_browser_can_seek_in_jumps_there() -> None:
    seen = run(
        """
        video.seekable = { length: 1, start: () => 0, end: () => 60 };
        const catchUp = new m.CatchUp(video, (s) => states.push(s));
        catchUp.to(42.0);
        frames(2);
        console.log(JSON.stringify({ states, rates, at: video.currentTime }));
        """
    )
    assert seen["states"] == ["playing"]
    assert set(seen["rates"]) == {1}
    assert 42.0 <= seen["at"] <= 42.0 + 2 * 0.016
