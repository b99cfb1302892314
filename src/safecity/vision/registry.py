"""The vision models SafeCity knows: where each comes from, its licence, and one shared session each.

Every model file the platform runs is described here by a `ModelSpec`: its name and task, the package
and version its weights came from, the weights' licence, the file's sha256, its input size, and how
its input is prepared and its output decoded. Default models are permissively licensed and ship
inside the `safecity` package (`vision/weights/`, with each model's licence and a NOTICE), converted
from the registry packages named in `source` by `scripts/convert_models.py`; nothing is downloaded at
run time. A model whose weights carry other terms (AGPL, non-commercial) is a plug-in: it is installed
by an explicit command that shows its terms (`safecity models install NAME --accept-licence`,
`vision/plugins.py`) into the plug-in folder, and is never a default. A plug-in whose file the
operator brings (`--onnx FILE`) has no sha256 here: the one recorded at install (`plugins.json` in the
plug-in folder) is checked instead.

A model is loaded once per process (`session(name)`) and shared by every camera that uses it:

    detector_session = session("nanodet-m-416")

A missing or corrupt file raises `ModelUnavailable`, which names the file and says how to restore
it; `check()` runs every model once on a built-in image for `safecity models check`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from safecity.core.errors import SafeCityError
from safecity.vision.onnx_session import cpu_session

WEIGHTS_DIR = Path(__file__).with_name("weights")
"""Where the default models live, inside the installed package."""


MANIFEST = "plugins.json"
"""The plug-in folder's record of what was installed: file, sha256, source, licence accepted, when."""


def plugin_dir() -> Path:
    """Where optional plug-in models go: `SAFECITY_MODELS_DIR`, else the data folder's `models/`."""
    configured = os.environ.get("SAFECITY_MODELS_DIR")
    if configured:
        return Path(configured)
    from safecity.settings import get_settings

    return get_settings().data_dir / "models"


def installed_plugins() -> dict[str, dict[str, Any]]:
    """The plug-in folder's manifest: each installed plug-in's record (empty when nothing is installed)."""
    path = plugin_dir() / MANIFEST
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(
            f"the plug-in manifest {path} cannot be read ({exc})",
            hint="reinstall the plug-ins (`safecity models install NAME --accept-licence`)",
        ) from exc
    return loaded if isinstance(loaded, dict) else {}


class ModelUnavailable(SafeCityError):
    """A model's file is missing, corrupt or cannot be run; the message names the file and the fix."""

    status_code = 503
    code = "model_unavailable"


@dataclass(frozen=True)
class ModelSpec:
    """One model: what it is for, where its weights came from and how to feed it."""

    name: str
    """Registry key and the name operators use, e.g. `nanodet-m-416`."""
    task: str
    """What it does: `objects`, `face-detector`, `face-encoder`, `helmet`, `seat-belt`, ..."""
    version: str
    """The model's own version; stored with anything it produced (e.g. face embeddings)."""
    source: str
    """The registry package (and version, and file inside it) the weights were taken from."""
    licence: str
    """The weights' licence (SPDX id where there is one); defaults must be permissive."""
    filename: str
    """The ONNX file's name in `WEIGHTS_DIR` (default) or `plugin_dir()` (plug-in)."""
    sha256: str
    """Of the ONNX file as shipped; a file that differs is reported corrupt. Empty for a plug-in whose
    file the operator brings: the sha256 recorded when it was installed is checked instead."""
    input_size: tuple[int, int]
    """Width and height the model takes."""
    preprocessing: str
    """How an image is turned into its input, in words (colour order, scaling, layout)."""
    decoding: str
    """How its output becomes results, in words."""
    default: bool = True
    """Whether it ships and is used by default (False: an optional plug-in)."""
    restore_hint: str = "reinstall SafeCity (`make setup`), which ships the file inside the package"
    """What an operator does when the file is missing or corrupt."""
    smoke: Callable[[ort.InferenceSession], str] | None = field(default=None, compare=False, repr=False)
    """Runs the model once on a built-in image and returns a one-line summary (`safecity models check`)."""
    output: str = "detector"
    """What its output is: `detector` (boxes with class scores), `classifier` (one score per label of
    the whole input) or `encoder` (an embedding)."""
    labels: tuple[str, ...] = ()
    """The output's class names in order (a detector's classes, a classifier's scores)."""
    offence_labels: tuple[str, ...] = ()
    """Of `labels`, the ones that mean an offence (`no_helmet`; a helmet detector's `Without Helmet`)."""

    @property
    def path(self) -> Path:
        return (WEIGHTS_DIR if self.default else plugin_dir()) / self.filename

    @property
    def installed(self) -> bool:
        """Whether its file is there (a default always should be; a plug-in once installed)."""
        return self.path.is_file()


_REGISTRY: dict[str, ModelSpec] = {}
_SESSIONS: dict[tuple[str, int | None], ort.InferenceSession] = {}
_LOCK = threading.Lock()


