"""The synthetic Karachi: cameras at real places in every district, a vehicle registry, a hot list,
a signalised junction, a speed section, patrol units with their officers, a watch list, and the
traffic that will pass them (`demo/story.py`: the wanted man on a motorcycle at a face camera).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from safecity.accounts import service as accounts
from safecity.accounts.models import Role, UserIn
from safecity.anpr import service as anpr
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.challans import service as challans
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import SafeCityError
from safecity.demo import story
from safecity.demo.crew import Crew, enlist
from safecity.demo.scenes import (
    HEIGHT,
    PIXELS_PER_METRE,
    ROAD_X,
    SIGNAL_BOX,
    SIGNAL_CYCLE,
    STOP_LINE_Y,
    WIDTH,
    Head,
    Pass,
    TrafficPlan,
    time_to_cross,
)
from safecity.dispatch import service as dispatch
from safecity.enforcement import service as enforcement
from safecity.enforcement.calibrations import service as calibrations
from safecity.enforcement.calibrations.models import CalibrationIn
from safecity.enforcement.models import SpeedLimit, SpeedSectionIn
from safecity.enforcement.readiness import service as readiness
from safecity.enforcement.readiness.models import ClockCheckIn, RoadSurveyIn, SignalSourceIn

# Real places in Karachi's seven districts (approximate WGS84 positions).
DISTRICT_PLACES: dict[str, list[tuple[str, float, float]]] = {
    "South": [
        ("Saddar, Empress Market", 24.8578, 67.0296),
        ("Clifton, Teen Talwar", 24.8303, 67.0337),
        ("I. I. Chundrigar Road", 24.8486, 67.0067),
        ("Regal Chowk", 24.8606, 67.0262),
    ],
    "East": [
        ("Shahrah-e-Faisal, Nursery", 24.8628, 67.0736),
        ("Gulshan-e-Iqbal, Maskan", 24.9307, 67.0935),
        ("PECHS, Tariq Road", 24.8726, 67.0617),
        ("Shahrah-e-Faisal, FTC", 24.8590, 67.0650),
    ],
    "Central": [
        ("Nazimabad No. 7", 24.9093, 67.0282),
        ("North Nazimabad, Five Star", 24.9431, 67.0464),
        ("Gulberg Chowrangi", 24.9365, 67.0722),
        ("Liaquatabad No. 10", 24.9077, 67.0460),
    ],
    "West": [
        ("Orangi Town, Banaras Chowk", 24.9296, 67.0113),
        ("SITE, Habib Bank Chowrangi", 24.8957, 66.9957),
        ("Baldia Town", 24.9213, 66.9673),
    ],
    "Korangi": [
        ("Korangi Crossing", 24.8307, 67.1267),
        ("Landhi, Babar Market", 24.8533, 67.2006),
        ("Korangi Industrial Area", 24.8200, 67.1080),
    ],
    "Malir": [
        ("Malir Cantt gate", 24.9411, 67.2058),
        ("Jinnah International Airport", 24.9008, 67.1681),
        ("Malir Halt", 24.8934, 67.1930),
    ],
    "Keamari": [
        ("Keamari, Native Jetty", 24.8395, 66.9870),
        ("Mauripur Road", 24.8718, 66.9610),
        ("Hawks Bay Road", 24.8570, 66.9200),
    ],
}

SECTION_ENTRY, SECTION_EXIT, SECTION_METRES = "khi-e-anpr-sf-entry", "khi-e-anpr-sf-exit", 500.0
JUNCTION = "khi-e-anpr-nursery"
HOTLIST_CAM = "khi-c-anpr-nazimabad"
SPOT_SPEED_CAM = "khi-k-anpr-korangi"
FAR_CAM = "khi-w-anpr-orangi"
AIRPORT_FACE_CAM = story.STRANGER_CAM  # where the unlisted man rides past

ROAD_CALIBRATION = {
    "image_points": [[ROAD_X[0], 0], [ROAD_X[1], 0], [ROAD_X[1], HEIGHT], [ROAD_X[0], HEIGHT]],
    "ground_points": [
        [0, 0],
        [(ROAD_X[1] - ROAD_X[0]) / PIXELS_PER_METRE, 0],
        [(ROAD_X[1] - ROAD_X[0]) / PIXELS_PER_METRE, HEIGHT / PIXELS_PER_METRE],
        [0, HEIGHT / PIXELS_PER_METRE],
    ],
    "note": "synthetic road: 12 px per metre",
}

SINDH_SERIES = ("BKR", "AFR", "BGL", "LEK", "ADH", "BHK", "AQJ", "BNT", "CAL", "AZM")
OWNERS = (
    "Muhammad Ali",
    "Ayesha Khan",
    "Bilal Ahmed",
    "Fatima Siddiqui",
    "Usman Qureshi",
    "Sana Mirza",
    "Hassan Raza",
    "Zainab Hussain",
    "Imran Shaikh",
    "Nadia Baloch",
)
MAKES = ("Suzuki Mehran", "Toyota Corolla", "Honda City", "Suzuki Alto", "Toyota Hilux", "Honda Civic")


@dataclass
class CityPlan:
    """What the demo set up: the admin's one-time password, the vehicles and the man of interest."""

    admin_password: str
    stolen_plate: str
    cloned_plate: str
    cameras: int
    streaming: int
    crew: Crew
    # The seed story: what the face camera will see, or why it will not be told (no shared photos).
    face_story: str
    wanted_entry_id: str | None = None
    rider_head: Head | None = None
    # The unit nearest the face camera when the city was built: the one that will be sent.
    story_unit: str | None = None
    # The unlisted man who rides past the airport's face camera, or why he does not.
    stranger_plan: str = "no stranger"
    stranger_head: Head | None = None
    stranger_starts: tuple[float, ...] = ()


