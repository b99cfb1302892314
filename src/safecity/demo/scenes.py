"""Rendered traffic scenes for the synthetic city, served to the pipeline as `synthetic://` cameras.

Each camera looks down a one-way road; vehicles carrying Pakistani-format plates drive towards it.
A junction camera also shows a signal head that cycles green, amber and red, and a stop line. The
`TrafficPlan` decides which vehicle passes which camera when, and how fast, so one vehicle crosses
the entry and then the exit camera of a speed section, a stolen car turns up, another runs a red
light, and a cloned plate appears at two cameras too far apart. Frames go through the same
`CameraStream` and pipelines as a real camera's.

A process that was not given a plan (a `safecity worker` of its own, beside a centre that built the
city) gets `SteadyTraffic`: vehicles computed from the wall clock, so every process shows the same
vehicle at the same camera at the same moment, and a camera that moves to another worker carries on
with the same traffic.

A pass in the `motorcycle` style is a rider coming towards the camera; one that names a `face` wears
that head (`SyntheticSource.faces`: a person's photo cut to an oval, put there by the demo), so a face
camera's pipeline has a real face to find and match, other riders wear helmets.

`fault=drop@20` makes the camera drop its stream after 20 s and refuse to reconnect (a dead camera);
`stamp=1` draws the wall-clock time into each frame (`live/stamp.py`) to measure live video latency.

A synthetic camera has no compressed stream of its own; when the recorder asks for packets
(`on_packet`), its frames are encoded to H.264 as they are rendered, so the demo's cameras are
recorded, played back and exported like real ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import io
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
import cv2
import numpy as np
import numpy.typing as npt

from safecity.core.clock import utcnow
from safecity.demo.ptz import view_of
from safecity.live.stamp import stamp
from safecity.video.sources import (
    CameraUnreachable,
    Frame,
    PacketCallback,
    SourceInfo,
    SourceOptions,
    register_scheme,
)

WIDTH, HEIGHT = 640, 360
PIXELS_PER_METRE = 12.0
ROAD_X = (170, 470)
STOP_LINE_Y = 210
SIGNAL_BOX = (560, 20, 40, 100)
SIGNAL_CYCLE = (("green", 14.0), ("amber", 3.0), ("red", 12.0))
# Time zero of steady traffic (2026-01-01 UTC): every process counts the same seconds from it.
STEADY_EPOCH = 1_767_225_600.0
PLATE_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
ENTRY_ROW = -170  # a vehicle enters the picture with its top this far above it
COLOURS = ((200, 200, 200), (40, 40, 160), (150, 60, 30), (30, 30, 30), (60, 140, 200), (90, 90, 90))

Image = npt.NDArray[np.uint8]


@dataclass(order=True)
class Pass:
    """One vehicle passing one camera: when it enters the picture, its plate, speed and look."""

    start: float
    plate: str = field(compare=False)
    speed_kmh: float = field(compare=False)
    colour: tuple[int, int, int] = field(compare=False)
    style: str = field(compare=False, default="sindh")
    lane: int = field(compare=False, default=0)
    note: str = field(compare=False, default="")
    face: str = field(compare=False, default="")  # a rider's head, by its name in `SyntheticSource.faces`
    # Where the vehicle's top waits (picture row) and for how long: a rider stopped at the chowk.
    halt: tuple[float, float] | None = field(compare=False, default=None)

    def top_at(self, seconds: float) -> float:
        """Returns the picture row of the vehicle's top `seconds` after it entered the picture."""
        speed_px = self.speed_kmh / 3.6 * PIXELS_PER_METRE
        if self.halt is not None:
            row, wait = self.halt
            reached = (row - ENTRY_ROW) / speed_px
            if seconds > reached:
                seconds = max(reached, seconds - wait)
        return ENTRY_ROW + seconds * speed_px


@dataclass(frozen=True)
class Head:
    """A rider's head as a camera sees it: a BGR picture and the oval mask that cuts it out."""

    image: Image
    mask: npt.NDArray[np.bool_]


