"""The seed story, told again by the synthetic city: Karachi's first arrest by facial recognition.

A face camera flagged a wanted man on a motorcycle, the alert reached the command centre, the nearest
officers were sent to stop and confirm him, and they arrested him. In the demo a man from the shared
face set (`../shared/data/faces`, read in place, never copied) rides past the Regal Chowk face camera
about once a minute, wearing the face of one of his photos; the watch list holds another photo of
him. The face pipeline matches him, the match reaches the alert queue beside his watch-list photo,
and the demo's crew (`demo/crew.py`) sends the nearest unit and confirms the arrest from the field.
Without the shared photos the city runs without this story, and says so.

Its counterpart: a man on no watch list (another person of the same set) rides past the airport's
face camera each minute, waiting there as long. The pipeline finds and examines his face and keeps
nothing of it — no crop, no embedding, no row — which `stranger_report` shows from the pipeline's
counters and the database.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.alerts import service as alerts
from safecity.cameras import service as cameras
from safecity.core import images
from safecity.core.clock import utcnow
from safecity.core.media import MediaStore
from safecity.demo.scenes import Head
from safecity.dispatch import service as dispatch
from safecity.faces import service as faces
from safecity.faces.models import FaceMatchRecord
from safecity.vision.faces import default_pipeline

#: The face camera the wanted man rides past, and the name his head has in the synthetic scenes.
FACE_CAM = "khi-so-face-03"
RIDER_FACE = "wanted"
#: Men of the shared face set with a watch-list photo and another photo of them (labels.csv), in the
#: order they are tried; any other person with two photos does when none of them is there.
PREFERRED_PEOPLE = ("df_p05", "fr_obama", "df_p12", "df_p10", "fr_biden")
#: How wide his face is in the face camera's 640×360 picture: a camera at a choke point, zoomed in.
FACE_PX = 80
#: The face camera an unlisted man rides past, the name of his head, and the people tried for him.
STRANGER_CAM = "khi-ma-face-01"
STRANGER_FACE = "stranger"
PREFERRED_STRANGERS = ("df_p01", "df_p03", "fr_alex_lacamoire", "fr_kit_harington")
ENTRY_NAME = "Demo suspect, street snatcher on a motorcycle"
LEGAL_BASIS = "FIR 101/2026, PS Artillery Maidan (demo)"


class StoryUnavailable(Exception):
    """The shared face photos are not there (or unusable): the demo runs without the face story."""


@dataclass(frozen=True)
class WantedPerson:
    """The wanted man: who he is in the shared set, the photo the watch list holds, the one he wears."""

    person_id: str
    watchlist_photo: Path
    street_photo: Path


def default_faces_dir() -> Path:
    """Returns where the shared face set is looked for: ../shared/data/faces beside the project."""
    project = Path(__file__).resolve().parents[3]
    candidates = [
        Path.cwd().parent / "shared" / "data" / "faces",
        project.parent / "shared" / "data" / "faces",
    ]
    return next((c for c in candidates if c.is_dir()), candidates[-1])


def find_wanted(folder: Path) -> WantedPerson:
    """Returns a man with a watch-list photo and a second photo in the shared set's labels.csv."""
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise StoryUnavailable(f"no face photos at {folder} (labels.csv is missing)")
    photos: dict[str, dict[str, list[Path]]] = {}
    with labels.open(newline="") as rows:
        reader = csv.DictReader(rows)
        missing = {"file", "person_id", "role"} - set(reader.fieldnames or [])
        if missing:
            raise StoryUnavailable(f"{labels} has no column {', '.join(sorted(missing))}")
        for row in reader:
            if row.get("role") in ("gallery", "probe") and (folder / row["file"]).is_file():
                photos.setdefault(row["person_id"], {}).setdefault(row["role"], []).append(
                    folder / row["file"]
                )
    usable = [p for p, roles in photos.items() if roles.get("gallery") and roles.get("probe")]
    if not usable:
        raise StoryUnavailable(f"no person with two photos in {labels}")
    person = next((p for p in PREFERRED_PEOPLE if p in usable), usable[0])
    return WantedPerson(person, photos[person]["gallery"][0], photos[person]["probe"][0])


@dataclass(frozen=True)
class Stranger:
    """A man on no watch list: who he is in the shared set and the photo whose face he wears."""

    person_id: str
    photo: Path


def find_stranger(folder: Path, *, besides: str | None) -> Stranger:
    """Returns a person of the shared set other than `besides`, from a photo of him alone."""
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise StoryUnavailable(f"no face photos at {folder} (labels.csv is missing)")
    found: dict[str, Path] = {}
    unknown: list[str] = []  # people the set has one photo of, enrolled nowhere: strangers by design
    with labels.open(newline="") as rows:
        for row in csv.DictReader(rows):
            person, role = row.get("person_id") or "", row.get("role") or ""
            photo = folder / (row.get("file") or "")
            usable = role in ("gallery", "probe", "unknown_probe") and ";" not in person and photo.is_file()
            if person and person != besides and usable:
                found.setdefault(person, photo)
                if role == "unknown_probe":
                    unknown.append(person)
    if not found:
        raise StoryUnavailable(f"no other person than {besides} with a photo of his own in {labels}")
    person = next((p for p in (*unknown, *PREFERRED_STRANGERS) if p in found), next(iter(found)))
    return Stranger(person, found[person])