def _plate(rng: random.Random) -> str:
    return f"{rng.choice(SINDH_SERIES)}{rng.randint(100, 999)}"


def _camera_rows(fps: float) -> list[CameraIn]:
    synth = "synthetic://{scene}/{id}?fps=" + str(int(fps))
    analysed = {
        JUNCTION: ("junction", "East", 24.8628, 67.0736, "Shahrah-e-Faisal @ Nursery (signal)"),
        SECTION_ENTRY: ("road", "East", 24.8601, 67.0672, "Shahrah-e-Faisal eastbound, section entry"),
        SECTION_EXIT: ("road", "East", 24.8620, 67.0718, "Shahrah-e-Faisal eastbound, section exit"),
        HOTLIST_CAM: ("road", "Central", 24.9093, 67.0282, "Nazimabad No. 7 (ANPR)"),
        SPOT_SPEED_CAM: ("road", "Korangi", 24.8307, 67.1267, "Korangi Crossing (speed camera)"),
        FAR_CAM: ("road", "West", 24.9296, 67.0113, "Orangi Town, Banaras Chowk (ANPR)"),
    }
    rows: list[CameraIn] = []
    for cam_id, (scene, district, lat, lon, name) in analysed.items():
        # The rendered vehicles are coloured rectangles, which no COCO detector calls cars: motion finds them.
        analysis: dict[str, object] = {"analysis_fps": 5.0, "motion_gate": False, "detector": "motion"}
        lines = []
        if cam_id == JUNCTION:
            analysis |= {
                "junction": "J-NURSERY",
                "signal_head_box": list(SIGNAL_BOX),
                "approach_point": [WIDTH / 2, 40],
            }
            lines = [
                {
                    "name": "lane 1-2",
                    "points": [[ROAD_X[0], STOP_LINE_Y], [ROAD_X[1], STOP_LINE_Y]],
                    "purpose": "stop_line",
                }
            ]
        if cam_id == SPOT_SPEED_CAM:
            analysis["speed_limit_kmh"] = 60.0
        rows.append(
            CameraIn.model_validate(
                {
                    "id": cam_id,
                    "name": name,
                    "kind": "anpr",
                    "district": district,
                    "latitude": lat,
                    "longitude": lon,
                    "stream_url": synth.format(scene=scene, id=cam_id),
                    "analysis": analysis,
                    "lines": lines,
                }
            )
        )
    rows.append(
        CameraIn.model_validate(
            {
                "id": "khi-m-fixed-cantt",
                "name": "Malir Cantt gate (covered after 20 s)",
                "kind": "fixed",
                "district": "Malir",
                "latitude": 24.9411,
                "longitude": 67.2058,
                "stream_url": "synthetic://road/khi-m-fixed-cantt?fps=5&fault=covered@20",
                "analysis": {"analysis_fps": 1.0},
            }
        )
    )
    rows.append(
        CameraIn.model_validate(
            {
                "id": "khi-k-fixed-landhi",
                "name": "Landhi, Babar Market (link down)",
                "kind": "fixed",
                "district": "Korangi",
                "latitude": 24.8533,
                "longitude": 67.2006,
                "stream_url": "rtsp://127.0.0.1:9/dead",
                "analysis": {"analysis_fps": 1.0},
            }
        )
    )
    taken = {(r.latitude, r.longitude) for r in rows}
    for district, places in DISTRICT_PLACES.items():
        for n, (place, lat, lon) in enumerate(places):
            if (lat, lon) in taken:
                continue
            kind = "face" if place in {"Regal Chowk", "Jinnah International Airport"} else "fixed"
            cam_id = f"khi-{district[:2].lower()}-{kind}-{n:02d}"
            # Fixed cameras stream a quiet street at 2 fps for health monitoring (and the video wall);
            # face cameras 4 fps, analysed once a second (a face costs ~0.1 s of a core to find and encode;
            # the wanted man waits at the chowk long enough for the three frames his match needs).
            fps_here = 4 if kind == "face" else 2
            url = f"synthetic://road/{cam_id}?fps={fps_here}&seed={n}"
            rows.append(
                CameraIn.model_validate(
                    {
                        "id": cam_id,
                        "name": place,
                        "kind": kind,
                        "district": district,
                        "latitude": lat,
                        "longitude": lon,
                        "stream_url": url,
                        # The face cameras analyse even a still picture (a rider waiting at the chowk).
                        "analysis": {"analysis_fps": 1.0, "motion_gate": kind != "face"},
                    }
                )
            )
    return rows


