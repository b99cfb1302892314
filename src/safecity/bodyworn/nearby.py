"""The fixed cameras that saw the place of a body-worn clip at its time: the officer's GPS track against
the cameras' positions, and the centre's recordings of the clip's time span.

The officer is taken to move in a straight line between fixes and to stay at the first fix before it
and at the last one after it (a single fix, such as a location written in the file, is a place held for
the whole clip). For each camera within `within_m` of that path, the moments of the clip when the
officer was that close are solved exactly per stretch between two fixes, in metres on a local plane.

    found = nearby_cameras(session, item, within_m=300)   # NearbyOut: nearest first, with footage
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.bodyworn.models import BodyWornItem, NearbyCamera, NearbyOut
from safecity.cameras.models import Camera, CameraKind
from safecity.core.clock import as_utc
from safecity.core.geo import EARTH_RADIUS_M
from safecity.recordings import service as recordings
from safecity.recordings.models import Span

Floats = npt.NDArray[np.float64]
# A clip whose length is not known is taken to last until its last fix, and at least this long.
UNKNOWN_LENGTH = timedelta(seconds=1)
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180


def plane(origin: tuple[float, float], lat: Floats, lon: Floats) -> tuple[Floats, Floats]:
    """Returns points as metres east and north of `origin` (lat, lon): a plane true at a city's size."""
    lat0, lon0 = origin
    return (lon - lon0) * METRES_PER_DEGREE * math.cos(math.radians(lat0)), (lat - lat0) * METRES_PER_DEGREE


@dataclass(frozen=True)
class Route:
    """The officer's way within the clip: stretch i goes from (xa, ya) at ta to (xb, yb) at tb.

    Positions are metres on the plane around `origin`, times seconds from the clip's start.
    """

    ta: Floats
    tb: Floats
    xa: Floats
    ya: Floats
    xb: Floats
    yb: Floats
    origin: tuple[float, float]
    box: tuple[float, float, float, float]  # min_lat, min_lon, max_lat, max_lon


def clip_span(item: BodyWornItem) -> tuple[datetime, datetime] | None:
    """Returns when the clip starts and ends on the wall clock, or None when its time is unknown."""
    if item.recorded_at is None:
        return None
    start = as_utc(item.recorded_at)
    if item.duration_s:
        return start, start + timedelta(seconds=item.duration_s)
    last = datetime.fromisoformat(item.track[-1][0]) if item.track else start
    return start, max(last, start + UNKNOWN_LENGTH)


def route_within(track: list[list[Any]], start: datetime, end: datetime) -> Route | None:
    """Returns the track's route cut to [start, end] (held before its first and after its last fix)."""
    if not track:
        return None
    t0 = start.timestamp()
    t = np.array([datetime.fromisoformat(str(row[0])).timestamp() - t0 for row in track])
    lat = np.array([float(row[1]) for row in track])
    lon = np.array([float(row[2]) for row in track])
    length = (end - start).total_seconds()
    # Held places before the first fix and after the last: a point at the clip's ends.
    t = np.concatenate([[min(0.0, t[0])], t, [max(length, t[-1])]])
    lat = np.concatenate([[lat[0]], lat, [lat[-1]]])
    lon = np.concatenate([[lon[0]], lon, [lon[-1]]])
    ta, tb = t[:-1], t[1:]
    keep = (tb > ta) & (tb > 0) & (ta < length)
    if not keep.any():
        return None
    ta, tb = ta[keep], tb[keep]
    lat_a, lat_b = lat[:-1][keep], lat[1:][keep]
    lon_a, lon_b = lon[:-1][keep], lon[1:][keep]
    # Each stretch cut to the clip, its ends moved along it to the cut.
    ca, cb = np.clip(ta, 0.0, length), np.clip(tb, 0.0, length)
    ua, ub = (ca - ta) / (tb - ta), (cb - ta) / (tb - ta)
    lat_a, lat_b = lat_a + ua * (lat_b - lat_a), lat_a + ub * (lat_b - lat_a)
    lon_a, lon_b = lon_a + ua * (lon_b - lon_a), lon_a + ub * (lon_b - lon_a)
    every_lat, every_lon = np.concatenate([lat_a, lat_b]), np.concatenate([lon_a, lon_b])
    box = (float(every_lat.min()), float(every_lon.min()), float(every_lat.max()), float(every_lon.max()))
    origin = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    xa, ya = plane(origin, lat_a, lon_a)
    xb, yb = plane(origin, lat_b, lon_b)
    return Route(ca, cb, xa, ya, xb, yb, origin, box)


def _candidates(session: Session, route: Route, within_m: float) -> list[Camera]:
    """Returns the cameras (not body cameras) inside the route's box widened by `within_m`."""
    min_lat, min_lon, max_lat, max_lon = route.box
    pad_lat = within_m / METRES_PER_DEGREE
    pad_lon = pad_lat / max(math.cos(math.radians(max(abs(min_lat), abs(max_lat)) + pad_lat)), 1e-6)
    return list(
        session.scalars(
            select(Camera)
            .where(
                Camera.kind != CameraKind.bodycam,
                Camera.latitude.between(min_lat - pad_lat, max_lat + pad_lat),
                Camera.longitude.between(min_lon - pad_lon, max_lon + pad_lon),
            )
            .order_by(Camera.id)
        )
    )


