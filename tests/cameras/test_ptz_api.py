"""PTZ over the API against a simulated ONVIF camera: moves, presets, control sessions, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from safecity.audit import anchor
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.cameras.ptz import service as ptz
from safecity.cameras.ptz.models import LEASE_S, PtzLease
from safecity.core.context import Context
from safecity.core.db import Database
from safecity.demo.ptz import SimulatedPtzCamera
from tests.browser import free_port
from tests.conftest import audit_anchor_env, auth_headers


@pytest.fixture
def ptz_camera() -> Iterator[SimulatedPtzCamera]:
    fake = SimulatedPtzCamera(username="ptz", password="s3cret")
    yield fake
    fake.close()


def register(ctx: Context, camera_id: str, **fields: Any) -> None:
    data = {
        "id": camera_id,
        "name": f"Camera {camera_id}",
        "kind": "fixed",
        "district": "Saddar",
        "latitude": 24.86,
        "longitude": 67.01,
        **fields,
    }
    with ctx.db.session() as session:
        cameras.create(session, CameraIn.model_validate(data), actor="test")


def ptz_at(camera: SimulatedPtzCamera, **analysis: Any) -> dict[str, Any]:
    return {
        "stream_url": "synthetic://road/x",
        "username": "ptz",
        "password": "s3cret",
        "analysis": {"onvif_url": camera.url, **analysis},
    }


def actions(ctx: Context, action: str) -> list[Any]:
    with ctx.db.session() as session:
        return list(audit.entries(session, action=action))


def test_an_operator_moves_and_stops_a_camera_in_one_audited_control_session(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera
) -> None:
    register(ctx, "gate", **ptz_at(ptz_camera))
    operator = auth_headers(ctx, "operator", "asif")
    assert client.get("/api/cameras/gate", headers=operator).json()["ptz"] == "unknown"
    state = client.get("/api/cameras/gate/ptz", headers=operator).json()
    assert state["ptz"] == "yes" and "ptz_service" in state["detail"] and state["controller"] is None
    assert client.get("/api/cameras/gate", headers=operator).json()["ptz"] == "yes"

    moved = client.post("/api/cameras/gate/ptz/move", headers=operator, json={"pan": -0.5, "zoom": 0.25})
    assert moved.status_code == 200, moved.text
    assert moved.json()["controller"]["username"] == "asif" and moved.json()["controller"]["you"] is True
    sent = ptz_camera.last("ContinuousMove")
    assert sent is not None and sent.user == "ptz"
    assert (sent.values["Velocity.PanTilt.x"], sent.values["Velocity.Zoom.x"], sent.values["Timeout"]) == (
        "-0.5",
        "0.25",
        "PT5S",
    )
    client.post("/api/cameras/gate/ptz/move", headers=operator, json={"tilt": 1, "timeout_s": 2})
    assert client.post("/api/cameras/gate/ptz/stop", headers=operator).status_code == 200
    assert ptz_camera.operations()[-3:] == ["ContinuousMove", "ContinuousMove", "Stop"]
    sessions = actions(ctx, "camera.ptz_control")
    assert [(e.actor, e.target, e.detail["first"]) for e in sessions] == [("asif", "gate", "move")]


def test_a_second_operator_takes_control_and_the_first_sees_who(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera
) -> None:
    register(ctx, "gate", **ptz_at(ptz_camera))
    asif, bilal = auth_headers(ctx, "operator", "asif"), auth_headers(ctx, "supervisor", "bilal")
    client.post("/api/cameras/gate/ptz/move", headers=asif, json={"pan": 1}).raise_for_status()
    taken = client.post("/api/cameras/gate/ptz/move", headers=bilal, json={"pan": -1})
    assert taken.json()["controller"]["username"] == "bilal"
    seen_by_asif = client.get("/api/cameras/gate/ptz", headers=asif).json()["controller"]
    assert seen_by_asif["username"] == "bilal" and seen_by_asif["you"] is False
    assert ptz_camera.last("ContinuousMove").values["Velocity.PanTilt.x"] == "-1"  # type: ignore[union-attr]
    sessions = actions(ctx, "camera.ptz_control")
    assert {(e.actor, e.detail["taken_from"]) for e in sessions} == {("asif", None), ("bilal", "asif")}
    assert client.delete("/api/cameras/gate", headers=auth_headers(ctx, "admin")).status_code == 204
    with ctx.db.session() as session:
        assert session.get(PtzLease, "gate") is None  # a camera registered again under the id starts free


def test_presets_are_listed_saved_gone_to_and_removed_and_saving_and_removing_are_audited(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera
) -> None:
    register(ctx, "gate", **ptz_at(ptz_camera))
    operator = auth_headers(ctx, "operator", "asif")
    assert client.get("/api/cameras/gate/ptz/presets", headers=operator).json() == [
        {"token": "1", "name": "Home"}
    ]
    saved = client.post("/api/cameras/gate/ptz/presets", headers=operator, json={"name": "  Gate 3  "})
    assert saved.status_code == 201 and saved.json()["name"] == "Gate 3"
    token = saved.json()["token"]
    assert client.post(f"/api/cameras/gate/ptz/presets/{token}/goto", headers=operator).status_code == 200
    assert ptz_camera.last("GotoPreset").values["PresetToken"] == token  # type: ignore[union-attr]
    assert client.delete(f"/api/cameras/gate/ptz/presets/{token}", headers=operator).status_code == 204
    gone = client.post(f"/api/cameras/gate/ptz/presets/{token}/goto", headers=operator)
    assert gone.status_code == 404 and "no preset" in gone.json()["detail"]
    assert [e.detail for e in actions(ctx, "camera.ptz_preset_save")] == [{"token": token, "name": "Gate 3"}]
    assert [e.detail for e in actions(ctx, "camera.ptz_preset_remove")] == [{"token": token}]


def test_a_camera_that_cannot_move_answers_409_saying_why(ctx: Context, client: TestClient) -> None:
    fixed = SimulatedPtzCamera(ptz=False)
    try:
        register(ctx, "fixed", stream_url="synthetic://road/f", analysis={"onvif_url": fixed.url})
        register(ctx, "synthetic", stream_url="synthetic://road/s")
        register(
            ctx,
            "enforcement",
            stream_url="synthetic://road/e",
            analysis={"onvif_url": fixed.url, "ptz": "off"},
        )
        operator = auth_headers(ctx, "operator")
        refused = client.post("/api/cameras/fixed/ptz/move", headers=operator, json={"pan": 1})
        assert refused.status_code == 409 and "offers no PTZ service" in refused.json()["detail"]
        assert client.get("/api/cameras/fixed", headers=operator).json()["ptz"] == "no"
        assert client.get("/api/cameras/fixed/ptz", headers=operator).json()["ptz"] == "no"
        no_address = client.post("/api/cameras/synthetic/ptz/stop", headers=operator)
        assert no_address.status_code == 409 and "no ONVIF address" in no_address.json()["detail"]
        switched_off = client.get("/api/cameras/enforcement/ptz/presets", headers=operator)
        assert switched_off.status_code == 409 and "switched off" in switched_off.json()["detail"]
        assert fixed.operations() == ["GetServices"]  # nothing was sent to the switched-off camera
        assert client.post("/api/cameras/nope/ptz/stop", headers=operator).status_code == 404
    finally:
        fixed.close()


def test_only_roles_that_may_move_cameras_can_and_everyone_who_watches_sees_the_state(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera
) -> None:
    register(ctx, "gate", **ptz_at(ptz_camera))
    for role in ("traffic_officer", "auditor", "investigator"):
        headers = auth_headers(ctx, role)
        assert client.get("/api/cameras/gate/ptz", headers=headers).status_code == 200
        assert client.post("/api/cameras/gate/ptz/move", headers=headers, json={"pan": 1}).status_code == 403
        assert (
            client.post("/api/cameras/gate/ptz/presets", headers=headers, json={"name": "x"}).status_code
            == 403
        )
    assert "ContinuousMove" not in ptz_camera.operations()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"pan": 2}, "less than or equal to 1"),
        ({"pan": 0, "tilt": 0}, "nothing to move"),
        ({"pan": 1, "timeout_s": 0}, "greater than or equal to 0.5"),
        ({"pan": 1, "speed": 3}, "speed"),
        ({"pan": "left"}, "pan"),
    ],
)
def test_a_malformed_move_is_refused_naming_what_to_fix(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera, body: dict[str, Any], says: str
) -> None:
    register(ctx, "gate", **ptz_at(ptz_camera))
    answer = client.post("/api/cameras/gate/ptz/move", headers=auth_headers(ctx, "operator"), json=body)
    assert answer.status_code == 422 and says in answer.text
    assert "ContinuousMove" not in ptz_camera.operations()


def test_a_bad_preset_name_is_refused(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera
) -> None:
    register(ctx, "gate", **ptz_at(ptz_camera))
    operator = auth_headers(ctx, "operator")
    for name in ("", "two\nlines", "x" * 65):
        answer = client.post("/api/cameras/gate/ptz/presets", headers=operator, json={"name": name})
        assert answer.status_code == 422, name
    too_long = client.post(f"/api/cameras/gate/ptz/presets/{'t' * 65}/goto", headers=operator)
    assert too_long.status_code == 422


def test_camera_failures_come_back_in_plain_words(
    ctx: Context, client: TestClient, ptz_camera: SimulatedPtzCamera
) -> None:
    register(ctx, "gate", **{**ptz_at(ptz_camera), "password": "wrong"})
    register(ctx, "good", **ptz_at(ptz_camera))
    register(
        ctx,
        "away",
        stream_url="synthetic://x",
        analysis={"onvif_url": f"http://127.0.0.1:{free_port()}/onvif"},
    )
    operator = auth_headers(ctx, "operator")
    refused = client.post("/api/cameras/gate/ptz/move", headers=operator, json={"pan": 1})
    assert refused.status_code == 502 and refused.json()["error"] == "camera_auth_refused"
    assert "user name and password" in refused.json()["hint"]
    ptz_camera.faults["ContinuousMove"] = ("ter:Locked", "PTZ is locked by the local keyboard")
    fault = client.post("/api/cameras/good/ptz/move", headers=operator, json={"pan": 1})
    assert fault.status_code == 502 and "PTZ is locked by the local keyboard" in fault.json()["detail"]
    away = client.post("/api/cameras/away/ptz/move", headers=operator, json={"pan": 1})
    assert away.status_code == 503 and "did not answer" in away.json()["detail"]
    state = client.get("/api/cameras/away/ptz", headers=operator).json()
    assert state["ptz"] == "unknown" and "could not be asked" in state["detail"]


def test_control_sessions_are_one_audited_row_each_and_a_lapsed_lease_starts_a_new_one_on_both_databases(
    any_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit_anchor_env(tmp_path, monkeypatch)
    anchor.forget(any_db_url)
    db = Database(any_db_url)
    db.migrate()
    try:
        for actor in ("asif", "asif", "bilal", "bilal"):
            with db.session() as session:
                ptz.take_control(session, "gate", actor=actor, action="move")
        with db.session() as session:
            seen = ptz.controller(session, "gate", you="asif")
            assert seen is not None and seen.username == "bilal" and seen.you is False
            lease = session.get(PtzLease, "gate")
            assert lease is not None
            lease.renewed_at -= timedelta(seconds=LEASE_S + 1)
        with db.session() as session:
            assert ptz.controller(session, "gate", you="bilal") is None
            ptz.take_control(session, "gate", actor="bilal", action="stop")
        with db.session() as session:
            rows = audit.entries(session, action="camera.ptz_control")
            assert sorted((e.actor, e.detail["first"], e.detail["taken_from"]) for e in rows) == [
                ("asif", "move", None),
                ("bilal", "move", "asif"),
                ("bilal", "stop", None),
            ]
    finally:
        db.dispose()


def test_an_operator_sends_a_camera_to_a_position_within_its_ranges_and_each_move_is_audited(
    ctx: Context, client: TestClient
) -> None:
    camera = SimulatedPtzCamera(username="ptz", password="s3cret", pan_tilt_limits=(-0.5, 0.5, -1.0, 1.0))
    try:
        register(ctx, "gate", **ptz_at(camera))
        operator = auth_headers(ctx, "operator", "asif")
        where = client.get("/api/cameras/gate/ptz/position", headers=operator).json()
        assert where["absolute"] is True and (where["pan"], where["tilt"], where["zoom"]) == (0, 0, 0)
        assert where["pan_range"] == {"min": -0.5, "max": 0.5} and where["zoom_range"] == {"min": 0, "max": 1}
        assert "AbsoluteMove" not in camera.operations() and actions(ctx, "camera.ptz_control") == []

        sent = client.post(
            "/api/cameras/gate/ptz/absolute", headers=operator, json={"pan": 0.4, "tilt": -0.2}
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["controller"]["username"] == "asif"
        assert camera.view() == pytest.approx((0.4, -0.2, 0.0))
        client.post("/api/cameras/gate/ptz/absolute", headers=operator, json={"zoom": 0.5}).raise_for_status()
        assert camera.view() == pytest.approx((0.4, -0.2, 0.5))
        now = client.get("/api/cameras/gate/ptz/position", headers=operator).json()
        assert (now["pan"], now["tilt"], now["zoom"]) == pytest.approx((0.4, -0.2, 0.5))
        moves = actions(ctx, "camera.ptz_absolute_move")  # newest first
        assert [e.detail for e in reversed(moves)] == [
            {"pan": 0.4, "tilt": -0.2, "zoom": None},
            {"pan": None, "tilt": None, "zoom": 0.5},
        ]
        assert [e.detail["first"] for e in actions(ctx, "camera.ptz_control")] == ["absolute_move"]
    finally:
        camera.close()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"pan": 0.9, "tilt": 0}, 422, "pan 0.9 is outside this camera's range -0.5 to 0.5"),
        ({"zoom": 1.5}, 422, "zoom 1.5 is outside this camera's range 0 to 1"),
        ({"pan": 0.1}, 422, "pan and tilt go together"),
        ({}, 422, "nothing to move to"),
        ({"pan": "left", "tilt": 0}, 422, "pan"),
        ({"zoom": 0.5, "speed": 1}, 422, "speed"),
    ],
)
def test_a_position_the_camera_cannot_reach_is_refused_naming_its_range_and_nothing_moves(
    ctx: Context, client: TestClient, body: dict[str, Any], status: int, says: str
) -> None:
    camera = SimulatedPtzCamera(pan_tilt_limits=(-0.5, 0.5, -1.0, 1.0))
    try:
        register(ctx, "gate", stream_url="synthetic://road/g", analysis={"onvif_url": camera.url})
        answer = client.post(
            "/api/cameras/gate/ptz/absolute", headers=auth_headers(ctx, "operator"), json=body
        )
        assert answer.status_code == status and says in answer.text, answer.text
        assert "AbsoluteMove" not in camera.operations() and actions(ctx, "camera.ptz_control") == []
    finally:
        camera.close()


def test_a_camera_without_absolute_positions_answers_409_and_its_position_says_why(
    ctx: Context, client: TestClient
) -> None:
    camera = SimulatedPtzCamera(absolute=False)
    try:
        register(ctx, "gate", stream_url="synthetic://road/g", analysis={"onvif_url": camera.url})
        operator = auth_headers(ctx, "operator")
        where = client.get("/api/cameras/gate/ptz/position", headers=operator).json()
        assert where["absolute"] is False and "no absolute position space" in where["detail"]
        assert where["pan_range"] is None and where["zoom_range"] is None
        refused = client.post("/api/cameras/gate/ptz/absolute", headers=operator, json={"pan": 0, "tilt": 0})
        assert refused.status_code == 409 and refused.json()["error"] == "no_absolute_ptz"
        assert "AbsoluteMove" not in camera.operations()
        viewer = auth_headers(ctx, "auditor")
        assert client.get("/api/cameras/gate/ptz/position", headers=viewer).status_code == 403
        assert (
            client.post("/api/cameras/gate/ptz/absolute", headers=viewer, json={"zoom": 0}).status_code == 403
        )
    finally:
        camera.close()