def build_city(
    ctx: Context, *, seconds: float, fps: float = 10.0, seed: int = 7, faces_dir: Path | None = None
) -> tuple[CityPlan, TrafficPlan]:
    """Registers the synthetic city in `ctx` and returns it with the traffic that will pass its cameras.

    `faces_dir` is the shared face set (default: ../shared/data/faces beside the project); without it
    the city runs without the face story.
    """
    rng = random.Random(seed)
    folder = faces_dir or story.default_faces_dir()
    wanted: story.WantedPerson | None = None
    head: Head | None = None
    try:
        wanted = story.find_wanted(folder)
        head = story.rider_head(wanted.street_photo.read_bytes())
        face_story = (
            f"a wanted man ({wanted.person_id} of {folder}) rides past {story.FACE_CAM} about once a minute"
        )
    except (story.StoryUnavailable, SafeCityError, OSError) as exc:
        wanted, head = None, None
        face_story = f"no face story: {exc}; the rest of the city runs without it"
    stranger_head: Head | None = None
    try:
        stranger = story.find_stranger(folder, besides=wanted.person_id if wanted else None)
        stranger_head = story.rider_head(stranger.photo.read_bytes())
        stranger_plan = (
            f"a man on no watch list ({stranger.person_id} of {folder}) rides past {story.STRANGER_CAM} "
            "about once a minute"
        )
    except (story.StoryUnavailable, SafeCityError, OSError) as exc:
        stranger_plan = f"no stranger: {exc}"
    password = accounts.generate_password()
    stolen, cloned = "BKR294", "AFR771"
    registry = list(dict.fromkeys([stolen, cloned] + [_plate(rng) for _ in range(400)]))
    unregistered = {registry[-1], registry[-2]}
    with ctx.db.session() as session:
        accounts.create_user(
            session,
            UserIn(username="admin", full_name="Demo administrator", role=Role.admin, password=password),
            actor="demo",
            must_change_password=True,
        )
        rows = _camera_rows(fps)
        for row in rows:
            cameras.create(session, row, actor="demo")
        lines = ["plate,owner,cnic,address,make,colour"]
        for i, plate in enumerate(p for p in registry if p not in unregistered):
            lines.append(
                f"{plate},{OWNERS[i % len(OWNERS)]},42101-{1000000 + i:07d}-{i % 9 + 1},"
                f'"House {i + 1}, Block {i % 20 + 1}, Karachi",{MAKES[i % len(MAKES)]},white'
            )
        report = challans.import_registry(session, "\n".join(lines) + "\n", actor="demo")
        if report.errors:
            raise SafeCityError("the demo's vehicle registry did not import: " + "; ".join(report.errors[:3]))
        anpr.add_hotlist_entry(
            session,
            plate=stolen,
            list_name="stolen",
            reason="FIR 214/2026, PS Saddar: car theft",
            actor="demo",
            vehicle="white Suzuki Mehran",
            reference="FIR 214/2026",
        )
        enforcement.create_speed_section(
            session,
            SpeedSectionIn(
                id="sf-eastbound",
                name="Shahrah-e-Faisal eastbound, FTC to Nursery",
                entry_camera_id=SECTION_ENTRY,
                exit_camera_id=SECTION_EXIT,
                distance_m=SECTION_METRES,
                limit=SpeedLimit(default_kmh=60.0),
            ),
            actor="demo",
        )
        policy = enforcement.get_policy(session)
        policy.auto_issue_confidence = 0.5
        # Synthetic cameras keep the worker's own clock: their one check holds for the demo's life.
        policy.clock_check_max_age_h = 24 * 31
        enforcement.set_policy(session, policy, actor="demo")
        _court_ready(session, ctx, [r.id for r in rows if r.kind == "anpr" and r.stream_url])
        for n, (district, places) in enumerate(DISTRICT_PLACES.items()):
            _, lat, lon = places[0]
            dispatch.create_unit(
                session,
                unit_id=f"mobile-{n + 1:02d}",
                callsign=f"Madadgar-{n + 1:02d}",
                district=district,
                latitude=lat + 0.004,
                longitude=lon - 0.004,
                actor="demo",
            )
        # Idle units patrol the city's named places near their bases (the cameras' places among them).
        crew = enlist(
            session, places=[(lat, lon) for places in DISTRICT_PLACES.values() for _, lat, lon in places]
        )
        story_unit = story.nearest_unit(session)
    entry_id = None
    if wanted is not None:
        try:
            with ctx.db.session() as session:
                entry_id = story.enrol_wanted(session, ctx.media, wanted)
        except SafeCityError as exc:  # a photo the watch list refuses (no face, two faces, too small)
            head = None
            face_story = (
                f"no face story: the watch list refused {wanted.watchlist_photo} ({exc.message}); "
                "the rest of the city runs without it"
            )
    plan = TrafficPlan()
    _schedule(plan, rng, registry, stolen=stolen, cloned=cloned, seconds=seconds)
    stranger_starts = _schedule_riders(
        plan, rng, seconds=seconds, wanted=head is not None, stranger=stranger_head is not None
    )
    streaming = sum(1 for r in rows if r.stream_url)
    city = CityPlan(
        password,
        stolen,
        cloned,
        len(rows),
        streaming,
        crew,
        face_story,
        entry_id,
        head,
        story_unit,
        stranger_plan,
        stranger_head,
        stranger_starts,
    )
    return city, plan


