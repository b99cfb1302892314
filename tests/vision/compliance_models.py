"""Tiny helmet and seat-belt models for tests, built with onnx.helper, and scenes they can judge.

The classifier's answer depends on one thing a test controls: how much redder than green the crop
is. A pure red crop (a bare head painted red) is `no_helmet` / `no_seat_belt` with probability ~1; a
grey crop (a helmet) is compliant with probability ~1.

    install_classifier(tmp_path, "helmet-classifier")   # into the plug-in folder, as an operator would
    frame = street(riders=[(RIDER_BOX, "bare")])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import supervision as sv
from onnx import TensorProto, helper, numpy_helper

from safecity.vision import plugins, registry

Box = tuple[int, int, int, int]
MOTORCYCLE_BOX: Box = (200, 260, 320, 380)
RIDER_BOX: Box = (225, 150, 295, 330)
"""A rider sitting on the motorcycle: centred over it, the lower half of the box inside it."""
PEDESTRIAN_BOX: Box = (420, 200, 470, 380)
CAR_BOX: Box = (380, 180, 620, 340)

RED = (0, 0, 255)
GREY = (150, 150, 150)


def classifier_onnx(path: Path, size: tuple[int, int] = (64, 64), *, scores: int = 2) -> Path:
    """Writes a 2-label classifier: scores = [4 - 8d, 8d - 4], d = the crop's mean red minus mean green
    (`scores=3` adds a third, constant score: a classifier of the wrong shape)."""
    weights = np.zeros((3, scores), np.float32)
    weights[:, :2] = [[-8.0, 8.0], [8.0, -8.0], [0.0, 0.0]]  # rows: R, G, B
    bias = np.zeros(scores, np.float32)
    bias[:2] = [4.0, -4.0]
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["raw"]),
            helper.make_node("Add", ["raw", "b"], ["scores"]),
        ],
        "tiny-compliance",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size[1], size[0]])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, scores])],
        initializer=[numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def detector_onnx(path: Path) -> Path:
    """Writes a YOLO-layout helmet detector ([1, 6, 1]): one head box, With = 1 - r, Without = r."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["mean"], axes=[2, 3], keepdims=1),
            helper.make_node("Slice", ["mean", "start", "end", "axis"], ["red4"]),
            helper.make_node("Reshape", ["red4", "shape"], ["red"]),
            helper.make_node("Sub", ["one", "red"], ["with"]),
            helper.make_node("Concat", ["box", "with", "red"], ["output0"], axis=1),
        ],
        "tiny-helmet-detector",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 1])],
        initializer=[
            numpy_helper.from_array(np.array([0], np.int64), "start"),
            numpy_helper.from_array(np.array([1], np.int64), "end"),
            numpy_helper.from_array(np.array([1], np.int64), "axis"),
            numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape"),
            numpy_helper.from_array(np.ones((1, 1, 1), np.float32), "one"),
            numpy_helper.from_array(np.array([[[320.0], [200.0], [120.0], [120.0]]], np.float32), "box"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def install_classifier(folder: Path, name: str) -> dict[str, object]:
    """Installs the tiny classifier as `name` (helmet-classifier or seat-belt-classifier)."""
    model = registry.spec(name)
    onnx_file = classifier_onnx(folder / f"{name}-built.onnx", model.input_size)
    return plugins.install(name, accept_licence=True, onnx=onnx_file, licence="LicenseRef-test")


def street(
    riders: list[tuple[Box, str]] = (),  # type: ignore[assignment]
    cars: list[tuple[Box, str]] = (),  # type: ignore[assignment]
    shape: tuple[int, int] = (480, 640),
) -> np.ndarray:
    """A grey frame; each rider's head (top 30% of its box) and each car's windscreen band painted red
    ("bare", "unbelted") or grey ("helmet", "belted")."""
    frame = np.full((*shape, 3), 90, np.uint8)
    for (x1, y1, x2, y2), state in riders:
        head_bottom = y1 + round(0.3 * (y2 - y1))
        frame[y1:y2, x1:x2] = (60, 90, 60)
        frame[max(0, y1 - 20) : head_bottom, x1 - 10 : x2 + 10] = RED if state == "bare" else GREY
    for (x1, y1, x2, y2), state in cars:
        frame[y1:y2, x1:x2] = (120, 40, 40)
        top, bottom = y1 + round(0.15 * (y2 - y1)), y1 + round(0.5 * (y2 - y1))
        frame[top:bottom, x1:x2] = RED if state == "unbelted" else GREY
    return frame


def detections(boxes: list[tuple[Box, str]], track_ids: list[int] | None = None) -> sv.Detections:
    """Detections of the given boxes and class names (tracked when ids are given)."""
    if not boxes:
        empty = sv.Detections.empty()
        empty.data = {"class_name": np.array([], dtype=object)}
        return empty
    return sv.Detections(
        xyxy=np.array([b for b, _ in boxes], np.float32),
        confidence=np.full(len(boxes), 0.9, np.float32),
        class_id=np.zeros(len(boxes), int),
        tracker_id=None if track_ids is None else np.array(track_ids),
        data={"class_name": np.array([n for _, n in boxes], dtype=object)},
    )
