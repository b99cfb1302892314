"""Voting one tracked vehicle's plate reads across frames into one read with a direction."""

from __future__ import annotations

import numpy as np

from safecity.vision.plates import PlateRead, PlateVoter


def _read(plate: str, conf: float, box: tuple[int, int, int, int] = (100, 100, 80, 20)) -> PlateRead:
    crop = np.full((box[3], box[2], 3), int(conf * 255), np.uint8)
    return PlateRead(plate=plate, confidence=conf, box=box, region="pk", raw=plate, crop=crop)


def test_majority_of_characters_wins_over_a_single_misread() -> None:
    voter = PlateVoter()
    for t, plate in enumerate(["ABC123", "A8C123", "ABC123", "ABC128"]):
        voter.add(7, _read(plate, 0.8), float(t))
    [voted] = voter.flush()
    assert voted.plate == "ABC123"
    assert voted.reads == 4
    assert 0.3 < voted.confidence <= 0.8


def test_read_with_a_stray_extra_character_still_votes() -> None:
    voter = PlateVoter()
    voter.add("t1", _read("LEA4521", 0.9), 0.0)
    voter.add("t1", _read("LEA4527", 0.6), 0.1)
    voter.add("t1", _read("ILEA4521", 0.7), 0.2)
    [voted] = voter.flush()
    assert voted.plate == "LEA4521"


def test_best_crop_comes_from_the_most_confident_agreeing_read() -> None:
    voter = PlateVoter()
    voter.add(1, _read("ABC123", 0.6), 0.0)
    voter.add(1, _read("ABC123", 0.95), 0.1)
    voter.add(1, _read("XYZ999", 0.99), 0.2)
    voter.add(1, _read("ABC123", 0.7), 0.3)
    [voted] = voter.flush()
    assert voted.plate == "ABC123"
    assert voted.crop is not None and int(voted.crop[0, 0, 0]) == int(0.95 * 255)


def test_growing_plate_moving_down_is_approaching() -> None:
    voter = PlateVoter()
    for t in range(5):
        voter.add(3, _read("ABC123", 0.9, (100, 100 + 30 * t, 60 + 15 * t, 15 + 4 * t)), float(t))
    [voted] = voter.flush()
    assert voted.direction == "approaching"
    assert voted.heading_deg is not None and 150 < voted.heading_deg < 210


def test_shrinking_plate_is_receding() -> None:
    voter = PlateVoter()
    for t in range(4):
        voter.add(4, _read("ABC123", 0.9, (300, 400 - 40 * t, 120 - 20 * t, 30 - 5 * t)), float(t))
    [voted] = voter.flush()
    assert voted.direction == "receding"


def test_track_is_emitted_only_after_it_times_out() -> None:
    voter = PlateVoter(timeout_s=2.0)
    voter.add(1, _read("ABC123", 0.9), 10.0)
    voter.add(2, _read("XYZ789", 0.9), 11.5)
    assert voter.expire(11.0) == []
    emitted = voter.expire(12.1)
    assert [v.plate for v in emitted] == ["ABC123"]
    assert voter.open_tracks == 1


def test_track_with_too_few_reads_is_dropped() -> None:
    voter = PlateVoter(min_reads=2)
    voter.add(1, _read("ABC123", 0.9), 0.0)
    assert voter.flush() == []