def near_windows(
    route: Route, x: Floats, y: Floats, within_m: float
) -> tuple[Floats, Floats, npt.NDArray[np.bool_], Floats, Floats]:
    """Returns, per camera (rows) and stretch (columns), the closest distance and its time, and whether
    and when (from, to: seconds into the clip) the officer was within `within_m` of the camera."""
    dx, dy = (route.xb - route.xa)[None, :], (route.yb - route.ya)[None, :]
    px, py = route.xa[None, :] - x[:, None], route.ya[None, :] - y[:, None]  # stretch start - camera
    a = dx * dx + dy * dy
    b = dx * px + dy * py
    c = px * px + py * py
    moving = a > 0
    safe_a = np.where(moving, a, 1.0)
    u = np.where(moving, np.clip(-b / safe_a, 0.0, 1.0), 0.0)
    closest = np.sqrt(np.maximum(a * u * u + 2 * b * u + c, 0.0))
    # |start + u·d - camera|² ≤ r² is a u² + 2 b u + (c - r²) ≤ 0: u between the roots, cut to [0, 1].
    disc = b * b - a * (c - within_m**2)
    root = np.sqrt(np.maximum(disc, 0.0))
    u1 = np.where(moving, np.clip((-b - root) / safe_a, 0.0, 1.0), 0.0)
    u2 = np.where(moving, np.clip((-b + root) / safe_a, 0.0, 1.0), 1.0)
    near = np.where(moving, (disc >= 0) & (u1 < u2), c <= within_m**2) | (closest <= within_m)
    span = (route.tb - route.ta)[None, :]
    return closest, route.ta + u * span, near, route.ta + u1 * span, route.ta + u2 * span


def _merged(starts: Floats, ends: Floats, origin: datetime) -> list[Span]:
    """Returns time windows (seconds into the clip, in route order) as merged spans of the wall clock."""
    spans: list[Span] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        begin, until = origin + timedelta(seconds=s), origin + timedelta(seconds=e)
        if spans and begin <= spans[-1].end + recordings.TOUCH:
            spans[-1].end = max(spans[-1].end, until)
        else:
            spans.append(Span(start=begin, end=until))
    return spans


def _overlap_seconds(first: list[Span], second: list[Span]) -> float:
    return sum(
        max(0.0, (min(a.end, b.end) - max(a.start, b.start)).total_seconds()) for a in first for b in second
    )


def nearby_cameras(
    session: Session, item: BodyWornItem, *, within_m: float, recorded_only: bool = True
) -> NearbyOut:
    """Returns the cameras within `within_m` of the officer during the clip, nearest first, with their
    footage of the clip's time; `recorded_only` keeps those with footage of a moment the officer was near."""
    span = clip_span(item)
    found = NearbyOut(item_id=item.id, start=None, end=None, within_m=within_m)
    if span is None:
        found.note = "the recording's time is unknown, so no camera's footage can be matched to it"
        return found
    found.start, found.end = span
    if not item.track:
        found.note = "the recording has no GPS track or location, so no camera can be placed near it"
        return found
    route = route_within(item.track, *span)
    if route is None:
        found.note = "the GPS track does not cover the recording's time"
        return found
    candidates = _candidates(session, route, within_m)
    if not candidates:
        return found
    x, y = plane(
        route.origin,
        np.array([c.latitude for c in candidates], dtype=np.float64),
        np.array([c.longitude for c in candidates], dtype=np.float64),
    )
    closest, closest_t, near, near_from, near_to = near_windows(route, x, y, within_m)
    close = np.flatnonzero(near.any(axis=1))
    footage = recordings.recorded_spans(
        session, [candidates[i].id for i in close.tolist()], start=span[0], end=span[1]
    )
    for i in close.tolist():
        camera = candidates[i]
        best = int(np.argmin(closest[i]))
        windows = _merged(near_from[i][near[i]], near_to[i][near[i]], span[0])
        recorded = footage.get(camera.id, [])
        seen = _overlap_seconds(windows, recorded)
        if recorded_only and seen <= 0:
            continue
        found.cameras.append(
            NearbyCamera(
                camera_id=camera.id,
                name=camera.name,
                district=camera.district,
                kind=camera.kind,
                latitude=camera.latitude,
                longitude=camera.longitude,
                distance_m=round(float(closest[i, best]), 1),
                closest_at=span[0] + timedelta(seconds=float(closest_t[i, best])),
                near=windows,
                recorded=recorded,
                recorded_near_seconds=round(seen, 1),
            )
        )
    found.cameras.sort(key=lambda c: (c.distance_m, c.camera_id))
    return found
