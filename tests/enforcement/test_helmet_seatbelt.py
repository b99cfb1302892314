"""Helmet and seat-belt offences end to end: the ANPR pipeline raises them with their evidence, an officer
always reviews them, and where no model is installed every place that matters says they are not detected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
from fastapi.testclient import TestClient

from safecity.core.camera_config import AnalysisSettings
from safecity.core.context import Context
from safecity.core.events import ViolationCandidate
from safecity.enforcement import service
from safecity.enforcement.models import EnforcementPolicy, EnforcementPolicySetting
from safecity.video.sources import Frame
from safecity.vision import registry
from safecity.vision.objects import MotionGatedDetector, NanoDetDetector
from safecity.worker.anpr import AnprPipeline, CameraSetup, vehicle_detector
from tests.conftest import auth_headers
from tests.enforcement.court import court_ready, register_camera
from tests.vision.compliance_models import install_classifier, street

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
HELMET_STATEMENT = "Helmet offences are not detected: no helmet model is installed"


@pytest.fixture(autouse=True)
def plugin_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "models"
    monkeypatch.setenv("SAFECITY_MODELS_DIR", str(folder))
    registry.forget_sessions()
    yield folder
    registry.forget_sessions()


class NoPlates:
    """Stands in for the plate reader: these tests are about riders, not plates."""

    def read(self, crop: np.ndarray) -> list[object]:
        return []


class RidingPast:
    """Stands in for the object detector: a motorcycle and its rider moving right 8 px a frame."""

    def __init__(self) -> None:
        self.frame = 0

    def boxes(self) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
        dx = 8 * self.frame
        return (200 + dx, 260, 320 + dx, 380), (225 + dx, 150, 295 + dx, 330)

    def detect(self, image: np.ndarray) -> sv.Detections:
        motorcycle, rider = self.boxes()
        self.frame += 1
        return sv.Detections(
            xyxy=np.array([motorcycle, rider], np.float32),
            confidence=np.array([0.8, 0.7], np.float32),
            class_id=np.array([3, 0]),
            data={"class_name": np.array(["motorcycle", "person"], dtype=object)},
        )


def helmet_camera(camera_id: str = "cam-h", **settings: object) -> CameraSetup:
    analysis = AnalysisSettings.model_validate({"helmet_enforcement": True, "motion_gate": False, **settings})
    return CameraSetup(camera_id, "anpr", analysis)


def ride_past(ctx: Context, state: str, frames: int = 6) -> list[ViolationCandidate]:
    """Runs the ANPR pipeline over a rider passing with a bare head or a helmet; returns its candidates."""
    detector = RidingPast()
    pipeline = AnprPipeline(helmet_camera(), ctx.media, reader=NoPlates(), detector=detector)  # type: ignore[arg-type]
    assert pipeline.degraded is None and [c.offence for c in pipeline.checks] == ["no_helmet"]
    events = []
    for i in range(frames):
        _, rider = detector.boxes()
        image = street(riders=[(rider, state)])
        events += pipeline.process(
            Frame(image, pts_seconds=i / 5, wall_time=T0 + timedelta(seconds=i / 5), index=i)
        )
    events += pipeline.tick(T0 + timedelta(seconds=30))
    return [e for e in events if isinstance(e, ViolationCandidate) and e.offence == "no_helmet"]


def test_a_rider_without_a_helmet_is_a_no_helmet_candidate_with_the_frame_and_the_head_as_evidence(
    ctx: Context, tmp_path: Path
) -> None:
    install_classifier(tmp_path, "helmet-classifier")
    (candidate,) = ride_past(ctx, "bare")
    assert candidate.camera_id == "cam-h" and candidate.confidence > 0.99
    detail = candidate.detail
    assert (
        detail["model"] == "helmet-classifier"
        and detail["votes"] == 6
        and detail["vehicle_class"] == "motorcycle"
    )
    frame_ref, crop_ref = candidate.evidence_refs[:2]
    assert detail["frames_after"] == [frame_ref] and detail["occupant_crop"] == crop_ref
    assert ctx.media.path(crop_ref).is_file() and ctx.media.path(frame_ref).is_file()
    assert ride_past(ctx, "helmet") == []


def test_a_helmet_violation_waits_for_an_officer_whatever_the_policy_says(
    ctx: Context, tmp_path: Path
) -> None:
    install_classifier(tmp_path, "helmet-classifier")
    (candidate,) = ride_past(ctx, "bare")
    candidate.plate = "KHB777"
    court_ready(ctx, "cam-h", at=candidate.at)
    # A policy that would auto-approve it, as one stored by an older release might: bypassing its checks.
    lax = EnforcementPolicy.model_construct(
        **{
            **EnforcementPolicy().model_dump(),
            "auto_issue_confidence": 0.5,
            "auto_issue_offences": ["no_helmet"],
        }
    )
    with ctx.db.session() as session:
        ((violation, new),) = service.record_candidates(session, [candidate], policy=lax, media=ctx.media)
        assert new and violation.hold_reason == ""  # court-ready: only the review rule keeps it back
        assert violation.status == "pending" and not violation.auto_approved


def test_the_policy_refuses_to_let_helmet_or_seat_belt_skip_review(ctx: Context, client: TestClient) -> None:
    admin = auth_headers(ctx, "admin")
    body = {**EnforcementPolicy().model_dump(), "auto_issue_offences": ["speeding", "no_seat_belt"]}
    refused = client.put("/api/enforcement/policy", json=body, headers=admin)
    assert refused.status_code == 422
    assert "no_seat_belt cannot skip review" in refused.text and "officer always reviews" in refused.text
    with ctx.db.session() as session:
        session.add(
            EnforcementPolicySetting(
                id=1, data={"auto_issue_offences": ["speeding", "no_helmet"]}, updated_by="old release"
            )
        )
    with ctx.db.session() as session:
        assert service.get_policy(session).auto_issue_offences == ["speeding"]


def test_a_camera_asking_for_helmet_checks_without_a_model_says_in_its_health_that_they_are_not_detected(
    ctx: Context,
) -> None:
    pipeline = AnprPipeline(
        helmet_camera(seat_belt_enforcement=True), ctx.media, reader=NoPlates(), detector=RidingPast()
    )  # type: ignore[arg-type]
    assert pipeline.checks == []
    assert pipeline.degraded is not None and HELMET_STATEMENT in pipeline.degraded
    assert "Seat-belt offences are not detected: no seat-belt model is installed" in pipeline.degraded
    assert "safecity models install" in pipeline.degraded
    motion = AnprPipeline(helmet_camera(detector="motion"), ctx.media, reader=NoPlates())  # type: ignore[arg-type]
    assert (
        motion.degraded is not None
        and "motion detector does not tell riders and cars apart" in motion.degraded
    )


def test_a_camera_naming_yolo11n_before_it_is_installed_runs_nanodet_and_says_why() -> None:
    detector, why = vehicle_detector(AnalysisSettings(detector="yolo11n"))
    assert isinstance(detector, MotionGatedDetector) and isinstance(detector.detector, NanoDetDetector)
    assert why is not None and "yolo11n is not installed" in why
    assert "safecity models install yolo11n --accept-licence" in why


def test_the_review_page_the_api_and_the_camera_form_say_plainly_what_is_not_detected(
    ctx: Context, client: TestClient
) -> None:
    register_camera(ctx, "cam-h")
    admin = auth_headers(ctx, "admin")
    settings = {"analysis": {"helmet_enforcement": True}}
    assert client.patch("/api/cameras/cam-h", json=settings, headers=admin).status_code == 200
    officer = auth_headers(ctx, "traffic_officer")
    detection = {d["offence"]: d for d in client.get("/api/enforcement/detection", headers=officer).json()}
    assert not detection["no_helmet"]["detected"] and detection["no_helmet"]["cameras"] == ["cam-h"]
    assert detection["no_helmet"]["statement"].startswith(HELMET_STATEMENT)
    assert detection["no_seat_belt"]["cameras"] == []
    page = client.get("/violations", headers=officer)
    assert page.status_code == 200 and HELMET_STATEMENT in page.text and "switched on at cam-h" in page.text
    schema = client.get("/api/cameras/config-schema", headers=admin).json()
    assert schema["used_by"]["helmet check"].startswith(HELMET_STATEMENT)
    assert "helmet_enforcement" in schema["$defs"]["AnalysisSettings"]["properties"]
