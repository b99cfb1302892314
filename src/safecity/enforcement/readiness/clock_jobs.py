"""Measuring camera clocks on a schedule and on demand, and recording what was measured.

`probe_camera` measures one camera (`clock_probe.measure`) and records the check; `probe_cameras`,
the `enforcement.clock_probe` job, measures every enabled camera that has an ONVIF service, a few at a
time, against one reading of the reference. A camera that cannot be measured gets no check: its last
one ages out and its violations are held ("clock not checked"), which is the truth.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlalchemy.orm import Session

from safecity.cameras import service as cameras
from safecity.core.context import Context
from safecity.enforcement.readiness import service as readiness
from safecity.enforcement.readiness.clock_probe import (
    ClockProbeError,
    ClockReading,
    Reference,
    host_reference,
    measure,
)
from safecity.enforcement.readiness.models import CameraClockCheck, ClockCheckIn

log = logging.getLogger(__name__)

PARALLEL_PROBES = 16
"""Cameras measured at once: each waits on its network round trips, not on this host's CPU."""


@dataclass(frozen=True)
class ProbeOutcome:
    camera_id: str
    reading: ClockReading | None
    error: str | None


def record_reading(
    session: Session, camera_id: str, reading: ClockReading, *, actor: str
) -> CameraClockCheck:
    data = ClockCheckIn(
        offset_s=reading.offset_s,
        uncertainty_s=reading.uncertainty_s,
        measured_at=reading.measured_at,
        method="onvif",
        detail=reading.detail[:500],
    )
    return readiness.record_clock_check(session, camera_id, data, actor=actor)


def probe_camera(
    session: Session, camera_id: str, *, ntp_server: str | None, url: str | None = None, actor: str
) -> tuple[CameraClockCheck, ClockReading]:
    """Measures one camera's clock now and records it; raises ClockProbeError saying why it could not."""
    camera = cameras.get(session, camera_id)
    address = url or camera.onvif_url
    if address is None:
        raise ClockProbeError(
            f"camera {camera_id} has no ONVIF address "
            f"(its stream {camera.stream_url or '(none)'} names no host)",
            hint=f"set it: safecity cameras update {camera_id} with analysis.onvif_url, or pass --url",
        )
    reading = measure(address, ntp_server=ntp_server)
    return record_reading(session, camera_id, reading, actor=actor), reading


def measure_all(
    targets: dict[str, str], reference: Reference, *, timeout_s: float = 3.0
) -> list[ProbeOutcome]:
    """Measures each camera (id → ONVIF address) against one reference reading, several at a time."""

    def one(item: tuple[str, str]) -> ProbeOutcome:
        camera_id, url = item
        try:
            with httpx.Client(timeout=timeout_s) as client:
                return ProbeOutcome(camera_id, measure(url, reference=reference, client=client), None)
        except ClockProbeError as exc:
            return ProbeOutcome(camera_id, None, str(exc))

    with ThreadPoolExecutor(max_workers=PARALLEL_PROBES, thread_name_prefix="clock-probe") as pool:
        return list(pool.map(one, sorted(targets.items())))


def probe_cameras(ctx: Context) -> list[ProbeOutcome]:
    """The `enforcement.clock_probe` job: measures every enabled camera with an ONVIF service."""
    with ctx.db.session() as session:
        targets = {
            camera.id: url
            for camera in cameras.list_cameras(session, limit=100_000)
            if camera.enabled and (url := camera.onvif_url) is not None
        }
    if not targets:
        return []
    try:
        reference = host_reference(ctx.settings.ntp_server)
    except ClockProbeError as exc:
        log.error("camera clocks not measured: %s (%s)", exc, exc.hint)
        return [ProbeOutcome(camera_id, None, str(exc)) for camera_id in targets]
    outcomes = measure_all(targets, reference)
    with ctx.db.session() as session:
        for outcome in outcomes:
            if outcome.reading is not None:
                record_reading(session, outcome.camera_id, outcome.reading, actor="clock-probe")
    failed = [o for o in outcomes if o.error]
    if failed:
        log.warning(
            "camera clocks: %d measured, %d could not be (first: %s)",
            len(outcomes) - len(failed),
            len(failed),
            failed[0].error,
        )
    return outcomes


def schedule(ctx: Context) -> None:
    """Schedules the clock probe job where the settings ask for it."""
    every = ctx.settings.clock_probe_every_s
    if every > 0:
        ctx.jobs.every("enforcement.clock_probe", every, lambda: probe_cameras(ctx))
