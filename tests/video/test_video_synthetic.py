"""synthetic:// cameras in any process: the scheme loads on first use, and the traffic needs no plan."""

from __future__ import annotations

import subprocess
import sys

from safecity.demo.scenes import SteadyTraffic, SyntheticSource, TrafficPlan


def test_a_process_that_never_imported_the_demo_opens_synthetic_cameras() -> None:
    script = (
        "import sys\n"
        "from safecity.video.sources import open_source\n"
        "assert 'safecity.demo.scenes' not in sys.modules\n"
        "source = open_source('synthetic://road/khi-s-fixed-1?fps=20')\n"
        "frames = source.frames()\n"
        "shapes = {next(frames).image.shape for _ in range(3)}\n"
        "source.close()\n"
        "print(shapes)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "(360, 640, 3)" in done.stdout


def test_steady_traffic_is_the_same_in_every_process_and_keeps_coming() -> None:
    here, there = SteadyTraffic("city"), SteadyTraffic("city")
    assert here.vehicle("khi-1", 1000) == there.vehicle("khi-1", 1000)
    assert here.vehicle("khi-1", 1000) != here.vehicle("khi-2", 1000)
    now = here.elapsed()
    passes = [p for t in range(0, 80, 2) for p in here.due("khi-1", now + t)]
    assert 6 <= len(passes) <= 11  # about one vehicle every 8 s
    assert all(len(p.plate) == 6 and p.plate[:3].isalpha() and p.plate[3:].isdigit() for p in passes)


def test_a_plan_given_by_the_demo_is_used_instead_of_steady_traffic() -> None:
    planned = TrafficPlan()
    SyntheticSource.plans["test-planned"] = planned
    try:
        assert SyntheticSource.plan("test-planned") is planned
        assert isinstance(SyntheticSource.plan("test-unplanned"), SteadyTraffic)
    finally:
        SyntheticSource.plans.pop("test-planned")
        SyntheticSource.plans.pop("test-unplanned")
