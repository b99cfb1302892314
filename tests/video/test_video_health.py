"""Camera health: every fault in made-up footage is reported as its state, when it began, and nothing else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from safecity.core.errors import Unavailable
from safecity.video.footage import EXPECTED_STATE, Stretch
from safecity.video.health import HealthChange, HealthMonitor, HealthThresholds
from safecity.video.sources import AuthenticationFailed, CameraUnreachable, open_source


def _watch(path: Path, decode: str) -> list[tuple[float, HealthChange]]:
    """Returns each health change with the stream time at which it was reported."""
    monitor = HealthMonitor("cam-1")
    changes = []
    for frame in open_source(str(path), decode=decode).frames():  # type: ignore[arg-type]
        change = monitor.observe(frame)
        if change:
            changes.append((frame.pts_seconds, change))
    return changes


@pytest.mark.parametrize("decode", ["all", "keyframes"])
def test_each_fault_is_reported_during_its_stretch(
    fault_footage: tuple[Path, list[Stretch]], decode: str
) -> None:
    path, stretches = fault_footage
    changes = _watch(path, decode)
    start = changes[0][1].since
    for stretch in stretches:
        if EXPECTED_STATE[stretch.fault] == "online":
            continue
        expected = EXPECTED_STATE[stretch.fault]
        # Key-frames of a low-rate stretch come every 5 s (the group length counts frames): allow for it.
        late = 5.0 if decode == "keyframes" and stretch.fault == "low_fps" else 2.0
        found = [
            (at, c)
            for at, c in changes
            if c.state == expected and stretch.start_s <= at <= stretch.end_s + late + 1
        ]
        assert found, f"{stretch.fault} at {stretch.start_s}-{stretch.end_s}s not reported: {changes}"
        _at, change = found[0]
        began = (change.since - start).total_seconds()
        assert stretch.start_s - 0.1 <= began <= stretch.start_s + late + 0.5, f"{expected} began at {began}"
        assert change.evidence is not None and change.evidence.shape == (180, 320, 3)
        assert change.detail


@pytest.mark.parametrize("decode", ["all", "keyframes"])
def test_no_false_alarm_for_traffic_lorries_or_dusk(
    fault_footage: tuple[Path, list[Stretch]], decode: str
) -> None:
    path, stretches = fault_footage
    reported = [c.state for _, c in _watch(path, decode) if c.state != "online"]
    expected = [EXPECTED_STATE[s.fault] for s in stretches if EXPECTED_STATE[s.fault] != "online"]
    assert reported == expected  # one report per fault, in order, and nothing else


def test_lost_stream_goes_reconnecting_then_offline_by_the_clock(street_clip: Path) -> None:
    monitor = HealthMonitor("cam-2", HealthThresholds(offline_after_s=6))
    for frame in open_source(str(street_clip), decode="keyframes").frames():
        monitor.observe(frame)
    assert monitor.state == "online"
    change = monitor.observe_failure(CameraUnreachable("rtsp://cam refused the connection"))
    assert change is not None and change.state == "reconnecting" and "refused" in change.detail
    assert monitor.observe_failure(CameraUnreachable("again")) is None
    later = change.since + timedelta(seconds=7)
    offline = monitor.tick(later)
    assert offline is not None and offline.state == "offline" and "no picture for 7 s" in offline.detail
    assert monitor.tick(later + timedelta(seconds=5)) is None


def test_wrong_password_is_offline_at_once_with_the_reason() -> None:
    monitor = HealthMonitor("cam-3")
    change = monitor.observe_failure(AuthenticationFailed("rtsp://cam refused the user name or password"))
    assert change is not None and change.state == "offline" and "password" in change.detail
    assert (
        monitor.observe_failure(AuthenticationFailed("rtsp://cam refused the user name or password")) is None
    )


def test_change_becomes_a_bus_event_with_a_stable_key() -> None:
    monitor = HealthMonitor("cam-4")
    change = monitor.observe_failure(Unavailable("down"))
    assert change is not None
    event = change.to_event(frame_ref="sha256:abc")
    assert event.state == "offline" and event.camera_id == "cam-4" and event.frame_ref == "sha256:abc"
    assert event.key == change.to_event().key
