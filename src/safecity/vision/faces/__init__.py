"""Face recognition for watch lists: detection, quality, alignment, encoding, comparison and voting.

from safecity.vision.faces import default_pipeline
pipeline = default_pipeline()                   # configured: BlazeFace + MobileFaceNet, or dlib's pair
faces = pipeline.faces(frame_bgr)               # list[Face], largest first
similarity(faces[0], enrolled) >= pipeline.threshold   # cosine, 0..1; pipeline.encoder_id names the encoder
"""

from safecity.vision.faces.blazeface import BlazeFaceDetector
from safecity.vision.faces.detectors import DlibHogDetector, FaceDetector, OnnxFaceDetector
from safecity.vision.faces.encoders import DlibResnetEncoder, EncoderId, FaceEncoder, OnnxFaceEncoder
from safecity.vision.faces.face import Face, FaceBox
from safecity.vision.faces.mobilefacenet import MobileFaceNetEncoder
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
    "BlazeFaceDetector",
    "DlibHogDetector",
    "DlibResnetEncoder",
    "EncoderId",
    "Face",
    "FaceBox",
    "FaceDecision",
    "FaceDetector",
    "FaceEncoder",
    "FacePipeline",
    "FaceVoter",
    "MobileFaceNetEncoder",
    "OnnxFaceDetector",
    "OnnxFaceEncoder",
    "default_pipeline",
    "enrolment_face",
    "quality_check",
    "similarity",
]
