"""Idempotency keys, built in one place from what identifies the fact an event describes.

A key names the thing, not the message: the same vehicle read by the same camera gives the same key
however often the worker re-sends it, and a new sighting gives a new key even when a restarted
tracker reuses a track number (the first-seen moment differs). Handlers act on the first event of a
key only (`core.consumers`), and JetStream stores a re-sent event once (`Nats-Msg-Id`).
"""

from __future__ import annotations

from datetime import datetime


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def plate_read(camera_id: str, track_id: int, first_seen: datetime) -> str:
    """One vehicle's passage in front of one camera: the camera, its track and when it was first seen."""
    return f"{camera_id}:{track_id}:{_ms(first_seen)}"


def face_match(camera_id: str, entry_id: str, track_id: int, first_seen: datetime) -> str:
    """One watch-list entry matched on one tracked face: a tracker restart or a later day is a new match."""
    return f"{camera_id}:face:{entry_id}:{track_id}:{_ms(first_seen)}"


def offence(camera_id: str, offence_name: str, track_id: int, at: datetime) -> str:
    """One offence by one tracked vehicle at one camera, at the moment it was committed."""
    return f"{camera_id}:{offence_name}:{track_id}:{_ms(at)}"


def camera_health(camera_id: str, state: str, since: datetime) -> str:
    """One health state of one camera, from the moment it began."""
    return f"camera_health:{camera_id}:{state}:{since.isoformat()}"
