"""Typed, versioned events: the only things that cross the bus.

Each event has an id, a type and version, an idempotency key (a redelivered or re-sent event with the
same key changes nothing), the camera it concerns, the moment it describes, and a typed payload.
Workers publish observations (plate reads, face matches, analytics, health, violation candidates);
the centre publishes decisions (alerts and their changes) for the live pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationError

from safecity.core.clock import utcnow
from safecity.core.ids import new_id


class Event(BaseModel):
    """Envelope common to every event type."""

    type: ClassVar[str] = "event"
    version: ClassVar[int] = 1

    id: str = Field(default_factory=new_id, title="Event id", description="Unique id of this message.")
    key: str = Field(
        title="Idempotency key",
        description="Events with the same key describe the same fact; handlers act on the first only.",
    )
    camera_id: str | None = Field(default=None, title="Camera", description="Camera the event concerns.")
    at: datetime = Field(
        default_factory=utcnow, title="Time", description="When the observed thing happened."
    )

    @property
    def subject(self) -> str:
        """Returns the bus subject this event is published on."""
        return f"safecity.{self.type}"

    def envelope(self) -> dict[str, Any]:
        """Returns the wire form: type and version beside the fields."""
        return {"type": self.type, "version": self.version, **self.model_dump(mode="json")}


class PlateRead(Event):
    """A plate read by an ANPR camera (one vehicle, voted across the frames it was seen in)."""

    type: ClassVar[str] = "plate_read"
    plate: str = Field(title="Plate", description="Normalised plate text: capitals, no spaces or dashes.")
    region: str = Field(default="pk", title="Region", description="Plate-format region the read matched.")
    confidence: float = Field(ge=0, le=1, title="Confidence", description="Voted confidence of the read.")
    crop_ref: str | None = Field(default=None, title="Crop", description="Media-store ref of the best crop.")
    frame_ref: str | None = Field(default=None, title="Frame", description="Media-store ref of the frame.")
    box: list[int] | None = Field(
        default=None, title="Box", description="Plate box in the frame: x, y, w, h."
    )
    direction: str | None = Field(default=None, title="Direction", description="Vehicle direction, if known.")
    track_id: int | None = Field(default=None, title="Track", description="Tracker id within the camera.")
    speed_kmh: float | None = Field(default=None, title="Speed", description="Measured spot speed, if any.")
    vehicle_class: str | None = Field(default=None, title="Vehicle class", description="car, bike, bus…")


class FaceMatch(Event):
    """A face that matched a watch-list entry above the camera's threshold."""

    type: ClassVar[str] = "face_match"
    entry_id: str = Field(title="Watch-list entry", description="Entry the face matched.")
    similarity: float = Field(title="Similarity", description="Similarity to the entry, 0..1.")
    crop_ref: str | None = Field(default=None, title="Crop", description="Media-store ref of the live crop.")
    frame_ref: str | None = Field(default=None, title="Frame", description="Media-store ref of the frame.")
    track_id: int | None = Field(default=None, title="Track", description="Tracker id within the camera.")


class AnalyticsEvent(Event):
    """Something a scene rule saw: abandoned vehicle, crowd surge, loitering, wrong way, intrusion."""

    type: ClassVar[str] = "analytics"
    kind: str = Field(
        title="Kind", description="abandoned_vehicle, crowd_surge, loitering, wrong_way, intrusion…"
    )
    detail: str = Field(default="", title="Detail", description="Plain-words description for the operator.")
    value: float | None = Field(default=None, title="Value", description="Measured value (count, seconds…).")
    frame_ref: str | None = Field(default=None, title="Frame", description="Media-store ref of the frame.")
    zone: str | None = Field(default=None, title="Zone", description="Zone or line the rule belongs to.")


HealthState = Literal[
    "online",
    "reconnecting",
    "offline",
    "frozen",
    "covered",
    "out_of_focus",
    "too_dark",
    "moved",
    "low_fps",
    "degraded",  # analysed, but with less than its settings ask for (a model file missing or corrupt)
]


class CameraHealth(Event):
    """A camera's health changed (or was confirmed) — one state at a time, with its evidence."""

    type: ClassVar[str] = "camera_health"
    state: HealthState = Field(title="State", description="Health state of the camera.")
    detail: str = Field(default="", title="Detail", description="What is wrong, in plain words.")
    since: datetime = Field(default_factory=utcnow, title="Since", description="When this state began.")
    frame_ref: str | None = Field(default=None, title="Frame", description="Evidence frame, if any.")
    fps: float | None = Field(default=None, title="Frame rate", description="Measured frames per second.")


class ViolationCandidate(Event):
    """A possible traffic offence seen by a camera, before review and de-duplication."""

    type: ClassVar[str] = "violation_candidate"
    offence: str = Field(title="Offence", description="red_light, speeding, section_speeding, unregistered…")
    plate: str | None = Field(default=None, title="Plate", description="Normalised plate, if read.")
    confidence: float = Field(
        default=1.0, ge=0, le=1, title="Confidence", description="Detection confidence."
    )
    measured: float | None = Field(default=None, title="Measured", description="Measured value (speed…).")
    limit: float | None = Field(default=None, title="Limit", description="Limit in force.")
    evidence_refs: list[str] = Field(default_factory=list, title="Evidence", description="Media refs.")
    detail: dict[str, Any] = Field(default_factory=dict, title="Detail", description="Offence-specific data.")


class AlertChanged(Event):
    """An alert was raised or changed state in the centre (for live pages and integrations)."""

    type: ClassVar[str] = "alert"
    alert_id: str = Field(title="Alert", description="Alert id.")
    kind: str = Field(title="Kind", description="hotlist, face_match, cloned_plate, violation_review…")
    priority: int = Field(title="Priority", description="1 (highest) to 5.")
    status: str = Field(title="Status", description="new, acknowledged, confirmed, dismissed, closed.")
    title: str = Field(title="Title", description="One line for the operator.")
    escalated: bool = Field(
        default=False,
        title="Escalated",
        description="Nobody acknowledged it in time: the supervisors are called.",
    )


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (PlateRead, FaceMatch, AnalyticsEvent, CameraHealth, ViolationCandidate, AlertChanged)
}


def register_event(cls: type[Event]) -> type[Event]:
    """Registers an event type defined by a domain, so the bus can decode it."""
    EVENT_TYPES[cls.type] = cls
    return cls


class EventDecodeError(ValueError):
    """A message that is not an event this process understands: the reason says what is wrong."""


def decode_event(envelope: Any) -> Event:
    """Returns the typed event for a wire envelope; anything else raises `EventDecodeError`."""
    if not isinstance(envelope, dict):
        raise EventDecodeError(f"an event is a JSON object, not {type(envelope).__name__}")
    data = dict(envelope)
    kind = data.pop("type", None)
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventDecodeError(f"unknown event type {kind!r}")
    version = data.pop("version", 1)
    if not isinstance(version, int) or not 1 <= version <= cls.version:
        raise EventDecodeError(
            f"{kind} version {version!r} is not one this process understands (1 to {cls.version})"
        )
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in exc.errors())
        raise EventDecodeError(f"{kind} is malformed: {problems}") from None