def _court_ready(session: Session, ctx: Context, camera_ids: list[str]) -> None:
    """Records, through the enforcement services, what makes the demo's challans court-ready: each
    road camera's calibration with its certificate, a compliant road survey, a clock check, and the
    junction's signal source (the junction camera reading the lamp)."""
    now = utcnow()
    certificate = ctx.media.put(b"%PDF-1.4\n% synthetic road calibration certificate\n", "pdf")
    width_m = (ROAD_X[1] - ROAD_X[0]) / PIXELS_PER_METRE
    for camera_id in camera_ids:
        calibration = CalibrationIn.model_validate(
            {
                **ROAD_CALIBRATION,
                "references": [{"image_from": [ROAD_X[0], 0], "image_to": [ROAD_X[1], 0], "metres": width_m}],
                "measured_by": "demo",
                "measured_at": now - timedelta(days=1),
                "certificate_ref": certificate,
                "certificate_number": f"DEMO-{camera_id}",
                "certificate_expires": (now + timedelta(days=365)).date(),
            }
        )
        calibrations.record(session, camera_id, calibration, media=ctx.media, actor="demo")
        survey = RoadSurveyIn(
            lane_markings=True,
            stop_lines=True,
            signals=True,
            surveyed_by="demo",
            surveyed_at=now - timedelta(days=1),
        )
        readiness.record_survey(session, camera_id, survey, actor="demo")
        clock = ClockCheckIn(offset_s=0.0, measured_at=now - timedelta(seconds=1), method="ntp_query")
        readiness.record_clock_check(session, camera_id, clock, actor="demo")
    source = SignalSourceIn(
        kind="lamp", device=JUNCTION, offset_ms=0, checked_at=now - timedelta(days=1), checked_by="demo"
    )
    readiness.record_signal_source(session, "J-NURSERY", source, actor="demo")


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return rng.choice(
        [(200, 200, 200), (40, 40, 160), (150, 60, 30), (30, 30, 30), (60, 140, 200), (90, 90, 90)]
    )