def rider_head(photo: bytes, *, face_px: int = FACE_PX) -> Head:
    """Returns the head of the person in `photo`, scaled so the face is `face_px` wide, cut to an oval."""
    image = images.decode_image(photo, label="street photo")
    found = default_pipeline().faces(image)
    if not found:
        raise StoryUnavailable("no face found in the wanted man's street photo")
    x, y, w, h = found[0].box
    side = 1.5 * max(w, h)
    cx, cy = x + w / 2, y + h / 2
    top, bottom = int(max(0, cy - 0.55 * side)), int(min(image.shape[0], cy + 0.5 * side))
    left, right = int(max(0, cx - side / 2)), int(min(image.shape[1], cx + side / 2))
    scale = face_px / w
    head = cv2.resize(image[top:bottom, left:right], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    mask = np.zeros(head.shape[:2], np.uint8)
    height, width = mask.shape
    cv2.ellipse(mask, (width // 2, height // 2), (width // 2 - 1, height // 2 - 1), 0, 0, 360, 255, -1)
    return Head(image=np.ascontiguousarray(head), mask=mask > 0)


def enrol_wanted(session: Session, media: MediaStore, person: WantedPerson) -> str:
    """Puts the wanted man on the watch list (requested, then approved by another officer); returns the id."""
    entry = faces.enroll(
        session,
        media,
        name=ENTRY_NAME,
        category="wanted",
        legal_basis=LEGAL_BASIS,
        requested_by="demo.investigator",
        photos=[person.watchlist_photo.read_bytes()],
        expires_at=utcnow() + timedelta(days=30),
        notes=f"demo: photo of {person.person_id} from the shared face set (internal testing only)",
    )
    faces.approve(session, entry.id, "demo.supervisor")
    return entry.id


def nearest_unit(session: Session) -> str | None:
    """Returns the unit that will be sent to the face camera: the nearest available one now."""
    camera = cameras.get(session, FACE_CAM)
    found = dispatch.nearest_units(session, latitude=camera.latitude, longitude=camera.longitude, limit=1)
    return found[0].unit.id if found else None


def story_report(session: Session) -> list[dict[str, Any]]:
    """Returns each face alert as it stands: what was matched, which unit went, and how it ended."""
    told = []
    for alert in sorted(alerts.list_alerts(session, kind="face_match"), key=lambda a: a.created_at):
        run: dict[str, Any] = {
            "alert_id": alert.id,
            "camera_id": alert.camera_id,
            "alert_status": alert.status,
            "similarity": alert.evidence.get("similarity"),
            "crop": bool(alert.evidence.get("crop_ref")),
            "watchlist_photos": len(alert.evidence.get("watchlist_photo_refs") or []),
        }
        for incident in dispatch.incidents_of_alert(session, alert.id):
            sent = dispatch.incident_out(session, incident).dispatches
            run |= {
                "incident_id": incident.id,
                "units_sent": [d.unit_id for d in sent],
                "dispatched_by": [d.dispatched_by for d in sent],
                "arrived": any(d.arrived_at is not None for d in sent),
                "outcome": incident.outcome,
                "closing_note": _closing_note(incident.notes),
            }
        told.append(run)
    return told


def _closing_note(notes: Sequence[dict[str, Any]]) -> str | None:
    return next(
        (str(n.get("text")) for n in reversed(notes) if str(n.get("text", "")).startswith("closed")), None
    )


def stranger_report(session: Session, counters: dict[str, int], *, plan: str, passes: int) -> dict[str, Any]:
    """Returns what the city kept of the unlisted man: the faces the pipeline examined at his camera,
    and the matches, alerts and face crops there (all none, unless he was taken for someone listed)."""
    matches = list(
        session.scalars(select(FaceMatchRecord).where(FaceMatchRecord.camera_id == STRANGER_CAM)).all()
    )
    face_alerts = [a for a in alerts.list_alerts(session, kind="face_match") if a.camera_id == STRANGER_CAM]
    crops = sum(1 for m in matches if m.crop_ref) + sum(1 for m in matches if m.frame_ref)
    kept = (
        "nothing: a face that matches no watch-list entry is held in the pipeline's memory for its frame "
        "only (no crop, no embedding, no row); the camera's recording keeps the street, him in it, as "
        "every recording does, for its retention"
        if not matches and not face_alerts
        else f"{len(matches)} face matches and {len(face_alerts)} alerts at {STRANGER_CAM}: he was taken "
        "for someone on a watch list"
    )
    return {
        "plan": plan,
        "camera_id": STRANGER_CAM,
        "passes": passes,
        "face_frames_examined": counters.get(f"faces_examined:{STRANGER_CAM}", 0),
        "face_frames_matched_to_no_one": counters.get(f"faces_matched_no_one:{STRANGER_CAM}", 0),
        "face_matches": len(matches),
        "alerts": len(face_alerts),
        "face_images_kept": crops,
        "kept": kept,
    }
