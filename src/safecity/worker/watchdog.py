"""The centre's watch over the workers: a camera that no live worker analyses is reported offline.

A worker reports its own cameras' faults; a camera whose worker died, or that no worker has room
for, would otherwise stay "online" on the wall for ever. `report_unheld_cameras(ctx)` runs
periodically in the centre (one process at a time): every enabled camera with a stream whose lease
no live worker has renewed for `unheld_report_s` gets one `CameraHealth` offline report for the
outage ("no worker is analysing this camera"), and one online report when a worker holds it again.
A camera must also have been seen unheld for a lease time-out, so the moment after an outage of NATS
(when every lease looks stale until the next renewals) reports nothing. When the outage began, when
it was noticed and whether it was reported is kept in the lease bucket (`unheld.<camera>`), so the
job may move between processes without reporting an outage twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from pydantic import BaseModel, Field

from safecity.cameras import service as cameras
from safecity.core import keys
from safecity.core.bus.kv import Entry, KeyExists, KeyValue, RevisionChanged, kv_token, open_kv
from safecity.core.clock import as_utc, utcnow
from safecity.core.context import Context
from safecity.core.events import CameraHealth, HealthState
from safecity.worker.leases import read_cluster

log = logging.getLogger(__name__)

UNHELD = "unheld."
NO_WORKER = "no worker is analysing this camera"


class UnheldRecord(BaseModel):
    """A camera seen without a live holder: since when, and whether its outage was reported."""

    camera_id: str = Field(title="Camera", description="The camera nobody holds.")
    since: datetime = Field(title="Since", description="When it was last held (or first seen unheld).")
    noticed: datetime = Field(title="Noticed", description="When the watchdog first saw it unheld.")
    reported: bool = Field(default=False, title="Reported", description="Whether the outage was published.")


def _analysed_cameras(ctx: Context) -> list[str]:
    with ctx.db.session() as session:
        return [c.id for c in cameras.list_cameras(session, limit=1_000_000) if c.enabled and c.stream_url]


async def report_unheld_cameras(ctx: Context) -> int:
    """Reports cameras no live worker has held for `unheld_report_s` offline (once), and their return.

    Returns how many reports it published. Schedule it as a coroutine function, e.g.
    `ctx.jobs.every("cameras.unheld", 5, functools.partial(report_unheld_cameras, ctx))`.
    """
    settings = ctx.settings
    kv = await open_kv(ctx.bus, settings.lease_bucket)
    view = await read_cluster(kv, settings.lease_ttl_s)
    camera_ids = await asyncio.to_thread(_analysed_cameras, ctx)
    tracked: dict[str, tuple[UnheldRecord, Entry]] = {}
    for entry in (await kv.entries(UNHELD)).values():
        record = UnheldRecord.model_validate_json(entry.value)
        tracked[record.camera_id] = (record, entry)
    now = utcnow()
    published = 0
    for camera_id in camera_ids:
        key = UNHELD + kv_token(camera_id)
        found = tracked.pop(camera_id, None)
        holder = view.holder(camera_id)
        lease = view.leases.get(camera_id)
        if holder is not None:
            if found is None:
                continue
            record, entry = found
            if record.reported:
                since = as_utc(lease.since) if lease is not None and lease.since else now
                await _publish(ctx, camera_id, "online", f"analysed again, by worker {holder}", since)
                published += 1
            with contextlib.suppress(RevisionChanged):
                await kv.delete(key, entry.revision)
            continue
        if found is None:
            since = as_utc(lease.renewed_at) if lease is not None else now
            found = await _track(kv, key, UnheldRecord(camera_id=camera_id, since=since, noticed=now))
            if found is None:
                continue  # another process is tracking it
        record, entry = found
        # Seen unheld for a whole lease time-out first: right after an outage of NATS every lease
        # looks stale until the workers' next renewals, and that is no outage of the cameras.
        seen_for = (now - as_utc(record.noticed)).total_seconds()
        unheld_for = (now - as_utc(record.since)).total_seconds()
        if record.reported or seen_for < settings.lease_ttl_s or unheld_for < settings.unheld_report_s:
            continue
        last = lease.holder or lease.previous if lease is not None else None
        detail = NO_WORKER + (f" (last held by worker {last})" if last else "")
        await _publish(ctx, camera_id, "offline", detail, as_utc(record.since))
        published += 1
        record.reported = True
        with contextlib.suppress(RevisionChanged):
            await kv.update(key, record.model_dump_json().encode(), entry.revision)
    for _, entry in tracked.values():  # cameras disabled or removed since
        with contextlib.suppress(RevisionChanged):
            await kv.delete(entry.key, entry.revision)
    return published


async def _track(kv: KeyValue, key: str, record: UnheldRecord) -> tuple[UnheldRecord, Entry] | None:
    data = record.model_dump_json().encode()
    try:
        revision = await kv.create(key, data)
    except KeyExists:
        return None
    return record, Entry(key, data, revision)


async def _publish(ctx: Context, camera_id: str, state: HealthState, detail: str, since: datetime) -> None:
    log.warning("camera %s: %s", camera_id, detail)
    await ctx.bus.publish(
        CameraHealth(
            key=keys.camera_health(camera_id, state, since),
            camera_id=camera_id,
            at=since,
            state=state,
            detail=detail,
            since=since,
        )
    )
