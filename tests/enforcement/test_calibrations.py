"""Calibrations: recorded with proof and certificate, one per camera at any moment, refused when unsound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.enforcement.calibrations import service as calibrations
from safecity.enforcement.calibrations.replication import WorkerCalibrations
from tests.conftest import auth_headers
from tests.enforcement.court import GROUND, IMAGE, calibration_in, register_camera

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


def body(certificate: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "image_points": IMAGE,
        "ground_points": GROUND,
        "references": [{"image_from": [170, 0], "image_to": [470, 0], "metres": 25.0}],
        "measured_by": "Inspector Rana",
        "measured_at": (T0 - timedelta(hours=1)).isoformat(),
        "valid_from": T0.isoformat(),
        "certificate_ref": certificate,
        "certificate_number": "PSQCA-2025-0042",
        "certificate_expires": (utcnow() + timedelta(days=200)).date().isoformat(),
    }
    return {**data, **changes}


def upload(client: TestClient, headers: dict[str, str]) -> str:
    answer = client.post(
        "/api/enforcement/certificates", content=PDF, headers={**headers, "content-type": "application/pdf"}
    )
    assert answer.status_code == 201
    return str(answer.json()["ref"])


def test_a_calibration_is_recorded_with_who_when_its_proof_and_certificate_and_audited(
    ctx: Context, client: TestClient
) -> None:
    register_camera(ctx, "cam-1")
    admin = auth_headers(ctx, "admin")
    certificate = upload(client, admin)
    made = client.post("/api/enforcement/cameras/cam-1/calibrations", json=body(certificate), headers=admin)
    assert made.status_code == 201, made.text
    out = made.json()
    assert out["measured_by"] == "Inspector Rana" and out["certificate_ref"] == certificate
    assert out["valid_from"].startswith("2025-06-01T08:00") and out["references"][0]["metres"] == 25.0
    listed = client.get(
        "/api/enforcement/cameras/cam-1/calibrations", headers=auth_headers(ctx, "traffic_officer")
    )
    assert [c["id"] for c in listed.json()] == [out["id"]]
    with ctx.db.session() as session:
        entries = audit.entries(session, action="enforcement.calibrate")
        assert entries and entries[0].detail["certificate"] == "PSQCA-2025-0042"
        assert calibrations.in_force(session, "cam-1", T0 + timedelta(days=1)).id == out["id"]  # type: ignore[union-attr]
        assert calibrations.in_force(session, "cam-1", T0 - timedelta(seconds=1)) is None
    # The certificate is evidence: an officer reviewing violations may open it.
    shown = client.get(f"/media/{certificate}", headers=auth_headers(ctx, "traffic_officer"))
    assert shown.status_code == 200 and shown.content == PDF


def test_a_new_calibration_ends_the_previous_one_and_never_overlaps_it(ctx: Context) -> None:
    register_camera(ctx, "cam-1")
    with ctx.db.session() as session:
        first = calibrations.record(
            session, "cam-1", calibration_in(ctx, valid_from=T0), media=ctx.media, actor="t"
        )
        later = T0 + timedelta(days=90)
        second = calibrations.record(
            session, "cam-1", calibration_in(ctx, valid_from=later), media=ctx.media, actor="t"
        )
        assert first.valid_until == later and first.superseded_by == second.id
        assert calibrations.in_force(session, "cam-1", later - timedelta(seconds=1)).id == first.id  # type: ignore[union-attr]
        assert calibrations.in_force(session, "cam-1", later).id == second.id  # type: ignore[union-attr]
        # Workers hear of both: the new one and the old one's shortened period.
        copy = WorkerCalibrations()
        copy.load(session)
        assert copy.in_force("cam-1", later - timedelta(seconds=1)) is None  # ended before now: not loaded
        assert copy.speed_for("cam-1", later + timedelta(days=1)).calibration_id == second.id  # type: ignore[union-attr]


def test_unsound_calibrations_are_refused_with_what_to_fix(ctx: Context, client: TestClient) -> None:
    register_camera(ctx, "cam-1")
    admin = auth_headers(ctx, "admin")
    certificate = upload(client, admin)
    url = "/api/enforcement/cameras/cam-1/calibrations"

    def refused(status: int, **changes: Any) -> str:
        answer = client.post(url, json=body(certificate, **changes), headers=admin)
        assert answer.status_code == status, answer.text
        return str(answer.json()["detail"])

    assert "collinear" in refused(422, image_points=[[0, 0], [1, 1], [2, 2], [0, 9]])
    assert "same point" in refused(422, image_points=[IMAGE[0], IMAGE[0], IMAGE[2], IMAGE[3]])
    assert "nearly collinear" in refused(422, image_points=[[100, 700], [540, 700], [400, 200], [396, 208]])
    off = [{"image_from": [170, 0], "image_to": [470, 0], "metres": 30.0}]
    assert "reference measurement 1 reads 25.00 m" in refused(422, references=off)
    assert "references" in refused(422, references=[])
    expired = (utcnow() - timedelta(days=1)).date().isoformat()
    assert "expired on" in refused(422, certificate_expires=expired)
    missing = "sha256:" + "0" * 64 + ".pdf"
    assert "not in the store" in refused(422, certificate_ref=missing)
    assert "before it was measured" in refused(422, valid_from=(T0 - timedelta(days=1)).isoformat())
    assert (
        "does not exist"
        in client.post(
            "/api/enforcement/cameras/nowhere/calibrations", json=body(certificate), headers=admin
        ).json()["detail"]
    )
    assert client.post(url, json=body(certificate), headers=admin).status_code == 201
    assert "calibration 1 of camera cam-1 is in force from" in refused(
        409, valid_from=(T0 - timedelta(minutes=30)).isoformat()
    )
    with ctx.db.session() as session:
        assert len(calibrations.list_for(session, "cam-1")) == 1


def test_a_certificate_upload_must_be_a_pdf_or_an_image(ctx: Context, client: TestClient) -> None:
    admin = auth_headers(ctx, "admin")
    url = "/api/enforcement/certificates"
    wrong_type = client.post(url, content=b"hello", headers={**admin, "content-type": "text/plain"})
    assert wrong_type.status_code == 422 and "application/pdf" in wrong_type.json()["detail"]
    not_pdf = client.post(url, content=b"hello", headers={**admin, "content-type": "application/pdf"})
    assert not_pdf.status_code == 422 and "not a PDF" in not_pdf.json()["detail"]
    officer = auth_headers(ctx, "traffic_officer")
    assert (
        client.post(url, content=PDF, headers={**officer, "content-type": "application/pdf"}).status_code
        == 403
    )


def test_a_worker_copy_takes_changes_in_any_order_and_keeps_the_shorter_period() -> None:
    from safecity.enforcement.calibrations.models import CalibrationChanged

    def change(until: datetime) -> CalibrationChanged:
        return CalibrationChanged(
            key=f"calibration:1:{until.isoformat()}",
            camera_id="cam-1",
            calibration_id=1,
            image_points=[list(p) for p in IMAGE],
            ground_points=[list(p) for p in GROUND],
            valid_from=T0,
            valid_until=until,
        )

    copy = WorkerCalibrations()
    ended = T0 + timedelta(days=10)
    copy.on_event(change(ended))  # the supersession arrives first
    copy.on_event(change(T0 + timedelta(days=365)))  # then the original, late: it changes nothing
    assert copy.speed_for("cam-1", T0 + timedelta(days=9)).calibration_id == 1  # type: ignore[union-attr]
    assert copy.speed_for("cam-1", ended) is None
    assert copy.speed_for("cam-2", T0) is None
