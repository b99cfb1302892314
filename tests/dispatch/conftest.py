"""Fixtures of the dispatch tests: a city with a face camera, two units and an alert with a stored crop."""

from __future__ import annotations

import numpy as np
import pytest

from safecity.alerts import service as alerts
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.context import Context
from safecity.dispatch import service

SADDAR = (24.8607, 67.0299)


@pytest.fixture
def alert_id(ctx: Context) -> str:
    """A face-match alert at Saddar with a stored crop, and two available units; returns the alert id."""
    crop = ctx.media.put_image(np.full((60, 40, 3), 120, np.uint8))
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn(
                id="cam-saddar",
                name="Empress Market",
                kind="face",
                district="Saddar",
                latitude=SADDAR[0],
                longitude=SADDAR[1],
            ),
            actor="test",
        )
        service.create_unit(
            session, unit_id="PU-1", callsign="Clifton-1", latitude=24.8138, longitude=67.0300
        )
        service.create_unit(session, unit_id="PU-2", callsign="Lyari-2", latitude=24.8720, longitude=67.0120)
        alert, _ = alerts.raise_alert(
            session,
            kind="face_match",
            priority=1,
            title="Wanted man on a motorcycle",
            source_key="match-1",
            dedup_key="face:entry-1",
            camera_id="cam-saddar",
            evidence={"crop_ref": crop},
        )
        return alert.id