def register(spec: ModelSpec) -> ModelSpec:
    """Adds a model to the registry (modules describing models call this at import)."""
    _REGISTRY[spec.name] = spec
    return spec


def _load_all() -> None:
    # The modules that describe models register them on import; importing them here keeps this
    # module free of their dependencies while `models()` still sees every model.
    import safecity.vision.model_specs  # noqa: F401


def models() -> list[ModelSpec]:
    """Every registered model, defaults first, then by task and name."""
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda s: (not s.default, s.task, s.name))


def spec(name: str) -> ModelSpec:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise ModelUnavailable(f"no model named {name!r}; known models: {known}") from None


def installed_for(task: str) -> ModelSpec | None:
    """The model a pipeline uses for `task`: its default, else the first installed plug-in by name."""
    candidates = [m for m in models() if m.task == task and m.installed]
    return candidates[0] if candidates else None


def expected_sha256(model: ModelSpec) -> str:
    """The sha256 its file must have: the spec's, or the one recorded when the operator installed it."""
    if model.sha256:
        return model.sha256
    recorded = installed_plugins().get(model.name, {}).get("sha256")
    if not isinstance(recorded, str) or not recorded:
        raise ModelUnavailable(
            f"model {model.name}: no sha256 was recorded for {model.path}; {model.restore_hint}"
        )
    return recorded


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(model: ModelSpec) -> Path:
    """The model's file, after checking that it is there and is the file that shipped."""
    path = model.path
    if not path.is_file():
        raise ModelUnavailable(f"model {model.name}: file {path} is missing; {model.restore_hint}")
    actual, expected = sha256_of(path), expected_sha256(model)
    if actual != expected:
        raise ModelUnavailable(
            f"model {model.name}: file {path} is corrupt (sha256 {actual[:12]}…, expected "
            f"{expected[:12]}…); {model.restore_hint}"
        )
    return path


def session(name: str, *, threads: int | None = None) -> ort.InferenceSession:
    """The process's one ONNX Runtime session for model `name`, loaded (and verified) on first use."""
    key = (name, threads)
    if (cached := _SESSIONS.get(key)) is not None:
        return cached
    with _LOCK:
        if (cached := _SESSIONS.get(key)) is not None:
            return cached
        model = spec(name)
        path = verify(model)
        try:
            loaded = cpu_session(path, threads)
        except Exception as exc:  # ONNX Runtime's own words say what is wrong with the file
            raise ModelUnavailable(
                f"model {name}: {path} cannot be loaded ({exc}); {model.restore_hint}"
            ) from exc
        _SESSIONS[key] = loaded
        return loaded


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def check(names: Iterable[str] | None = None) -> list[CheckResult]:
    """Verifies each model's file and runs it once on a built-in image (skips plug-ins not installed)."""
    results: list[CheckResult] = []
    for model in models() if names is None else [spec(n) for n in names]:
        if not model.default and not model.path.exists() and names is None:
            results.append(CheckResult(model.name, True, "optional plug-in, not installed"))
            continue
        try:
            loaded = session(model.name)
            detail = model.smoke(loaded) if model.smoke else run_blank(model, loaded)
        except ModelUnavailable as exc:
            results.append(CheckResult(model.name, False, str(exc)))
        except Exception as exc:  # a model that loads but fails to run is as broken as a missing one
            results.append(CheckResult(model.name, False, f"model {model.name} failed to run: {exc}"))
        else:
            results.append(CheckResult(model.name, True, detail))
    return results


def run_blank(model: ModelSpec, loaded: ort.InferenceSession) -> str:
    """Runs a model once on a grey picture of its input size: finite outputs, or an error saying why not."""
    first = loaded.get_inputs()[0]
    width, height = model.input_size
    dims = list(first.shape)
    channels_last = len(dims) == 4 and dims[3] == 3 and dims[1] != 3
    shape = [1, height, width, 3] if channels_last else [1, 3, height, width]
    outputs = loaded.run(None, {first.name: np.full(shape, 0.5, np.float32)})
    if not all(np.isfinite(np.asarray(o)).all() for o in outputs):
        raise ValueError("outputs are not finite numbers: the weights are damaged")
    shapes = ", ".join("×".join(str(d) for d in np.asarray(o).shape) for o in outputs)
    return f"ran on a grey {width}×{height} picture: outputs {shapes}"


def describe(model: ModelSpec) -> dict[str, Any]:
    """The model as `safecity models list --json` prints it."""
    return {
        "name": model.name,
        "task": model.task,
        "version": model.version,
        "source": model.source,
        "licence": model.licence,
        "default": model.default,
        "file": str(model.path),
        "sha256": model.sha256 or installed_plugins().get(model.name, {}).get("sha256", ""),
        "input_size": list(model.input_size),
        "preprocessing": model.preprocessing,
        "decoding": model.decoding,
        "installed": model.installed,
        "labels": list(model.labels),
    }


def forget_sessions() -> None:
    """Drops the cached sessions (tests that swap model files)."""
    with _LOCK:
        _SESSIONS.clear()
