"""Searching recorded footage for a face: investigators only, with a case reference and a reason.

Decodes the key-frames of the chosen cameras' segments in the time window, runs the face pipeline on
each and compares every face with the searched one. Only faces at or above the operating threshold
are kept (their crops become the search's evidence); every other face is dropped with its frame.
The search is bounded in camera-hours so one request cannot tie up a worker for a day of video.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

import numpy as np
from sqlalchemy.orm import Session

from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.core.clock import as_utc
from safecity.core.errors import InvalidInput, SafeCityError
from safecity.core.images import ImageLimits
from safecity.core.media import MediaStore
from safecity.faces.models import RecordingHit
from safecity.faces.service import NamedEncoder, encode_photo
from safecity.recordings import service as recordings
from safecity.settings import Settings
from safecity.video.sources import open_source
from safecity.vision.faces import FacePipeline, default_pipeline, enrolment_face

MAX_CAMERA_HOURS = 2.0
MAX_HITS = 200


def search_recordings(
    session: Session,
    settings: Settings,
    media: MediaStore,
    photo: bytes,
    *,
    actor: str,
    case_reference: str,
    reason: str,
    camera_ids: list[str],
    start: datetime,
    end: datetime,
    threshold: float,
    pipeline: FacePipeline | None = None,
) -> list[RecordingHit]:
    """Returns the recorded moments showing the face in `photo`, best first (audited)."""
    if len(case_reference.strip()) < 3:
        raise InvalidInput("a footage search needs a case reference", hint="give the FIR or case number")
    if len(reason.strip()) < 3:
        raise InvalidInput("a footage search needs a reason", hint="say why, for the audit log")
    start, end = as_utc(start), as_utc(end)
    if not camera_ids:
        raise InvalidInput("no cameras given", hint="name the cameras whose footage to search")
    if end <= start:
        raise InvalidInput("the search window ends before it starts", hint="check --from and --to")
    camera_hours = (end - start).total_seconds() / 3600 * len(camera_ids)
    if camera_hours > MAX_CAMERA_HOURS:
        raise InvalidInput(
            f"the search covers {camera_hours:.1f} camera-hours; at most {MAX_CAMERA_HOURS:g} at a time",
            hint="narrow the time window or search fewer cameras",
        )
    for camera_id in camera_ids:
        cameras.get(session, camera_id)
    limits = ImageLimits.from_settings(settings)
    pipe = pipeline or default_pipeline(
        detector=settings.face_detector, encoder=settings.face_encoder, video=True
    )
    # The searched photo goes through the enrolment rules with the frames' own encoder: a similarity
    # between two encoders' embeddings would mean nothing.
    encoder = NamedEncoder(lambda image: enrolment_face(image, pipe).embedding[None, :], pipe.encoder_id)
    query = encode_photo(photo, encoder, label="search photo", limits=limits)[0]
    query = query / np.linalg.norm(query)
    hits: list[RecordingHit] = []
    frames_searched = 0
    for camera_id in camera_ids:
        for segment in recordings.segments_between(session, camera_id=camera_id, start=start, end=end):
            path = recordings.segment_file(session, segment, settings)
            try:
                source = open_source(str(path), decode="keyframes")
            except SafeCityError:
                continue  # a segment lost to retention or a failed disk: the rest still count
            try:
                first_pts: float | None = None
                for frame in source.frames():
                    first_pts = frame.pts_seconds if first_pts is None else first_pts
                    at = segment.start + timedelta(seconds=frame.pts_seconds - first_pts)
                    if not start <= at < end:
                        continue
                    frames_searched += 1
                    for face in pipe.faces(frame.image):
                        similarity = float(np.clip(query @ face.embedding, 0.0, 1.0))
                        if similarity < threshold:
                            continue
                        hits.append(
                            RecordingHit(
                                camera_id=camera_id,
                                at=at,
                                similarity=round(similarity, 4),
                                crop_ref=media.put_image(face.crop),
                                play_url=f"/recordings?camera={quote(camera_id)}&at={quote(at.isoformat())}",
                            )
                        )
            except SafeCityError:
                pass  # a damaged segment ends early; what it yielded stands
            finally:
                source.close()
    hits.sort(key=lambda hit: hit.similarity, reverse=True)
    audit.record(
        session,
        actor=actor,
        action="faces.recordings_search",
        target=case_reference.strip(),
        detail={
            "reason": reason.strip(),
            "cameras": camera_ids,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "frames": frames_searched,
            "hits": len(hits),
        },
    )
    return hits[:MAX_HITS]
