"""The face camera pipeline: faces found, tracked, matched against the worker's watch-list copy, voted.

Privacy by design: a face that matches no entry stays in this process's memory for the frame only;
a match is published (with its crop, never the whole frame) only after several frames of the same
tracked face agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

import numpy as np
import supervision as sv

from safecity.core import keys
from safecity.core.bus import Subscription
from safecity.core.context import Context
from safecity.core.events import Event, FaceMatch
from safecity.faces.replication import WorkerWatchlist
from safecity.video.sources import Frame
from safecity.vision.faces import FaceVoter, default_pipeline, quality_check
from safecity.vision.objects import ObjectTracker
from safecity.worker.anpr import CameraSetup

log = logging.getLogger(__name__)


class FacePipelineRunner:
    """Turns a face camera's frames into `FaceMatch` events for watch-list entries only."""

    def __init__(self, ctx: Context, camera: CameraSetup, *, fps: float = 5.0) -> None:
        self.ctx = ctx
        self.camera = camera
        # The configured detector and encoder, shared by every camera of the process. The video
        # variant runs a fixed set of passes per frame: predictable time, and a large face cannot hide
        # a small one.
        self.pipeline = default_pipeline(
            detector=ctx.settings.face_detector, encoder=ctx.settings.face_encoder, video=True
        )
        threshold = camera.analysis.face_threshold or ctx.settings.face_threshold or self.pipeline.threshold
        # A face outside the roi zones is never matched (nor kept): judged by the centre of its box.
        self.roi = camera.roi(sv.Position.CENTER)
        # The copy holds only embeddings this pipeline's encoder made.
        self.watchlist = WorkerWatchlist(default_threshold=float(threshold), encoder=self.pipeline.encoder_id)
        # Follow the changes first, then load: a change made in between is applied, never missed.
        self._following: Subscription | None = None
        if ctx.bus.loop is not None:
            follow = asyncio.run_coroutine_threadsafe(self.watchlist.follow(ctx.bus), ctx.bus.loop)
            self._following = follow.result(10)
        with ctx.db.session() as session:
            self.watchlist.load(session)
        self.tracker = ObjectTracker(fps=fps, lost_seconds=2.0, min_iou=0.1)
        self.voter = FaceVoter(threshold=float(threshold))
        self._open: set[int] = set()
        # When each open track was first seen: with the track number it names one sighting for good.
        self._first_seen: dict[int, datetime] = {}

    def process(self, frame: Frame) -> list[Event]:
        """Finds, tracks and matches the faces of one frame; returns matches that the vote settled."""
        faces = self.pipeline.faces(frame.image)
        events: list[Event] = []
        if faces:
            xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in (f.box for f in faces)], dtype=np.float32)
            inside = self.roi.mask(sv.Detections(xyxy=xyxy))
            faces, xyxy = [f for f, keep in zip(faces, inside, strict=True) if keep], xyxy[inside]
        if faces:
            tracked = self.tracker.update(sv.Detections(xyxy=xyxy))
        else:
            tracked = self.tracker.update(sv.Detections.empty())
        track_ids: Any = tracked.tracker_id if tracked.tracker_id is not None and len(faces) else []
        for face, track_id in zip(faces, track_ids, strict=True):
            tid = int(track_id)
            self._open.add(tid)
            self._first_seen.setdefault(tid, frame.wall_time)
            if quality_check(face) is not None:
                continue  # too small, blurred or turned away: this frame says nothing about who it is
            match = self.watchlist.match(face.embedding, self.camera.camera_id, frame.wall_time)
            # Counted, never kept: how many faces were looked at and matched no one (the demo's report).
            self.ctx.count(f"faces_examined:{self.camera.camera_id}")
            if match is None:
                self.ctx.count(f"faces_matched_no_one:{self.camera.camera_id}")
            decision = self.voter.update(tid, match[0] if match else None, match[1] if match else 0.0)
            if decision is not None:
                events.append(
                    self._event(tid, decision.entry_id, decision.similarity, face.crop, frame.wall_time)
                )
        for tid in self._open - self.tracker.active:
            self.voter.end_track(tid)
            self._first_seen.pop(tid, None)
        self._open &= self.tracker.active
        return events

    def tick(self, now: datetime) -> list[Event]:
        """Faces need no end-of-track publishing: matches are published as soon as the vote settles."""
        return []

    def close(self) -> None:
        """Stops following the watch list (the camera moved to another worker or stopped)."""
        loop, following = self.ctx.bus.loop, self._following
        self._following = None
        if following is not None and loop is not None and not loop.is_closed():
            with contextlib.suppress(Exception):  # the bus is closing: the subscription goes with it
                asyncio.run_coroutine_threadsafe(following.close(), loop).result(10)

    def _event(self, tid: int, entry_id: str, similarity: float, crop: np.ndarray, at: datetime) -> FaceMatch:
        self.ctx.count("face_match_candidates")
        return FaceMatch(
            key=keys.face_match(self.camera.camera_id, entry_id, tid, self._first_seen.get(tid, at)),
            camera_id=self.camera.camera_id,
            at=at,
            entry_id=entry_id,
            similarity=round(float(similarity), 4),
            crop_ref=self.ctx.media.put_image(crop),
            track_id=tid,
        )
