"""The seed story in the operator's console (headless Chromium): the face alert shows the crop beside
the watch-list photo, and the demo's crew sends the unit and makes the arrest while the console watches."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from safecity.alerts import service as alerts
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.context import Context
from safecity.demo.run import start_crew
from safecity.dispatch import service as dispatch
from safecity.server import create_app
from tests.browser import serving, sign_in
from tests.conftest import make_user

pytestmark = pytest.mark.browser


def _face_alert(ctx: Context) -> str:
    """A Regal Chowk face camera, two units, and a face alert with its crop and watch-list photo."""
    crop = ctx.media.put_image(np.full((112, 112, 3), 140, np.uint8))
    photo = ctx.media.put_image(np.full((160, 120, 3), 200, np.uint8))
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn(
                id="cam-regal",
                name="Regal Chowk",
                kind="face",
                district="South",
                latitude=24.8606,
                longitude=67.0262,
            ),
            actor="test",
        )
        dispatch.create_unit(
            session, unit_id="near", callsign="Madadgar-01", latitude=24.8618, longitude=67.0256
        )
        dispatch.create_unit(
            session, unit_id="far", callsign="Madadgar-07", latitude=24.9411, longitude=67.2058
        )
        alert, _ = alerts.raise_alert(
            session,
            kind="face_match",
            priority=1,
            title="Wanted person Demo suspect at Regal Chowk (85% alike)",
            source_key="face-regal-1",
            dedup_key="face:regal",
            camera_id="cam-regal",
            evidence={"crop_ref": crop, "watchlist_photo_refs": [photo], "similarity": 0.85},
        )
        return alert.id


def test_the_console_sees_the_face_alert_the_unit_and_the_arrest(
    ctx: Context, chromium: Any, page: Any
) -> None:
    from safecity.demo.city import CityPlan
    from safecity.demo.crew import enlist

    alert_id = _face_alert(ctx)
    make_user(ctx, "operator", "op.sana")
    with ctx.db.session() as session:
        crew = enlist(session)
    city = CityPlan("-", "-", "-", 1, 0, crew, "test", story_unit="near")

    async def crew_to_work(ctx: Context) -> None:
        await start_crew(ctx, city, app, dispatch_after_s=8.0)

    app = create_app(ctx, on_started=[crew_to_work])
    with serving(app) as url:
        sign_in(page, url, "op.sana")
        page.goto(url + "/")
        item = f"#alerts li[data-alert-id='{alert_id}']"
        page.click(item)
        page.wait_for_selector("#alert-dialog figure img[alt='watch-list photo']")
        captions = page.locator("#alert-dialog figcaption").all_inner_texts()
        assert captions[:2] == ["crop", "watch list"]  # the face beside the photo it matched
        # Polled from here: a page function that waits would be evaluated in the page, which its CSP forbids.
        loaded = "[...document.querySelectorAll('#alert-dialog figure img')].every((i) => i.naturalWidth > 0)"
        deadline = time.monotonic() + 15
        while not page.evaluate(loaded):
            assert time.monotonic() < deadline, "the crop and the watch-list photo did not load"
            time.sleep(0.2)
        page.click("#alert-dialog header button")
        # Nobody at the console sends a unit: the duty dispatcher does, the officer drives, arrives and
        # confirms; the console hears the unit move and the alert close, without a reload.
        page.wait_for_selector("#events li.unit:has-text('Madadgar-01 en_route')", timeout=60_000)
        page.wait_for_selector("#events li.unit:has-text('Madadgar-01 on_scene')", timeout=60_000)
        page.wait_for_selector(item, state="detached", timeout=60_000)
    with ctx.db.session() as session:
        (incident,) = dispatch.incidents_of_alert(session, alert_id)
        assert incident.outcome == "arrest" and alerts.get(session, alert_id).status == "closed"
