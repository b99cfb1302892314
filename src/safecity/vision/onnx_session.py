"""ONNX Runtime sessions on the CPU with subnormal weights flushed to zero.

Some exported models carry weights so small they are subnormal floats (below 1.2e-38 in float32);
the PP-OCRv6 text detector RapidOCR ships holds 256,000 of them in two 1x1 convolutions. An x86
core multiplies a subnormal through a slow microcode path, so those two layers took two thirds of
the detector's time (90 ms of a 352x640 frame on the benchmark machine; 27 ms once flushed). A
subnormal weight times any activation is below 1e-30, far under what a float32 sum can keep beside
normal terms, so setting them to zero gives the same outputs (bit for bit on the plate detector)
at the normal speed. ONNX Runtime's `session.set_denormal_as_zero` would do as much, but it puts the
calling thread in flush-to-zero mode, which changes later numpy arithmetic in the whole process;
flushing the weights changes nothing but the model.

    session = cpu_session(Path("model.onnx"), threads=2)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

log = logging.getLogger(__name__)

_LAYOUT: dict[int, tuple[type[np.unsignedinteger], int, int]] = {
    onnx.TensorProto.FLOAT: (np.uint32, 0x7F800000, 0x007FFFFF),
    onnx.TensorProto.DOUBLE: (np.uint64, 0x7FF0000000000000, 0x000FFFFFFFFFFFFF),
}
"""Per float type: the unsigned integer of its width, its exponent bits and its mantissa bits."""

_PROTOBUF_LIMIT = 2**31
"""A model this big or bigger cannot be serialised to bytes; it is loaded from its file."""


def flush_subnormals(model: onnx.ModelProto) -> int:
    """Set every subnormal float32/float64 weight of `model` to zero, in place; how many there were.

    Subnormals are found by their bits (exponent all zero, mantissa not), not by comparing values: a
    thread in flush-to-zero mode compares a subnormal equal to zero.
    """
    flushed = 0
    for tensor in model.graph.initializer:
        if tensor.data_type not in _LAYOUT:
            continue
        uint, exponent, mantissa = _LAYOUT[tensor.data_type]
        values = numpy_helper.to_array(tensor)
        bits = values.view(uint)
        subnormal = ((bits & exponent) == 0) & ((bits & mantissa) != 0)
        if count := int(subnormal.sum()):
            zeroed = np.where(subnormal, 0, bits).astype(uint).view(values.dtype)
            tensor.CopyFrom(numpy_helper.from_array(zeroed, tensor.name))
            flushed += count
    return flushed


def cpu_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session for the model at `path`, with `threads` intra-op threads (default: up to 4).

    A file ONNX cannot parse goes to ONNX Runtime as it is, so its own error names the problem; so
    does a model over protobuf's 2 GB limit, which cannot be passed as bytes.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    source: str | bytes = str(path)
    try:
        model: onnx.ModelProto | None = onnx.load(str(path))
    except Exception:  # not an ONNX protobuf: let ONNX Runtime say so in its own words
        model = None
    if model is not None and model.ByteSize() < _PROTOBUF_LIMIT and (flushed := flush_subnormals(model)):
        log.debug("%s: %d subnormal weights set to zero", path.name, flushed)
        source = model.SerializeToString()
    return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
