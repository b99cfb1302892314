"""Specification of the ONNX face models: any detector or ArcFace-style encoder plugs in from a path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from safecity.core.errors import InvalidInput
from safecity.vision.faces import FaceBox, FacePipeline, OnnxFaceDetector, OnnxFaceEncoder


def save(model: onnx.ModelProto, path: Path) -> Path:
    model.opset_import[0].version = 17
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def channel_mean_encoder(path: Path, size: int = 112) -> Path:
    """A stand-in for ArcFace: the embedding is the mean of each input channel (3 numbers)."""
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])
    embedding = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 3])
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["embedding"]),
    ]
    return save(helper.make_model(helper.make_graph(nodes, "mean", [image], [embedding])), path)


def fixed_box_detector(path: Path, rows: list[list[float]], size: int = 64) -> Path:
    """A stand-in detector that reports the same boxes (in input pixels) for any image."""
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])
    out = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, len(rows), 5])
    boxes = helper.make_tensor("fixed", TensorProto.FLOAT, [1, len(rows), 5], np.array(rows).ravel().tolist())
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=1),  # ties the output to the input
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["fixed", "nothing"], ["boxes"]),
    ]
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph(nodes, "fixed", [image], [out], initializer=[boxes, zero])
    return save(helper.make_model(graph), path)


def test_encoder_feeds_rgb_scaled_to_minus_one_one_and_returns_a_unit_vector(tmp_path: Path) -> None:
    encoder = OnnxFaceEncoder(channel_mean_encoder(tmp_path / "enc.onnx"), input_size=112)
    crop = np.zeros((112, 112, 3), dtype=np.uint8)
    crop[..., 0] = 255  # red channel: (255 - 127.5) / 127.5 = 1
    crop[..., 2] = 0  # blue channel: -1
    crop[..., 1] = 127  # green: ~0
    embedding = encoder.encode_crop(crop)
    assert encoder.dim == 3
    assert embedding.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embedding), 1.0, atol=1e-6)
    np.testing.assert_allclose(embedding, [2**-0.5, 0.0, -(2**-0.5)], atol=0.01)


def test_encoder_aligns_the_eyes_onto_the_arcface_template(tmp_path: Path) -> None:
    encoder = OnnxFaceEncoder(channel_mean_encoder(tmp_path / "enc.onnx"), input_size=112)
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    # dlib 5-point order: two corners of one eye, two of the other, nose base; eyes 60 px apart.
    landmarks = np.array([[60, 80], [80, 80], [120, 80], [140, 80], [100, 110]], dtype=np.float32)
    crop = encoder.align(image.copy(), FaceBox((50, 50, 100, 100), 1.0, landmarks))
    assert crop.shape == (112, 112, 3)
    marked = image.copy()
    marked[78:83, 68:73] = 255  # a white dot on the image-left eye centre (70, 80)
    crop = encoder.align(marked, FaceBox((50, 50, 100, 100), 1.0, landmarks))
    ys, xs = np.nonzero(crop[..., 0] > 128)
    assert abs(xs.mean() - 38.3) < 2 and abs(ys.mean() - 51.7) < 3


def test_detector_maps_model_boxes_back_to_image_pixels(tmp_path: Path) -> None:
    model = fixed_box_detector(tmp_path / "det.onnx", [[16, 8, 48, 40, 0.9], [0, 0, 4, 4, 0.1]], size=64)
    detector = OnnxFaceDetector(model, input_size=64, min_score=0.5)
    image = np.full((256, 128, 3), 90, dtype=np.uint8)  # letterboxed: scale 64 / 256 = 0.25
    found = detector.detect(image)
    assert len(found) == 1  # the low-score row is dropped
    assert found[0].box == (64, 32, 128 - 64, 128)  # x2 clipped to the image width
    assert found[0].landmarks is not None and found[0].landmarks.shape == (5, 2)
    assert found[0].source == "onnx"


def test_pipeline_runs_with_both_onnx_models(tmp_path: Path) -> None:
    detector = OnnxFaceDetector(
        fixed_box_detector(tmp_path / "det.onnx", [[8, 8, 56, 56, 0.9]]), input_size=64
    )
    encoder = OnnxFaceEncoder(channel_mean_encoder(tmp_path / "enc.onnx"), threshold=0.5)
    pipeline = FacePipeline(detector=detector, encoder=encoder)
    faces = pipeline.faces(np.full((128, 128, 3), 200, dtype=np.uint8))
    assert len(faces) == 1 and faces[0].embedding.shape == (3,)
    assert pipeline.threshold == 0.5


def test_missing_model_file_is_refused_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        OnnxFaceEncoder(tmp_path / "nope.onnx")
    with pytest.raises(InvalidInput, match="not found"):
        OnnxFaceDetector(tmp_path / "nope.onnx")
