"""Enforcement benchmark: evidence media a busy junction writes, and the challan rate through the gate.

1. Media: the ANPR pipeline runs on a rendered junction stream (two lanes, a vehicle every few
   seconds in each, a signal cycling green, amber, red; every vehicle that crosses the stop line
   during red runs the light), as a worker would, with the media store it writes evidence into.
   Reported as files and megabytes per camera-hour, with the plate reads and violations they back.
   `--before SRC` runs the same stream through another checkout's `src` (e.g. a worktree of main as
   it was) in a subprocess, so before and after are measured side by side in one run.
2. Gate: a backlog of approved violations, each with its calibration, signal source, camera clock
   check, road survey and hashed frames on record, issued by `challans.service.issue_pending` in
   batches with the court-readiness gate off, then (on an identical database) on. The goal is
   above 5,000 challans a second with the gate on.

    .venv/bin/python bench/bench_enforcement.py [--quick] [--before /tmp/before-e1/src]
        [--seconds S] [--backlog N]

Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

err_stream = sys.stderr
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
JUNCTION_CAMERA = "bench-junction"


def log(message: str) -> None:
    print(message, file=err_stream, flush=True)


# --- 1. media per camera-hour --------------------------------------------------------------------------


def junction_media(seconds: float, fps: float, seed: int) -> dict[str, Any]:
    """Runs the ANPR pipeline on `seconds` of a busy rendered junction; returns what it wrote."""
    from safecity.core.media import MediaStore
    from safecity.demo import scenes
    from safecity.video.sources import Frame
    from safecity.worker import anpr

    rng = random.Random(seed)
    plan = scenes.TrafficPlan(start=0.0)
    vehicles = 0
    for lane in (0, 1):
        t = rng.uniform(0, 2)
        while t < seconds:
            plate = "".join(rng.choice(scenes.PLATE_LETTERS) for _ in range(3)) + str(rng.randint(100, 999))
            colour = rng.choice(scenes.COLOURS)
            plan.add(JUNCTION_CAMERA, scenes.Pass(t, plate, rng.uniform(30, 65), colour, lane=lane))
            vehicles += 1
            t += rng.uniform(4.0, 8.0)
    renderer = scenes.SceneRenderer(JUNCTION_CAMERA, junction=True, seed=seed)
    ppm = scenes.PIXELS_PER_METRE
    x0, x1 = scenes.ROAD_X
    image_points = [[x0, 0], [x1, 0], [x1, scenes.HEIGHT], [x0, scenes.HEIGHT]]
    ground_points = [
        [0, 0],
        [(x1 - x0) / ppm, 0],
        [(x1 - x0) / ppm, scenes.HEIGHT / ppm],
        [0, scenes.HEIGHT / ppm],
    ]
    analysis: dict[str, Any] = {
        "junction": "J-BENCH",
        "signal_head_box": list(scenes.SIGNAL_BOX),
        "approach_point": [scenes.WIDTH / 2, 40],
        "speed_limit_kmh": 50.0,
    }
    lines = [
        {
            "name": "lane 1-2",
            "points": [[x0, scenes.STOP_LINE_Y], [x1, scenes.STOP_LINE_Y]],
            "purpose": "stop_line",
        }
    ]
    with tempfile.TemporaryDirectory() as folder:
        media = MediaStore(Path(folder) / "media")
        if hasattr(anpr, "AnalysisSettings"):  # typed per-camera configuration (issue 17)
            if "detector" in anpr.AnalysisSettings.model_fields:  # drawn rectangles: motion finds them
                analysis["detector"] = "motion"
            setup = anpr.CameraSetup(
                JUNCTION_CAMERA,
                "anpr",
                anpr.AnalysisSettings.model_validate(analysis),
                [anpr.Line.model_validate(line) for line in lines],
                [],
            )
        else:
            setup = anpr.CameraSetup(JUNCTION_CAMERA, "anpr", analysis, lines, [])
        options: dict[str, Any] = {"fps": fps}
        if "calibrations" in inspect.signature(anpr.AnprPipeline).parameters:
            from safecity.vision.traffic import Calibration, SpotSpeed

            # The calibration comes from the centre's audited record, as a worker's copy holds it.
            calibration = Calibration(
                id=1,
                camera_id=JUNCTION_CAMERA,
                image_points=image_points,
                ground_points=ground_points,
                valid_from=T0 - timedelta(days=1),
                valid_until=T0 + timedelta(days=300),
            )
            options["calibrations"] = lambda camera_id, at: SpotSpeed.of(calibration)
        else:
            analysis["calibration"] = {"image_points": image_points, "ground_points": ground_points}
        pipeline = anpr.AnprPipeline(setup, media, **options)
        counts: dict[str, int] = {}
        started = time.perf_counter()
        frames = int(seconds * fps)
        for index in range(frames):
            t = index / fps
            image = renderer.render(t, plan.due(JUNCTION_CAMERA, t))
            frame = Frame(
                image=image, pts_seconds=t, wall_time=T0 + timedelta(seconds=t), keyframe=True, index=index
            )
            for event in pipeline.process(frame):
                name = getattr(event, "offence", None) or event.type
                counts[name] = counts.get(name, 0) + 1
        for event in pipeline.tick(T0 + timedelta(seconds=seconds + 60)):
            name = getattr(event, "offence", None) or event.type
            counts[name] = counts.get(name, 0) + 1
        elapsed = time.perf_counter() - started
        files = [p for p in (Path(folder) / "media").rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
    per_hour = 3600 / seconds
    return {
        "stream_s": seconds,
        "fps": fps,
        "vehicles": vehicles,
        "events": counts,
        "files": len(files),
        "mb": round(size / 1e6, 2),
        "files_per_camera_hour": round(len(files) * per_hour),
        "mb_per_camera_hour": round(size / 1e6 * per_hour, 1),
        "analysis_s": round(elapsed, 1),
    }


def media_in_subprocess(src: str, seconds: float, fps: float, seed: int) -> dict[str, Any]:
    """Runs `junction_media` with another checkout's sources first on the path (the code as it was)."""
    env = {**os.environ, "PYTHONPATH": src}
    command = [
        sys.executable,
        __file__,
        "--media-only",
        "--seconds",
        str(seconds),
        "--fps",
        str(fps),
        "--seed",
        str(seed),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout))


