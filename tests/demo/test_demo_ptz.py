"""The demo's PTZ camera: a simulated ONVIF camera whose pan, tilt and zoom choose the synthetic picture."""

from __future__ import annotations

import time

import numpy as np
from fastapi.testclient import TestClient

from safecity.core.context import Context
from safecity.demo.run import PTZ_CAMERA, add_ptz_camera
from safecity.demo.scenes import HEIGHT, WIDTH, ptz_view
from safecity.video.onvif import OnvifDevice
from safecity.video.ptz import PtzCamera
from safecity.video.sources import open_source
from tests.conftest import auth_headers


def test_panning_right_shows_the_right_of_the_scene_and_zooming_in_enlarges_it() -> None:
    scene = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    scene[:, WIDTH // 2 :] = 255  # the right half is white
    assert ptz_view(scene, None) is scene
    left, right = ptz_view(scene, (-1.0, 0.0, 0.0)), ptz_view(scene, (1.0, 0.0, 0.0))
    assert left.shape == right.shape == scene.shape
    assert left.mean() < 70 and right.mean() > 185  # three quarters of each view is its side
    centre_wide, centre_close = ptz_view(scene, (0.0, 0.0, 0.0)), ptz_view(scene, (0.0, 0.0, 1.0))
    # Zoomed in on the middle, the edge between black and white stays in the middle but fills more columns.
    assert abs(centre_close.mean() - 127) < 10 and (centre_wide[0] != centre_close[0]).any()


def test_the_demo_ptz_camera_is_moved_through_the_api(ctx: Context, client: TestClient) -> None:
    device = add_ptz_camera(ctx)
    try:
        operator = auth_headers(ctx, "operator")
        state = client.get(f"/api/cameras/{PTZ_CAMERA}/ptz", headers=operator).json()
        assert state["ptz"] == "yes"
        moved = client.post(
            f"/api/cameras/{PTZ_CAMERA}/ptz/move", headers=operator, json={"pan": 1, "zoom": 1}
        )
        assert moved.status_code == 200, moved.text
        time.sleep(0.5)
        client.post(f"/api/cameras/{PTZ_CAMERA}/ptz/stop", headers=operator).raise_for_status()
        pan, tilt, zoom = device.view()
        assert pan > 0.1 and tilt == 0 and zoom > 0.1
        again = add_ptz_camera(ctx)  # a kept data folder: the camera's ONVIF address follows the new port
        try:
            camera = client.get(f"/api/cameras/{PTZ_CAMERA}", headers=operator).json()
            assert camera["analysis"]["onvif_url"] == again.url
        finally:
            again.close()
    finally:
        device.close()


def test_the_demo_ptz_cameras_stream_follows_where_it_points(ctx: Context) -> None:
    device = add_ptz_camera(ctx)
    source = open_source(f"synthetic://road/{PTZ_CAMERA}?fps=10&ptz=1")
    try:
        frames = iter(source.frames())
        first, second = next(frames).image.astype(int), next(frames).image.astype(int)
        PtzCamera.of(OnvifDevice(device.url)).relative_move(pan=1, tilt=0, zoom=1)
        turned = next(frames).image.astype(int)
        still = np.abs(second - first).mean()
        assert np.abs(turned - second).mean() > 3 * still + 5, still  # the street moved, not just traffic
    finally:
        source.close()
        device.close()
