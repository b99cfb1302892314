"""Every model SafeCity ships or can install, registered with `safecity.vision.registry`.

Each model's spec lives beside the code that feeds it; this module only imports those modules so the
registry sees them all. A module that adds models is listed here.
"""

from __future__ import annotations

import safecity.vision.compliance
import safecity.vision.faces.insightface
import safecity.vision.faces.onnx_models
import safecity.vision.objects  # noqa: F401  (nanodet-m-416, yolo11n; faces: insightface-mbf)
