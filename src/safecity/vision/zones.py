"""Regions of interest: which detections lie inside a camera's `roi` zones (supervision's PolygonZone).

>>> road = RegionOfInterest([[(0, 300), (640, 300), (640, 360), (0, 360)]])
>>> inside = road.keep(detections)          # only vehicles whose bottom centre is on the road
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import supervision as sv


class RegionOfInterest:
    """The union of some polygons; with none, the whole picture."""

    def __init__(
        self,
        polygons: Sequence[Sequence[tuple[float, float]]],
        *,
        anchor: sv.Position = sv.Position.BOTTOM_CENTER,
    ) -> None:
        # A vehicle is where its wheels touch the road (bottom centre); a face where its centre is.
        self.zones = [
            sv.PolygonZone(
                np.round(np.asarray(p, dtype=np.float64)).astype(np.int64), triggering_anchors=(anchor,)
            )
            for p in polygons
        ]

    def mask(self, detections: sv.Detections) -> npt.NDArray[np.bool_]:
        """Returns, for each detection, whether its anchor lies inside any of the polygons."""
        if not self.zones:
            return np.ones(len(detections), dtype=bool)
        inside = np.zeros(len(detections), dtype=bool)
        if len(detections):
            for zone in self.zones:
                inside |= zone.trigger(detections)
        return inside

    def keep(self, detections: sv.Detections) -> sv.Detections:
        """Returns the detections inside the region."""
        if not self.zones:
            return detections
        kept = detections[self.mask(detections)]
        assert isinstance(kept, sv.Detections)  # a boolean mask selects detections, never one field
        return kept
