"""Models load with their subnormal weights set to zero, and compute the same outputs as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from safecity.vision.onnx_session import cpu_session, flush_subnormals
from safecity.vision.plates.models import bundled_model

TINY = np.finfo(np.float32).tiny


def _subnormal(mantissa: int, negative: bool = False) -> np.float32:
    """A float32 subnormal made from its bits (arithmetic could flush it to zero on an FTZ thread)."""
    return np.uint32(mantissa | (0x80000000 if negative else 0)).view(np.float32)


def _conv_model(path: Path, weights: np.ndarray) -> Path:
    """A 1x1 convolution from 8 to 4 channels with the given weights and a bias of 0.5."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])
    init = [
        numpy_helper.from_array(weights.astype(np.float32), "w"),
        numpy_helper.from_array(np.full(4, 0.5, np.float32), "b"),
    ]
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w", "b"], ["y"])], "conv", [x], [y], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_subnormal_weights_become_zero_and_the_outputs_stay_the_same(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(4, 8, 1, 1)).astype(np.float32)
    weights[0, :3] = _subnormal(0x200000)
    weights[2, 5] = _subnormal(0x10, negative=True)
    weights[3, 0] = TINY  # the smallest normal float: kept
    path = _conv_model(tmp_path / "conv.onnx", weights)

    model = onnx.load(path)
    assert flush_subnormals(model) == 4
    flushed = numpy_helper.to_array(model.graph.initializer[0])
    assert (flushed[0, :3] == 0).all() and flushed[2, 5] == 0 and flushed[3, 0] == TINY
    assert np.array_equal(
        np.delete(flushed.ravel(), [0, 1, 2, 21]), np.delete(weights.ravel(), [0, 1, 2, 21])
    )
    assert flush_subnormals(model) == 0

    x = rng.normal(size=(1, 8, 6, 6)).astype(np.float32)
    plain = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    ours = cpu_session(path, threads=1).run(None, {"x": x})[0]
    assert np.array_equal(plain, ours)


def test_a_model_without_subnormals_loads_from_its_file(tmp_path: Path) -> None:
    path = _conv_model(tmp_path / "conv.onnx", np.ones((4, 8, 1, 1)))
    x = np.ones((1, 8, 6, 6), np.float32)
    assert np.allclose(cpu_session(path, threads=1).run(None, {"x": x})[0], 8.5)


def test_a_file_that_is_not_a_model_is_refused_by_onnx_runtime(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(Exception, match=r"(?i)protobuf|parse|load|invalid"):
        cpu_session(bad, threads=1)


def test_the_bundled_text_detector_is_the_model_that_needs_it() -> None:
    """RapidOCR's PP-OCRv6 detector ships a quarter of a million subnormal weights (see onnx_session)."""
    model = onnx.load(bundled_model("PP-OCRv6_det_small.onnx"))
    assert flush_subnormals(model) > 100_000