# --- 2. challan issue rate through the court-readiness gate ----------------------------------------


def gate_rates(backlog: int, batch: int, cameras: int) -> dict[str, Any]:
    """Issues the same backlog with the gate off and on (fresh databases); returns both rates."""
    off = _issue_backlog(backlog, batch, cameras, gate=False)
    on = _issue_backlog(backlog, batch, cameras, gate=True)
    return {
        "backlog": backlog,
        "batch": batch,
        "cameras": cameras,
        "gate_off_per_s": off["per_s"],
        "gate_on_per_s": on["per_s"],
        "gate_on_held": on["held"],
        "gate_cost_pct": round((off["per_s"] - on["per_s"]) / off["per_s"] * 100, 1),
        "goal_per_s": 5000,
    }


def _issue_backlog(backlog: int, batch: int, cameras: int, *, gate: bool) -> dict[str, Any]:
    import numpy as np
    from sqlalchemy import insert

    from safecity.challans import service as challans
    from safecity.core.context import Context
    from safecity.enforcement import service as enforcement
    from safecity.enforcement.models import Violation
    from safecity.settings import Settings

    with tempfile.TemporaryDirectory() as folder:
        ctx = Context.create(Settings(data_dir=Path(folder)))
        try:
            photo = ctx.media.put_image(np.full((360, 640, 3), 100, np.uint8))
            cams = [f"cam-{i}" for i in range(cameras)]
            with ctx.db.session() as session:
                registry = "plate,owner,cnic,address,make,colour\n" + "".join(
                    f"K{i:07d},Owner {i},42{i:011d},House {i} Karachi,Suzuki,white\n"
                    for i in range(backlog // 2)
                )
                assert not challans.import_registry(session, registry, actor="bench").errors
                calibrations = {cam: court_ready(session, ctx, cam) for cam in cams}
            now = datetime.now(UTC)
            rows = [
                approved_violation(
                    i, cams[i % cameras], f"K{i % (backlog // 2):07d}", photo, calibrations, now=now
                )
                for i in range(backlog)
            ]
            with ctx.db.session() as session:
                session.execute(insert(Violation), rows)
            original = enforcement.readiness_holds
            if not gate:
                # The gate's cost is what this bench measures: without it, nothing is held by it.
                enforcement.readiness_holds = lambda session, rows: {}  # type: ignore[assignment]
            try:
                issued = held = 0
                started = time.perf_counter()
                while True:
                    with ctx.db.session() as session:
                        report = challans.issue_pending(session, limit=batch, now=T0 + timedelta(hours=2))
                    issued, held = issued + report.issued, held + report.held
                    if report.issued + report.held < batch:
                        break
                elapsed = time.perf_counter() - started
            finally:
                enforcement.readiness_holds = original  # type: ignore[method-assign]
            log(f"  gate {'on' if gate else 'off'}: {issued:,} issued, {held:,} held in {elapsed:.2f} s")
            return {"per_s": round(issued / elapsed, 1), "held": held}
        finally:
            ctx.db.dispose()


def approved_violation(
    i: int, cam: str, plate: str, photo: str, calibrations: dict[str, int], *, now: datetime
) -> dict[str, Any]:
    """Returns the row of the `i`th approved violation waiting to be issued (red light, speeding or no
    seat belt in turn) at `cam`, its evidence court-ready: hashed frames, the camera's calibration
    (`calibrations`, from `court_ready`) for a speed, its junction's signal for a red light."""
    from safecity.enforcement.readiness import service as readiness

    offence = ("red_light", "speeding", "no_seat_belt")[i % 3]
    measured = 3.0 if offence == "red_light" else 84.0
    evidence = readiness.with_images(
        {"frames_after": [photo], "refs": [photo], "measured": measured}, verified={photo: True}, at=now
    )
    if offence == "speeding":
        evidence["calibration"] = {"id": calibrations[cam]}
    if offence == "red_light":
        evidence["signal"] = {"junction": f"J-{cam}", "phase_seen": "red"}
    return {
        "id": f"v{i:025d}",
        "offence": offence,
        "plate": plate,
        "camera_id": cam,
        "at": T0 + timedelta(seconds=i % 3600),
        "status": "approved",
        "confidence": 0.99,
        "measured": measured,
        "limit": 60.0,
        "unit": "km/h",
        "vehicle_class": "car",
        "evidence": evidence,
        "detail": {},
        "source_key": f"bench:{i}",
        "dedup_key": f"{offence}:{cam}:{i}",
        "occurrences": 1,
        "auto_approved": True,
        "review_reason": "",
        "hold_reason": "",
        "created_at": now + timedelta(microseconds=i),
    }


def court_ready(session: Any, ctx: Any, camera_id: str) -> int:
    """Registers a camera and records what makes its evidence court-ready; returns its calibration id."""
    from safecity.cameras import service as cameras
    from safecity.cameras.models import CameraIn

    cameras.create(
        session,
        CameraIn(id=camera_id, name=camera_id, kind="anpr", district="East", latitude=24.86, longitude=67.07),
        actor="bench",
    )
    from safecity.enforcement.calibrations import service as calibrations
    from safecity.enforcement.calibrations.models import CalibrationIn, ReferenceMeasurement
    from safecity.enforcement.readiness import service as readiness
    from safecity.enforcement.readiness.models import ClockCheckIn, RoadSurveyIn, SignalSourceIn

    certificate = ctx.media.put(b"%PDF-1.4 calibration certificate " + camera_id.encode(), "pdf")
    calibration = calibrations.record(
        session,
        camera_id,
        CalibrationIn(
            image_points=[(170, 0), (470, 0), (470, 360), (170, 360)],
            ground_points=[(0, 0), (25, 0), (25, 30), (0, 30)],
            references=[ReferenceMeasurement(image_from=(170, 0), image_to=(470, 0), metres=25.0)],
            measured_by="Inspector Bench",
            measured_at=T0 - timedelta(days=3),
            valid_from=T0 - timedelta(days=2),
            certificate_ref=certificate,
            certificate_number=f"PSQCA-{camera_id}",
            certificate_expires=(datetime.now(UTC) + timedelta(days=300)).date(),
        ),
        media=ctx.media,
        actor="bench",
    )
    readiness.record_survey(
        session,
        camera_id,
        RoadSurveyIn(
            lane_markings=True,
            stop_lines=True,
            signals=True,
            surveyed_by="Inspector Bench",
            surveyed_at=T0 - timedelta(days=5),
        ),
        actor="bench",
    )
    readiness.record_clock_check(
        session,
        camera_id,
        ClockCheckIn(offset_s=0.04, measured_at=T0 - timedelta(minutes=30), method="onvif"),
        actor="bench",
    )
    readiness.record_signal_source(
        session,
        f"J-{camera_id}",
        SignalSourceIn(
            kind="controller",
            device=f"controller-{camera_id}",
            offset_ms=20,
            checked_at=T0 - timedelta(days=1),
            checked_by="Inspector Bench",
        ),
        actor="bench",
    )
    return calibration.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short stream and a small backlog")
    parser.add_argument("--before", help="another checkout's src folder: its pipeline is measured too")
    parser.add_argument("--seconds", type=float, help="seconds of junction stream (default 600, quick 60)")
    parser.add_argument("--fps", type=float, default=5.0, help="analysed frames per second")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--backlog", type=int, help="approved violations to issue (default 100,000, quick 20,000)"
    )
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--cameras", type=int, default=200, help="cameras the backlog comes from")
    parser.add_argument("--media-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    seconds = args.seconds or (60.0 if args.quick else 600.0)
    if args.media_only:
        print(json.dumps(junction_media(seconds, args.fps, args.seed)))
        return
    result: dict[str, Any] = {"bench": "enforcement", "quick": args.quick}
    log(f"media: {seconds:.0f} s of a busy junction at {args.fps:g} fps…")
    if args.before:
        result["media_before"] = media_in_subprocess(args.before, seconds, args.fps, args.seed)
        log(f"  before: {result['media_before']['files']} files")
    result["media_after"] = media_in_subprocess(
        str(Path(__file__).resolve().parents[1] / "src"), seconds, args.fps, args.seed
    )
    log(f"  after: {result['media_after']['files']} files")
    backlog = args.backlog or (20_000 if args.quick else 100_000)
    log(f"gate: issuing {backlog:,} approved violations with the court-readiness gate off, then on…")
    result["issue"] = gate_rates(backlog, args.batch, args.cameras)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
