"""Specification of `safecity faces verify` and `safecity faces search`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from safecity.faces.cli import app
from tests.conftest import SHARED_DATA

FACES = SHARED_DATA / "faces"
needs_faces = pytest.mark.skipif(not FACES.is_dir(), reason=f"shared face data not found at {FACES}")
runner = CliRunner()


def no_face_image(path: Path) -> Path:
    image = np.full((120, 160, 3), 200, dtype=np.uint8)
    cv2.rectangle(image, (30, 30), (90, 100), (20, 120, 40), -1)
    cv2.imwrite(str(path), image)
    return path


def test_verify_without_faces_says_so_and_does_not_match(tmp_path: Path) -> None:
    a, b = no_face_image(tmp_path / "a.png"), no_face_image(tmp_path / "b.png")
    result = runner.invoke(app, ["verify", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert row["similarity"] == 0.0 and row["match"] is False
    assert row["faces"] == [[], []]
    assert "no face found" in row["reason"]


def test_verify_pairs_reports_unreadable_rows_and_carries_on(tmp_path: Path) -> None:
    no_face_image(tmp_path / "ok.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "pairs.csv").write_text(
        "file_a,file_b\nok.png,ok.png\nok.png,broken.jpg\nmissing.jpg,ok.png\n"
    )
    result = runner.invoke(app, ["verify", "--pairs", str(tmp_path / "pairs.csv"), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["file_a"], r["file_b"]) for r in rows] == [
        ("ok.png", "ok.png"),
        ("ok.png", "broken.jpg"),
        ("missing.jpg", "ok.png"),
    ]
    assert "error" not in rows[0]
    assert "not a readable image" in rows[1]["error"]
    assert "no such file" in rows[2]["error"]
    assert all(r["match"] is False for r in rows)


def test_verify_pairs_needs_the_two_columns(tmp_path: Path) -> None:
    (tmp_path / "pairs.csv").write_text("left,right\na.jpg,b.jpg\n")
    result = runner.invoke(app, ["verify", "--pairs", str(tmp_path / "pairs.csv"), "--json"])
    assert result.exit_code == 2
    assert "file_a,file_b" in result.output


@needs_faces
@pytest.mark.shared_data
def test_verify_prints_similarity_match_and_the_faces_of_each_photo() -> None:
    a = FACES / "images/face_recognition/obama_1.jpg"
    b = FACES / "images/face_recognition/obama_2.jpg"
    row = json.loads(runner.invoke(app, ["verify", str(a), str(b), "--json"]).output)
    assert row["match"] is True and 0 < row["similarity"] <= 1
    assert len(row["faces"]) == 2 and len(row["faces"][0]) == 1 and len(row["faces"][1]) == 1
    table = runner.invoke(app, ["verify", str(a), str(b)])
    assert table.exit_code == 0 and "yes" in table.output


@needs_faces
@pytest.mark.shared_data
def test_search_finds_the_identity_in_a_gallery_folder(tmp_path: Path) -> None:
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    shutil.copy(FACES / "images/face_recognition/obama_1.jpg", gallery / "obama.jpg")
    shutil.copy(FACES / "images/face_recognition/biden_2.jpg", gallery / "biden.jpg")
    probe = FACES / "images/face_recognition/obama_2.jpg"
    result = runner.invoke(app, ["search", str(probe), "--gallery", str(gallery), "--json"])
    assert result.exit_code == 0, result.output
    faces = json.loads(result.output)["faces"]
    assert faces[0]["candidates"][0]["identity"] == "obama"
    assert faces[0]["candidates"][0]["match"] is True
    assert faces[0]["candidates"][1]["match"] is False
