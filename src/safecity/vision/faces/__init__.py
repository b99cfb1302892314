"""Face recognition for watch lists: detection, quality, alignment, encoding, comparison and voting.

from safecity.vision.faces import FacePipeline, DEFAULT_THRESHOLD
pipeline = FacePipeline()                       # dlib HOG + 5-point alignment + dlib ResNet
faces = pipeline.faces(frame_bgr)               # list[Face], largest first
similarity(faces[0], enrolled) >= pipeline.threshold   # cosine, 0..1
"""

from safecity.vision.faces.detectors import DlibHogDetector, FaceDetector, OnnxFaceDetector
from safecity.vision.faces.encoders import DlibResnetEncoder, FaceEncoder, OnnxFaceEncoder
from safecity.vision.faces.face import Face, FaceBox
from safecity.vision.faces.pipeline import (
    DEFAULT_THRESHOLD,
    FacePipeline,
    default_pipeline,
    enrolment_face,
    quality_check,
    similarity,
)
from safecity.vision.faces.voting import FaceDecision, FaceVoter

__all__ = [
    "DEFAULT_THRESHOLD",
    "DlibHogDetector",
    "DlibResnetEncoder",
    "Face",
    "FaceBox",
    "FaceDecision",
    "FaceDetector",
    "FaceEncoder",
    "FacePipeline",
    "FaceVoter",
    "OnnxFaceDetector",
    "OnnxFaceEncoder",
    "default_pipeline",
    "enrolment_face",
    "quality_check",
    "similarity",
]
