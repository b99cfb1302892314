"""Where the face models live: dlib's files inside `face_recognition_models`, loaded once per process."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

from safecity.core.errors import Unavailable

#: The model files `face_recognition_models` ships (its own import needs `pkg_resources`, so we go by path).
SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
RESNET = "dlib_face_recognition_resnet_model_v1.dat"
MMOD = "mmod_human_face_detector.dat"


def dlib_model_path(name: str) -> Path:
    """Returns the path of a model file from the `face_recognition_models` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable(
            "face_recognition_models is not installed", hint="pip install face_recognition_models"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise Unavailable(f"face model file missing: {path}", hint="reinstall face_recognition_models")
    return path


@cache
def hog_detector() -> Any:
    """Returns dlib's frontal-face HOG detector (shared: it is read-only once built)."""
    import dlib

    return dlib.get_frontal_face_detector()


@cache
def mmod_detector() -> Any:
    """Returns dlib's CNN (MMOD) face detector, slower but better on small and blurred faces."""
    import dlib

    return dlib.cnn_face_detection_model_v1(str(dlib_model_path(MMOD)))


@cache
def shape_predictor_5() -> Any:
    """Returns dlib's 5-point landmark predictor (eye corners and nose base)."""
    import dlib

    return dlib.shape_predictor(str(dlib_model_path(SHAPE_5)))


@cache
def resnet_encoder() -> Any:
    """Returns dlib's ResNet face encoder (128-d embeddings)."""
    import dlib

    return dlib.face_recognition_model_v1(str(dlib_model_path(RESNET)))
