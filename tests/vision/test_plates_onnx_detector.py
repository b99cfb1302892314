"""The ONNX plate detector decodes YOLO-style outputs: threshold, NMS, and letterbox scaling back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from safecity.core.errors import InvalidInput
from safecity.vision.plates import OnnxPlateDetector, PlateDetector, PlateReader

SIZE = 64


def _constant_model(path: Path, output: np.ndarray) -> Path:
    """A model whose output is `output` plus zero times the input mean (so the input is used)."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output.shape))
    nodes = [
        helper.make_node("Constant", [], ["boxes"], value=numpy_helper.from_array(output.astype(np.float32))),
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Constant", [], ["zero"], value=numpy_helper.from_array(np.float32(0.0))),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["boxes", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(nodes, "plates", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


# Rows: cx, cy, w, h (input pixels), objectness, class score.
ROWS = np.array(
    [
        [32, 32, 20, 10, 0.9, 1.0],  # the plate
        [33, 32, 20, 10, 0.8, 1.0],  # a duplicate of it, weaker: NMS drops it
        [10, 40, 8, 4, 0.1, 1.0],  # below the threshold
    ],
    dtype=np.float32,
)


def test_yolov5_layout_is_thresholded_suppressed_and_scaled_to_the_frame(tmp_path: Path) -> None:
    model = _constant_model(tmp_path / "det.onnx", ROWS[None])
    det = OnnxPlateDetector(model, input_size=SIZE, conf=0.25)
    # A 128x64 frame is letterboxed to 64x32 inside the 64x64 input, 16 px of padding on top.
    frame = np.zeros((64, 128, 3), np.uint8)
    found = det.detect_scored(frame)
    assert len(found) == 1
    box, score = found[0]
    assert box == (44, 22, 40, 20)
    assert score == pytest.approx(0.9)
    assert isinstance(det, PlateDetector)


def test_yolov8_transposed_layout_without_objectness(tmp_path: Path) -> None:
    rows = np.zeros((8, 5), np.float32)
    rows[0] = [32, 32, 20, 10, 0.7]
    rows[1:, 4] = 0.01
    model = _constant_model(tmp_path / "v8.onnx", rows.T[None])
    det = OnnxPlateDetector(model, input_size=SIZE, conf=0.5)
    assert det.detect(np.zeros((SIZE, SIZE, 3), np.uint8)) == [(22, 27, 20, 10)]


def test_boxes_are_clipped_to_the_frame(tmp_path: Path) -> None:
    rows = np.array([[60, 60, 20, 20, 0.9, 1.0]], np.float32)
    det = OnnxPlateDetector(_constant_model(tmp_path / "edge.onnx", rows[None]), input_size=SIZE)
    [(x, y, w, h)] = det.detect(np.zeros((SIZE, SIZE, 3), np.uint8))
    assert x + w <= SIZE and y + h <= SIZE


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        OnnxPlateDetector(tmp_path / "absent.onnx")


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(InvalidInput, match="not a loadable ONNX model"):
        OnnxPlateDetector(bad)


def test_reader_with_an_onnx_detector_returns_nothing_on_a_blank_frame(tmp_path: Path) -> None:
    det = OnnxPlateDetector(_constant_model(tmp_path / "det.onnx", ROWS[None]), input_size=SIZE)
    reader = PlateReader(detector=det, region="pk")
    assert reader.read(np.full((64, 128, 3), 255, np.uint8)) == []
