"""`safecity plates read`: JSON per image, per-image errors, and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from safecity.anpr.cli import app


def _plate_image(path: Path, text: str) -> Path:
    img = np.full((110, 360, 3), 255, np.uint8)
    cv2.rectangle(img, (3, 3), (356, 106), (0, 0, 0), 3)
    cv2.putText(img, text, (30, 75), cv2.FONT_HERSHEY_DUPLEX, 2.0, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.imwrite(str(path), img)
    return path


def test_read_prints_plates_and_per_image_errors_without_stopping(tmp_path: Path) -> None:
    good = _plate_image(tmp_path / "car.png", "ABC-123")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    result = CliRunner().invoke(app, ["read", str(empty), str(good), str(text), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [e["image"] for e in out] == [str(empty), str(good), str(text)]
    assert out[0]["plates"] == [] and "empty" in out[0]["error"]
    assert out[2]["plates"] == [] and "not a JPEG" in out[2]["error"]
    [plate] = out[1]["plates"]
    assert plate["plate"] == "ABC123"
    assert 0 < plate["confidence"] <= 1
    assert len(plate["box"]) == 4
    assert "error" not in out[1]


def test_read_exits_1_when_no_image_could_be_opened(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["read", str(tmp_path / "absent.jpg"), "--json"])
    assert result.exit_code == 1
    assert "no such file" in json.loads(result.output)[0]["error"]


def test_read_refuses_an_unknown_region(tmp_path: Path) -> None:
    good = _plate_image(tmp_path / "car.png", "ABC-123")
    result = CliRunner().invoke(app, ["read", str(good), "--region", "mars"])
    assert result.exit_code != 0
    assert "mars" in result.output


def test_read_without_json_prints_a_table(tmp_path: Path) -> None:
    good = _plate_image(tmp_path / "car.png", "ABC-123")
    result = CliRunner().invoke(app, ["read", str(good), "--region", "auto"])
    assert result.exit_code == 0, result.output
    assert "ABC123" in result.output