def display_plate(plate: str) -> str:
    """Returns how a compact plate is painted: letters, a dash, digits (e.g. BKR-294)."""
    letters = "".join(c for c in plate if c.isalpha())
    digits = "".join(c for c in plate if c.isdigit())
    return f"{letters}-{digits}"


def signal_phase(t: float) -> str:
    """Returns the junction's phase `t` seconds after the demo started."""
    period = sum(d for _, d in SIGNAL_CYCLE)
    into = t % period
    for phase, duration in SIGNAL_CYCLE:
        if into < duration:
            return phase
        into -= duration
    return "red"


def time_to_cross(speed_kmh: float, metres: float) -> float:
    """Seconds a vehicle at `speed_kmh` needs for `metres`."""
    return metres / (speed_kmh / 3.6)


class TrafficPlan:
    """Which vehicles pass which camera when; shared by every synthetic camera of one demo."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.monotonic() if start is None else start
        self._passes: dict[str, list[Pass]] = {}
        self._lock = threading.Lock()

    def add(self, camera_id: str, vehicle: Pass) -> None:
        """Schedules a vehicle at a camera."""
        with self._lock:
            heapq.heappush(self._passes.setdefault(camera_id, []), vehicle)

    def due(self, camera_id: str, now: float) -> list[Pass]:
        """Returns (and removes) the passes of a camera that start by `now`."""
        out = []
        with self._lock:
            queue = self._passes.get(camera_id, [])
            while queue and queue[0].start <= now:
                out.append(heapq.heappop(queue))
        return out

    def elapsed(self) -> float:
        """Returns seconds since the plan started."""
        return time.monotonic() - self.start

    def fault_origin(self, opened_at: float) -> float:
        """Returns the plan time that a URL's `fault=…@seconds` counts from: the plan's start."""
        return 0.0


class SteadyTraffic(TrafficPlan):
    """Traffic computed from the clock: about one vehicle every `every_s` seconds at every camera.

    Processes that share no memory agree on it: the vehicles of a camera in a given slot of time
    come from a generator seeded with the plan's seed, the camera and the slot.
    """

    def __init__(self, seed: str = "default", *, every_s: float = 8.0, share: float = 0.85) -> None:
        super().__init__(start=time.monotonic() - (time.time() - STEADY_EPOCH))
        self.seed = seed
        self.every_s = every_s
        self.share = share
        self._next_slot: dict[str, int] = {}

    def due(self, camera_id: str, now: float) -> list[Pass]:
        """Returns the planned passes and the computed vehicles of a camera that start by `now`."""
        out = super().due(camera_id, now)
        with self._lock:
            slot = self._next_slot.get(camera_id, int(now // self.every_s))
            while slot * self.every_s <= now:
                vehicle = self.vehicle(camera_id, slot)
                if vehicle is not None and vehicle.start > now:
                    break
                if vehicle is not None:
                    out.append(vehicle)
                slot += 1
            self._next_slot[camera_id] = slot
        return out

    def vehicle(self, camera_id: str, slot: int) -> Pass | None:
        """Returns the vehicle that passes a camera in one slot of time, if any (the same everywhere)."""
        digest = hashlib.blake2b(f"{self.seed}:{camera_id}:{slot}".encode(), digest_size=8).digest()
        rng = random.Random(int.from_bytes(digest, "big"))
        if rng.random() >= self.share:
            return None
        plate = "".join(rng.choice(PLATE_LETTERS) for _ in range(3)) + f"{rng.randint(100, 999)}"
        start = slot * self.every_s + rng.uniform(0, self.every_s / 2)
        return Pass(start, plate, rng.uniform(30, 60), rng.choice(COLOURS), lane=rng.randint(0, 1))

    def fault_origin(self, opened_at: float) -> float:
        """Steady traffic has no common start: a URL's fault counts from when the camera opened."""
        return opened_at


@dataclass
class _OnRoad:
    vehicle: Pass
    entered: float


