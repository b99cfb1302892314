"""`safecity vision detect` and `safecity models list|check`: output, bad images, broken model files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
from typer.testing import CliRunner

from safecity.cli import app
from safecity.vision import registry
from safecity.vision.objects import NANODET
from tests.conftest import need_shared_data

runner = CliRunner()


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "street.png"
    cv2.imwrite(str(path), np.full((360, 640, 3), 120, np.uint8))
    return path


class TwoObjects:
    """Stands in for the detector: a car and a person at fractional pixel positions."""

    def __init__(self, **options: object) -> None:
        self.options = options

    def detect(self, image: np.ndarray) -> sv.Detections:
        return sv.Detections(
            xyxy=np.array([[10.4, 20.6, 110.6, 80.2], [300.0, 40.0, 330.0, 120.0]], np.float32),
            confidence=np.array([0.91234, 0.5], np.float32),
            class_id=np.array([2, 0]),
            data={"class_name": np.array(["car", "person"], dtype=object)},
        )


def test_detect_json_is_a_list_of_images_with_labelled_pixel_boxes(
    picture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("safecity.vision.cli.NanoDetDetector", TwoObjects)
    result = runner.invoke(app, ["vision", "detect", str(picture), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "image": str(picture),
            "objects": [
                {"label": "car", "confidence": 0.912, "box": [10, 21, 101, 59]},
                {"label": "person", "confidence": 0.5, "box": [300, 40, 30, 80]},
            ],
        }
    ]


def test_a_missing_or_corrupt_image_is_named_and_the_others_are_still_read(
    picture: Path, tmp_path: Path
) -> None:
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    missing = tmp_path / "gone.jpg"
    result = runner.invoke(app, ["vision", "detect", str(corrupt), str(picture), str(missing), "--json"])
    assert result.exit_code == 1
    entries = json.loads(result.stdout)
    assert [e["image"] for e in entries] == [str(corrupt), str(picture), str(missing)]
    assert "not a readable image" in entries[0]["error"] and entries[0]["objects"] == []
    assert "error" not in entries[1]
    assert "does not exist" in entries[2]["error"]
    assert f"{missing} does not exist" in result.stderr


def test_detect_without_json_prints_a_table_and_refuses_unknown_classes(picture: Path) -> None:
    result = runner.invoke(app, ["vision", "detect", str(picture), "--classes", "car,person"])
    assert result.exit_code == 0 and "nothing found" in result.stdout
    refused = runner.invoke(app, ["vision", "detect", str(picture), "--classes", "car,lorry"])
    assert refused.exit_code == 1 and "'lorry'" in refused.stderr and "Traceback" not in refused.output


@pytest.mark.shared_data
def test_detect_finds_the_car_in_a_real_photo() -> None:
    photo = need_shared_data("plates", "eu", "eu1.jpg")
    result = runner.invoke(app, ["vision", "detect", str(photo), "--classes", "car,truck,bus", "--json"])
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    assert entry["objects"] and entry["objects"][0]["label"] in {"car", "truck", "bus"}
    x, y, w, h = entry["objects"][0]["box"]
    assert all(isinstance(v, int) for v in (x, y, w, h)) and w > 100 and h > 100


def test_models_list_names_each_model_its_licence_and_file() -> None:
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    nanodet = next(m for m in json.loads(result.stdout) if m["name"] == NANODET)
    assert nanodet["licence"] == "Apache-2.0" and nanodet["installed"] and nanodet["default"]
    assert nanodet["file"].endswith("weights/nanodet-m-416.onnx") and len(nanodet["sha256"]) == 64
    table = runner.invoke(app, ["models", "list"])
    assert table.exit_code == 0 and "nanodet" in table.stdout


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the weights folder the registry reads instead of the shipped one."""
    folder = tmp_path / "weights"
    shutil.copytree(registry.WEIGHTS_DIR, folder)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", folder)
    registry.forget_sessions()
    yield folder
    registry.forget_sessions()


def test_models_check_runs_each_model(weights: Path) -> None:
    result = runner.invoke(app, ["models", "check"])
    assert result.exit_code == 0, result.output
    assert f"ok     {NANODET}: ran on a built-in 640x360 picture" in result.stdout


def test_models_check_names_a_corrupt_file_and_how_to_restore_it(weights: Path) -> None:
    model = weights / "nanodet-m-416.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte deep in the weights: loads, but is not what shipped
    model.write_bytes(bytes(data))
    result = runner.invoke(app, ["models", "check"])
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert f"{model} is corrupt" in message and "convert_models.py" in message and "git checkout" in message


def test_models_check_names_a_missing_file(weights: Path) -> None:
    (weights / "nanodet-m-416.onnx").unlink()
    result = runner.invoke(app, ["models", "check", NANODET])
    assert result.exit_code == 1
    assert f"{weights / 'nanodet-m-416.onnx'} is missing" in " ".join(result.stderr.split())
