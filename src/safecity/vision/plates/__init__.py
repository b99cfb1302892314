"""Number-plate reading: find plates in a frame, read them, normalise them to a region's formats.

from safecity.vision.plates import PlateReader, load_image
reads = PlateReader(region="pk").read(load_image("car.jpg"))
"""

from safecity.vision.plates.detectors import (
    MorphPlateDetector,
    OnnxPlateDetector,
    TextLineDetector,
    TextPlateDetector,
)
from safecity.vision.plates.models import Box, PlateDetector, PlateRead, load_image, to_detections
from safecity.vision.plates.reader import PlateReader
from safecity.vision.plates.recognizer import PlateRecognizer, TextRead
from safecity.vision.plates.voting import PlateVoter, VotedPlate, vote

__all__ = [
    "Box",
    "MorphPlateDetector",
    "OnnxPlateDetector",
    "PlateDetector",
    "PlateRead",
    "PlateReader",
    "PlateRecognizer",
    "PlateVoter",
    "TextLineDetector",
    "TextPlateDetector",
    "TextRead",
    "VotedPlate",
    "load_image",
    "to_detections",
    "vote",
]