class SceneRenderer:
    """Draws one camera's view: road, lane marks, stop line and signal (junctions), vehicles."""

    def __init__(
        self, camera_id: str, *, junction: bool, seed: int, faces: dict[str, Head] | None = None
    ) -> None:
        self.camera_id = camera_id
        self.junction = junction
        self.faces = faces if faces is not None else {}
        self.rng = random.Random(seed)
        self.background = self._background()
        self.on_road: list[_OnRoad] = []
        self.fault: str | None = None
        # A real sensor never delivers two identical pictures: cycle a few frames of noise.
        noise_rng = np.random.default_rng(seed)
        self.grain = [noise_rng.integers(0, 6, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(7)]
        self.frame_no = 0

    def _background(self) -> Image:
        img = np.full((HEIGHT, WIDTH, 3), (70, 110, 80), np.uint8)
        noise = np.random.default_rng(self.rng.randrange(1 << 30)).integers(
            0, 12, (HEIGHT, WIDTH, 1), dtype=np.uint8
        )
        img = np.asarray(cv2.add(img, np.repeat(noise, 3, axis=2)), dtype=np.uint8)
        cv2.rectangle(img, (ROAD_X[0], 0), (ROAD_X[1], HEIGHT), (80, 80, 80), -1)
        mid = (ROAD_X[0] + ROAD_X[1]) // 2
        for y in range(0, HEIGHT, 40):
            cv2.line(img, (mid, y), (mid, y + 20), (230, 230, 230), 2)
        cv2.putText(img, self.camera_id, (8, HEIGHT - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
        if self.junction:
            cv2.line(img, (ROAD_X[0], STOP_LINE_Y), (ROAD_X[1], STOP_LINE_Y), (255, 255, 255), 4)
        return img

    def render(self, t: float, arrivals: list[Pass]) -> Image:
        """Returns the picture at `t` seconds, adding `arrivals` and dropping vehicles that left."""
        for vehicle in arrivals:
            self.on_road.append(_OnRoad(vehicle, t))
        frame = self.background.copy()
        if self.junction:
            self._signal(frame, signal_phase(t))
        keep = []
        for car in self.on_road:
            y = car.vehicle.top_at(t - car.entered)
            if y > HEIGHT + 5:
                continue
            keep.append(car)
            if car.vehicle.style == "motorcycle":
                self._rider(frame, car.vehicle, int(y))
            else:
                self._vehicle(frame, car.vehicle, int(y))
        self.on_road = keep
        self.frame_no += 1
        cv2.add(frame, self.grain[self.frame_no % len(self.grain)], dst=frame)
        return self._apply_fault(frame)

    def _signal(self, frame: Image, phase: str) -> None:
        x, y, w, h = SIGNAL_BOX
        cv2.rectangle(frame, (x, y), (x + w, y + h), (20, 20, 20), -1)
        lamps = {"red": (0, 0, 255), "amber": (0, 190, 255), "green": (0, 220, 0)}
        for i, name in enumerate(("red", "amber", "green")):
            colour = lamps[name] if name == phase else (50, 50, 50)
            cv2.circle(frame, (x + w // 2, y + 17 + i * 33), 12, colour, -1)

    def _vehicle(self, frame: Image, vehicle: Pass, top: int) -> None:
        lane_x = ROAD_X[0] + 20 + vehicle.lane * 150
        x1, y1, x2, y2 = lane_x, top, lane_x + 130, top + 170
        cv2.rectangle(frame, (x1, y1), (x2, y2), vehicle.colour, -1)
        cv2.rectangle(frame, (x1 + 12, y1 + 20), (x2 - 12, y1 + 70), (40, 40, 40), -1)  # windscreen
        plate_bg = (0, 215, 255) if vehicle.style == "sindh" else (240, 240, 240)
        px1, py1, px2, py2 = x1 + 8, y2 - 44, x2 - 8, y2 - 10
        cv2.rectangle(frame, (px1, py1), (px2, py2), plate_bg, -1)
        cv2.rectangle(frame, (px1, py1), (px2, py2), (0, 0, 0), 1)
        text = display_plate(vehicle.plate)
        scale = 0.85 if len(text) <= 7 else 0.72
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, 2)
        cv2.putText(
            frame,
            text,
            (px1 + (px2 - px1 - tw) // 2, py1 + (py2 - py1 + th) // 2),
            cv2.FONT_HERSHEY_DUPLEX,
            scale,
            (0, 0, 0),
            2,
            cv2.LINE_AA,
        )

    def _rider(self, frame: Image, vehicle: Pass, top: int) -> None:
        """Draws a motorcyclist riding towards the camera: head, shoulders, handlebar, front wheel."""
        centre = ROAD_X[0] + 75 + vehicle.lane * 150
        head = self.faces.get(vehicle.face)
        head_h, head_w = head.image.shape[:2] if head is not None else (70, 56)
        neck = top + head_h
        cv2.rectangle(frame, (centre - 55, neck - 4), (centre + 55, neck + 95), vehicle.colour, -1)  # torso
        cv2.line(frame, (centre - 85, neck + 100), (centre + 85, neck + 100), (25, 25, 25), 7)  # handlebar
        cv2.rectangle(frame, (centre - 30, neck + 95), (centre + 30, neck + 150), (30, 30, 30), -1)  # fairing
        cv2.circle(frame, (centre, neck + 125), 13, (200, 240, 255), -1)  # headlamp
        cv2.ellipse(frame, (centre, neck + 180), (16, 34), 0, 0, 360, (15, 15, 15), -1)  # front wheel
        x0, y0 = centre - head_w // 2, top
        if head is None:
            cv2.ellipse(
                frame, (centre, top + head_h // 2), (head_w // 2, head_h // 2), 0, 0, 360, (20, 20, 160), -1
            )
            cv2.rectangle(frame, (centre - 20, top + 22), (centre + 20, top + 40), (40, 40, 40), -1)  # visor
            return
        # Only the part of the head inside the picture is drawn: it rides in from the top edge.
        ya, yb = max(0, -y0), min(head_h, HEIGHT - y0)
        xa, xb = max(0, -x0), min(head_w, WIDTH - x0)
        if ya >= yb or xa >= xb:
            return
        region = frame[y0 + ya : y0 + yb, x0 + xa : x0 + xb]
        mask = head.mask[ya:yb, xa:xb]
        region[mask] = head.image[ya:yb, xa:xb][mask]

    def _apply_fault(self, frame: Image) -> Image:
        if self.fault == "covered":
            return np.full_like(frame, 25)
        if self.fault == "dark":
            return (frame * 0.08).astype(np.uint8)
        return frame


class H264Encoder:
    """Encodes rendered frames to H.264 packets for a recorder, as a camera's own encoder would.

    The packets belong to a stream of an output container that is never written: it is only the
    template the recorder copies (`packet.stream`), as it copies a real camera's input stream.
    """

    TIME_BASE = Fraction(1, 1000)

    def __init__(
        self, fps: float, on_packet: PacketCallback, *, width: int = WIDTH, height: int = HEIGHT
    ) -> None:
        self.on_packet = on_packet
        self._container: Any = av.open(io.BytesIO(), "w", format="mpegts")
        stream: Any = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = self.TIME_BASE
        # A key-frame every 2 s: recordings are cut and played from key-frames.
        stream.codec_context.gop_size = max(1, round(fps * 2))
        stream.codec_context.thread_count = 1
        # The fastest preset at a quality that keeps plates legible: the demo's cameras share two cores.
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "28"}
        self.stream = stream
        self._last_pts = -1

    def encode(self, image: Image, pts_seconds: float) -> None:
        """Encodes one BGR frame shown at `pts_seconds` (stream time) and hands its packets on."""
        pts = max(round(pts_seconds / self.TIME_BASE), self._last_pts + 1)
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = pts, self.TIME_BASE
        for packet in self.stream.encode(frame):
            self.on_packet(packet)

    def close(self) -> None:
        """Flushes the encoder's last packets to the recorder."""
        with contextlib.suppress(Exception):  # an encoder that never received a frame has nothing
            for packet in self.stream.encode(None):
                self.on_packet(packet)
        with contextlib.suppress(Exception):  # nothing was ever written to the template container
            self._container.close()


def ptz_view(image: Image, view: tuple[float, float, float] | None) -> Image:
    """The part of `image` a PTZ camera pointing at `view` (pan, tilt, zoom) sees, at full size.

    Zoom 0 already shows two thirds of the scene, so panning and tilting move the picture at any zoom;
    zoom 1 shows a quarter of its width.
    """
    if view is None:
        return image
    pan, tilt, zoom = view
    scale = 1.5 + 2.5 * zoom
    width, height = int(WIDTH / scale), int(HEIGHT / scale)
    left = int((WIDTH - width) * (pan + 1) / 2)
    top = int((HEIGHT - height) * (1 - tilt) / 2)
    crop = image[top : top + height, left : left + width]
    return np.asarray(cv2.resize(crop, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR), np.uint8)


class SyntheticSource:
    """A `FrameSource` for `synthetic://<scene>/<camera_id>?fps=10&seed=1[&fault=covered@20][&ptz=1]`.

    `ptz=1`: the picture is what the simulated PTZ camera steering `camera_id` (`demo/ptz.py`) points at.
    """

    plans: dict[str, TrafficPlan] = {}
    # The riders' heads a plan's passes name (`Pass.face`), set by the demo in this process.
    faces: dict[str, Head] = {}
    _plans_lock = threading.Lock()

    def __init__(self, url: str, options: SourceOptions) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.scene = parts.netloc
        self.camera_id = parts.path.strip("/")
        self.fps = float(query.get("fps", ["10"])[0])
        self.plan_name = query.get("plan", ["default"])[0]
        seed = int(query.get("seed", ["1"])[0])
        fault = query.get("fault", [""])[0]
        self.fault, _, at = fault.partition("@")
        self.fault_at = float(at) if at else None
        self.stamp = query.get("stamp", ["0"])[0] == "1"
        self.ptz = query.get("ptz", ["0"])[0] == "1"
        self.renderer = SceneRenderer(
            self.camera_id, junction=self.scene == "junction", seed=seed, faces=self.faces
        )
        self._closed = threading.Event()
        self.on_packet = options.on_packet
        codec = "h264" if self.on_packet is not None else "synthetic"
        self._info = SourceInfo(codec=codec, width=WIDTH, height=HEIGHT, fps=self.fps, live=True)

    @property
    def info(self) -> SourceInfo:
        return self._info

    def open(self) -> None:
        self._closed.clear()

    @classmethod
    def plan(cls, name: str) -> TrafficPlan:
        """Returns the plan `name` of this process: the one the demo set, else steady traffic."""
        with cls._plans_lock:
            return cls.plans.setdefault(name, SteadyTraffic(name))

    def frames(self) -> Iterator[Frame]:
        encoder = H264Encoder(self.fps, self.on_packet) if self.on_packet is not None else None
        try:
            yield from self._frames(encoder)
        finally:
            if encoder is not None:
                encoder.close()

    def _frames(self, encoder: H264Encoder | None) -> Iterator[Frame]:
        plan = self.plan(self.plan_name)
        origin = plan.fault_origin(plan.elapsed())
        index = int(plan.elapsed() * self.fps)  # frames are numbered on the plan's clock
        while not self._closed.is_set():
            t = plan.elapsed()
            if self.fault_at is not None and t - origin >= self.fault_at:
                if self.fault == "drop":
                    raise CameraUnreachable(
                        f"synthetic camera {self.camera_id} dropped its stream", hint="it is a demo fault"
                    )
                self.renderer.fault = self.fault
            image = self.renderer.render(t, plan.due(self.camera_id, t))
            if self.ptz:
                image = ptz_view(image, view_of(self.camera_id))
            if self.stamp:
                stamp(image, int(time.time() * 1000))
            wall: datetime = utcnow()
            if encoder is not None:
                encoder.encode(image, index / self.fps)
            yield Frame(image=image, pts_seconds=index / self.fps, wall_time=wall, keyframe=True, index=index)
            index += 1
            next_due = plan.start + index / self.fps
            delay = next_due - time.monotonic()
            if delay > 0:
                self._closed.wait(delay)
            elif delay < -1.0:
                # Analysis fell behind: skip ahead rather than build a backlog, as a live camera would.
                index = int((time.monotonic() - plan.start) * self.fps)

    def close(self) -> None:
        self._closed.set()


register_scheme("synthetic", SyntheticSource)
