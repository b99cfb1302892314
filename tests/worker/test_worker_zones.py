"""Zones and lines reach the pipelines: a vehicle outside the roi zones is never read; stop lines are used."""

from __future__ import annotations

from datetime import timedelta

from safecity.core.camera_config import AnalysisSettings, Line, Zone
from safecity.core.clock import utcnow
from safecity.core.events import Event
from safecity.core.media import MediaStore
from safecity.demo.scenes import HEIGHT, ROAD_X, Pass, SceneRenderer
from safecity.settings import Settings
from safecity.video.sources import Frame
from safecity.vision.plates import PlateReader
from safecity.worker.anpr import AnprPipeline, CameraSetup

MID = (ROAD_X[0] + ROAD_X[1]) // 2
FPS = 10


def plates_seen(settings: Settings, zones: list[Zone]) -> set[str]:
    """Runs the ANPR pipeline over two cars, one in each lane, and returns the plates it read."""
    renderer = SceneRenderer("zone-cam", junction=False, seed=3)
    vehicles = {
        5: Pass(0.5, "BKR294", 80.0, (200, 200, 200)),
        15: Pass(1.5, "AFR771", 40.0, (40, 40, 160), lane=1),
    }
    setup = CameraSetup(
        "zone-cam", "anpr", AnalysisSettings(motion_gate=False, detector="motion"), zones=zones
    )
    pipeline = AnprPipeline(setup, MediaStore(settings.media_dir), reader=PlateReader(region="pk"), fps=FPS)
    start = utcnow()
    events: list[Event] = []
    for i in range(8 * FPS):
        image = renderer.render(i / FPS, [vehicles[i]] if i in vehicles else [])
        at = start + timedelta(seconds=i / FPS)
        events += pipeline.process(Frame(image, pts_seconds=i / FPS, wall_time=at, index=i))
    events += pipeline.tick(start + timedelta(seconds=60))
    return {e.plate for e in events if e.type == "plate_read"}  # type: ignore[attr-defined]


def test_vehicles_outside_the_roi_zones_are_never_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data")
    assert plates_seen(settings, []) == {"BKR294", "AFR771"}
    right_lane = Zone(name="lane 2", polygon=[(MID, 0), (ROAD_X[1], 0), (ROAD_X[1], HEIGHT), (MID, HEIGHT)])
    only_right = plates_seen(settings, [right_lane])
    left_lane = Zone(name="lane 1", polygon=[(ROAD_X[0], 0), (MID, 0), (MID, HEIGHT), (ROAD_X[0], HEIGHT)])
    only_left = plates_seen(settings, [left_lane])
    assert len(only_right) == 1 and len(only_left) == 1 and only_right != only_left
    # A zone of another purpose restricts nothing: it is stored and shown for analytics to come.
    parking = left_lane.model_copy(update={"purpose": "no_parking"})
    assert plates_seen(settings, [parking]) == {"BKR294", "AFR771"}


def test_the_stop_line_rule_reads_the_typed_line_and_approach_point(tmp_path) -> None:  # type: ignore[no-untyped-def]
    line = Line(name="lane 1-2", points=[(ROAD_X[0], 200), (ROAD_X[1], 200)], purpose="stop_line")
    counting = Line(name="count", points=[(0, 50), (600, 50)])
    setup = CameraSetup(
        "j-cam",
        "anpr",
        AnalysisSettings(junction="J-1", approach_point=(320, 20), detector="motion"),
        lines=[counting, line],
    )
    pipeline = AnprPipeline(setup, MediaStore(tmp_path), reader=PlateReader(region="pk"))
    rule = pipeline.stop_rule
    assert rule is not None
    assert rule.stop_line == ((ROAD_X[0], 200), (ROAD_X[1], 200))
    assert rule.approach_point == (320, 20) and rule.lane == "lane 1-2" and rule.junction == "J-1"
