"""The text detector's int8 copy: made once from the bundled model, cached, as good at finding text."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from safecity.anpr.cli import app
from safecity.core.context import Context
from safecity.core.errors import InvalidInput
from safecity.settings import Settings
from safecity.vision.plates import PlateReader
from safecity.vision.plates.detectors import TextLineDetector
from safecity.vision.plates.models import Box, bundled_model
from safecity.vision.plates.quantize import calibration_frame, calibration_inputs, int8_model
from safecity.worker.anpr import AnprPipeline, CameraSetup
from safecity.worker.runtime import default_pipelines

SOURCE = bundled_model("PP-OCRv6_det_small.onnx")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def copy(cache: Path) -> Path:
    return int8_model(SOURCE, cache)


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_int8_copy_is_made_once_and_then_reused(cache: Path, copy: Path) -> None:
    assert copy.parent == cache and copy.stat().st_size > 0
    made = copy.stat().st_mtime_ns
    assert int8_model(SOURCE, cache) == copy
    assert copy.stat().st_mtime_ns == made
    assert [p.name for p in cache.iterdir()] == [copy.name], "no temporary files are left behind"


def test_int8_detector_finds_the_text_the_full_model_finds(copy: Path) -> None:
    full = TextLineDetector(max_side=640, precision="fp32")
    fast = TextLineDetector(model_path=copy, max_side=640, precision="fp32")
    # Frames drawn like the calibration frames, but not the ones the copy was calibrated on.
    rng = np.random.default_rng(2024)
    found = matched = 0
    for _ in range(6):
        frame = calibration_frame(rng, 480, 640)
        want = [ln.box for ln in full.detect_lines(frame)]
        got = [ln.box for ln in fast.detect_lines(frame)]
        found += len(want)
        matched += sum(any(_iou(w, g) > 0.6 for g in got) for w in want)
        assert len(got) <= len(want) + 2
    assert found >= 6
    assert matched >= 0.85 * found


def test_unreadable_cached_copy_is_remade(tmp_path: Path, copy: Path) -> None:
    broken = tmp_path / copy.name
    broken.write_bytes(copy.read_bytes()[:1000])
    remade = int8_model(SOURCE, tmp_path)
    assert remade == broken
    assert remade.stat().st_size == copy.stat().st_size


def test_calibration_frames_are_the_same_on_every_machine() -> None:
    first = [x.copy() for x in calibration_inputs(3)]
    second = list(calibration_inputs(3))
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert all(x.shape[:2] == (1, 3) and x.min() >= -1.0 and x.max() <= 1.0 for x in first)


def test_detector_runs_at_full_precision_when_no_copy_can_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache "folder" that is a file: the copy cannot be written, the detector still works.
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("SAFECITY_MODEL_CACHE", os.fspath(blocked))
    detector = TextLineDetector(max_side=640, precision="int8")
    assert detector.precision == "fp32"
    frame = calibration_frame(np.random.default_rng(7), 480, 640)
    assert detector.detect_lines(frame)


def test_unknown_precision_and_missing_model_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="precision"):
        TextLineDetector(precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="does not exist"):
        TextLineDetector(model_path=tmp_path / "missing.onnx", precision="int8")


def _street_with_plate(text: str) -> np.ndarray:
    scene = np.full((720, 1280, 3), 90, np.uint8)
    cv2.rectangle(scene, (400, 200), (900, 600), (40, 40, 140), -1)
    plate = np.full((110, 360, 3), 255, np.uint8)
    cv2.rectangle(plate, (3, 3), (356, 106), (0, 0, 0), 3)
    cv2.putText(plate, text, (30, 75), cv2.FONT_HERSHEY_DUPLEX, 2.0, (0, 0, 0), 4, cv2.LINE_AA)
    scene[450:560, 470:830] = plate
    return scene


def test_int8_reader_reads_a_plate_on_a_vehicle(
    cache: Path, copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_MODEL_CACHE", os.fspath(cache))
    reader = PlateReader(region="pk", precision="int8")
    assert reader.lines.precision == "int8"
    reads = reader.read(_street_with_plate("BDV-878"))
    assert reads and reads[0].plate == "BDV878"
    x, y, _, _ = reads[0].box
    assert 440 <= x <= 500 and 440 <= y <= 480


def test_cli_reads_with_the_int8_detector_and_refuses_other_precisions(
    cache: Path, copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_MODEL_CACHE", os.fspath(cache))
    image = tmp_path / "car.png"
    cv2.imwrite(os.fspath(image), _street_with_plate("ABC-123"))
    result = CliRunner().invoke(app, ["read", os.fspath(image), "--precision", "int8", "--json"])
    assert result.exit_code == 0, result.output
    assert [p["plate"] for p in json.loads(result.output)[0]["plates"]] == ["ABC123"]
    refused = CliRunner().invoke(app, ["read", os.fspath(image), "--precision", "fp16"])
    assert refused.exit_code != 0 and "fp16" in refused.output


def test_workers_run_anpr_cameras_at_the_configured_precision(
    cache: Path, copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_MODEL_CACHE", os.fspath(cache))
    camera = CameraSetup("khi-anpr-01", "anpr", {"analysis_fps": 5.0}, [], [])
    for precision in ("fp32", "int8"):
        ctx = Context.create(Settings(data_dir=tmp_path / precision, plate_detector_precision=precision))
        try:
            [pipeline] = default_pipelines(ctx, camera)
            assert isinstance(pipeline, AnprPipeline)
            assert pipeline.reader.lines.precision == precision
        finally:
            ctx.db.dispose()
    with pytest.raises(ValidationError, match="plate_detector_precision"):
        Settings(data_dir=tmp_path, plate_detector_precision="fp16")  # type: ignore[arg-type]