def _schedule(
    plan: TrafficPlan, rng: random.Random, plates: list[str], *, stolen: str, cloned: str, seconds: float
) -> None:
    """Fills the plan: ordinary traffic plus the planted events, the first of each early in the run."""
    cycle = sum(d for _, d in SIGNAL_CYCLE)
    red_start = SIGNAL_CYCLE[0][1] + SIGNAL_CYCLE[1][1]
    horizon = max(seconds, 60.0)
    to_line = lambda kmh: time_to_cross(kmh, (STOP_LINE_Y + 170) / PIXELS_PER_METRE)  # noqa: E731
    # Each road has its own vehicles: one car at two distant cameras at once would be a cloned plate.
    ordinary = [p for p in plates[:-2] if p not in {stolen, cloned}]
    roads = ("junction", "section", "korangi", "nazimabad")
    local = {road: ordinary[i :: len(roads)] for i, road in enumerate(roads)}

    def vehicle(start: float, plate: str, kmh: float, lane: int = 0, note: str = "") -> Pass:
        return Pass(start, plate, kmh, _colour(rng), "sindh", lane, note)

    t = 2.0
    while t < horizon:
        # Junction: through traffic on green; one red-light runner in each red phase.
        kmh = rng.uniform(30, 45)
        cycle_start = t - t % cycle
        cross = t + to_line(kmh)
        if signal_phase_at(cross, cycle) == "green":
            plan.add(
                "khi-e-anpr-nursery", vehicle(t, rng.choice(local["junction"]), kmh, lane=rng.randint(0, 1))
            )
        runner_cross = cycle_start + red_start + 2.5
        if cycle_start <= t < cycle_start + 4.5:
            plan.add(
                "khi-e-anpr-nursery",
                vehicle(runner_cross - to_line(40), rng.choice(local["junction"]), 40, 1, "red runner"),
            )
        t += rng.uniform(5.0, 8.0)
    t = 4.0
    while t < horizon:
        # Speed section: most keep to 60 km/h; every third driver speeds.
        speeding = rng.random() < 0.34
        kmh = rng.uniform(75, 95) if speeding else rng.uniform(40, 55)
        plate = rng.choice(local["section"])
        plan.add(SECTION_ENTRY, vehicle(t, plate, kmh))
        plan.add(SECTION_EXIT, vehicle(t + time_to_cross(kmh, SECTION_METRES), plate, kmh))
        # Korangi spot-speed camera.
        plan.add(SPOT_SPEED_CAM, vehicle(t + 1.5, rng.choice(local["korangi"]), rng.uniform(45, 90)))
        t += rng.uniform(7.0, 10.0)
    for start in range(5, int(horizon), 40):
        plan.add(HOTLIST_CAM, vehicle(start, stolen, 40, note="stolen"))
        plan.add(HOTLIST_CAM, vehicle(start + 12, rng.choice(local["nazimabad"]), 45))
    for start in range(10, int(horizon), 60):
        # The same plate at Korangi and Orangi, 17 km apart, seconds apart: a cloned plate.
        plan.add(SPOT_SPEED_CAM, vehicle(start + 0.0, cloned, 50, lane=1, note="clone A"))
        plan.add(FAR_CAM, vehicle(start + 8.0, cloned, 50, note="clone B"))
        plan.add(FAR_CAM, vehicle(start + 25.0, plates[-1], 45, note="unregistered"))


