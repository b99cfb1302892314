"""The demo's crew: the duty dispatcher sends the nearest unit to a face alert, its officer drives there
and confirms the arrest through the field API, and the console hears each step."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from safecity.alerts import service as alerts
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import Event
from safecity.core.geo import distance_m
from safecity.demo.crew import DISPATCHER, CrewAtWork, beat_for, enlist
from safecity.dispatch import service as dispatch
from safecity.server import create_app

REGAL = (24.8606, 67.0262)


def _city(ctx: Context) -> None:
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn(
                id="cam-regal",
                name="Regal Chowk",
                kind="face",
                district="South",
                latitude=REGAL[0],
                longitude=REGAL[1],
            ),
            actor="test",
        )
        dispatch.create_unit(
            session, unit_id="near", callsign="Madadgar-01", latitude=24.8618, longitude=67.0256
        )
        dispatch.create_unit(
            session, unit_id="far", callsign="Madadgar-07", latitude=24.9411, longitude=67.2058
        )


def _raise(ctx: Context, kind: str, key: str) -> str:
    crop = ctx.media.put_image(np.full((60, 40, 3), 120, np.uint8))
    with ctx.db.session() as session:
        alert, _ = alerts.raise_alert(
            session,
            kind=kind,
            priority=1,
            title="Wanted person on a motorcycle",
            source_key=key,
            dedup_key=key,
            camera_id="cam-regal",
            evidence={"crop_ref": crop},
        )
        alerts.announce(ctx, session, alert)
        return alert.id


async def _until(check: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):  # type: ignore[arg-type]
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the crew did not get there in time")


async def test_the_nearest_unit_is_sent_drives_there_and_confirms_the_arrest(ctx: Context) -> None:
    _city(ctx)
    with ctx.db.session() as session:
        crew = enlist(session)
    app = create_app(ctx)
    heard: list[Event] = []
    async with app.router.lifespan_context(app):
        await ctx.bus.subscribe(["unit"], heard.append)
        work = CrewAtWork(
            ctx, crew, app, dispatch_after_s=0.0, speed_kmh=200.0, confirm_after_s=0.5, tick_s=0.2
        )
        await work.sign_in()
        task = asyncio.create_task(work.run())
        alert_id = await asyncio.to_thread(_raise, ctx, "face_match", "face-1")

        def closed() -> bool:
            with ctx.db.session() as session:
                found = dispatch.incidents_of_alert(session, alert_id)
                return bool(found) and found[0].status == "closed"

        await _until(closed)
        # The console hears the unit freed again (the outbox publishes once the closing committed).
        await _until(lambda: any(getattr(e, "status", "") == "available" for e in heard))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert work.problems == []
    with ctx.db.session() as session:
        incident = dispatch.incidents_of_alert(session, alert_id)[0]
        out = dispatch.incident_out(session, incident)
        assert incident.outcome == "arrest" and alerts.get(session, alert_id).status == "closed"
        assert [(d.unit_id, d.dispatched_by) for d in out.dispatches] == [("near", DISPATCHER)]
        assert out.dispatches[0].arrived_at is not None
        near = dispatch.get_unit(session, "near")
        # The unit drove to the camera, fix by fix, and is free again where it made the arrest.
        assert (round(near.latitude, 4), round(near.longitude, 4)) == REGAL and near.status == "available"
        officer = crew.officer_of("near")
        assert officer is not None
        closers = [e.actor for e in audit.entries(session, action="incident.close")]
        assert closers == [officer.username]
    statuses = [e.status for e in heard if getattr(e, "unit_id", None) == "near"]  # type: ignore[attr-defined]
    assert {"en_route", "on_scene", "available"} <= set(statuses)


async def test_an_alert_an_operator_already_took_is_left_to_them(ctx: Context) -> None:
    _city(ctx)
    with ctx.db.session() as session:
        crew = enlist(session)
    app = create_app(ctx)
    async with app.router.lifespan_context(app):
        work = CrewAtWork(ctx, crew, app, dispatch_after_s=1.0, tick_s=0.2)
        await work.sign_in()
        task = asyncio.create_task(work.run())
        alert_id = await asyncio.to_thread(_raise, ctx, "face_match", "face-2")

        def acknowledge() -> None:
            with ctx.db.session() as session:
                alerts.announce(
                    ctx, session, alerts.act(session, alert_id, action="acknowledge", actor="op.ali")
                )

        await asyncio.to_thread(acknowledge)
        await asyncio.sleep(2.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    with ctx.db.session() as session:
        assert dispatch.incidents_of_alert(session, alert_id) == []


def test_a_beat_runs_through_the_named_places_near_the_base_or_round_a_square_where_there_are_none() -> None:
    base = (24.8618, 67.0256)
    saddar, regal, far_away = (24.8578, 67.0296), REGAL, (24.9411, 67.2058)
    assert beat_for(base, [saddar, far_away, regal, base]) == [base, regal, saddar]
    square = beat_for(base, [far_away])
    assert square[0] == base and len(square) == 4
    assert all(300 < distance_m(*base, *p) < 600 for p in square[1:])


async def test_idle_units_patrol_their_beats_posting_positions_as_a_device_would(ctx: Context) -> None:
    _city(ctx)
    with ctx.db.session() as session:
        crew = enlist(session, places=[REGAL, (24.8578, 67.0296)])
        bases = {u.id: (u.latitude, u.longitude) for u in dispatch.list_units(session)}
    started = utcnow()
    app = create_app(ctx)
    heard: list[Event] = []
    async with app.router.lifespan_context(app):
        await ctx.bus.subscribe(["unit"], heard.append)
        work = CrewAtWork(ctx, crew, app, tick_s=0.1, patrol_kmh=1800.0, patrol_fix_s=0.1, patrol_pause_s=0.0)
        await work.sign_in()
        task = asyncio.create_task(work.run())

        def moved_twice() -> bool:
            seen: dict[str, set[tuple[float, float]]] = {}
            for e in heard:
                where = (getattr(e, "latitude", None), getattr(e, "longitude", None))
                if None not in where:
                    seen.setdefault(getattr(e, "unit_id", ""), set()).add(where)  # type: ignore[arg-type]
            return all(len(seen.get(unit, set())) >= 3 for unit in ("near", "far"))

        await _until(moved_twice, seconds=20)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert work.problems == []
    with ctx.db.session() as session:
        for unit_id in ("near", "far"):
            unit = dispatch.get_unit(session, unit_id)
            # It moved, as the field API's position fixes, and stayed on its beat, still available.
            assert (unit.latitude, unit.longitude) != bases[unit_id] and unit.status == "available"
            assert distance_m(unit.latitude, unit.longitude, *bases[unit_id]) <= 700  # type: ignore[arg-type]
            assert unit.position_at is not None and unit.position_at >= started  # a fix of this run
