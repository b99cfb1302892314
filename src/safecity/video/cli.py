"""Video commands mounted under `safecity cameras` (`check`)."""

from __future__ import annotations