def _schedule_riders(
    plan: TrafficPlan, rng: random.Random, *, seconds: float, wanted: bool, stranger: bool
) -> tuple[float, ...]:
    """Fills the face cameras' roads: riders in helmets, cars, (`wanted`) the wanted man each minute at
    Regal Chowk and (`stranger`) an unlisted man each minute at the airport; returns the stranger's starts."""
    horizon = max(seconds, 60.0)
    starts: tuple[float, ...] = ()
    if stranger:
        # He waits as long as the wanted man, face to the camera: the pipeline sees him on several frames.
        starts = tuple(float(t) for t in range(15, int(horizon), 60))
        for start in starts:
            rider = Pass(
                start, "", 15.0, (120, 60, 40), "motorcycle", 0, "stranger", story.STRANGER_FACE, (90.0, 8.0)
            )
            plan.add(story.STRANGER_CAM, rider)
    if wanted:
        for start in range(2, int(horizon), 60):
            # He waits at the chowk for 8 s, face to the camera: seen on several frames however busy the
            # machine (the face vote needs three frames of one tracked face).
            rider = Pass(
                start, "", 15.0, (40, 90, 150), "motorcycle", 0, "wanted", story.RIDER_FACE, (90.0, 8.0)
            )
            plan.add(story.FACE_CAM, rider)
    for camera_id in (story.FACE_CAM, AIRPORT_FACE_CAM):
        t = 20.0 if camera_id == story.FACE_CAM else 3.0
        while t < horizon:
            if rng.random() < 0.5:
                plan.add(camera_id, Pass(t, "", rng.uniform(20, 35), _colour(rng), "motorcycle", 1))
            else:
                plan.add(camera_id, Pass(t, _plate(rng), rng.uniform(25, 45), _colour(rng), lane=1))
            t += rng.uniform(12.0, 20.0)
    return starts


def signal_phase_at(t: float, cycle: float) -> str:
    """Returns the junction's phase at `t` seconds into the demo."""
    into = t % cycle
    for phase, duration in SIGNAL_CYCLE:
        if into < duration:
            return phase
        into -= duration
    return "red"
