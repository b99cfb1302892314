"""Every read of personal data writes an audit row: who looked at whose plate, CNIC, face or address.

`PERSONAL` lists the routes that return personal data and how to call each as a role that may. The
first test keeps that list complete: any GET route whose response names a plate, a CNIC, an owner,
an address, a phone or e-mail, a watch-list legal basis or a user, and every picture or document
route, must be listed (or exempted here with the reason). The second calls each one on a seeded
centre and finds the audit row its call wrote, by the caller's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from safecity.accounts import service as accounts
from safecity.alerts import service as alerts
from safecity.anpr import service as anpr
from safecity.audit.models import AuditEntry
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.challans import notice
from safecity.challans import service as challans
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import PlateRead
from safecity.server import create_app
from safecity.settings import Settings
from safecity.worker import runtime
from tests.conftest import make_user

# Fields that make a response personal data: a citizen's vehicle, identity, home and contacts, the
# legal basis a person is watched for, and the staff's own accounts.
SUBJECT_FIELDS = frozenset(
    {"plate", "plates", "cnic", "owner", "address", "phone", "email", "legal_basis", "username", "full_name"}
)
# Personal data, but the caller's own, or a log that audits itself by other means.
EXEMPT = {
    ("GET", "/api/me"): "the caller's own account",
    ("GET", "/api/tokens"): "the caller's own tokens",
    ("GET", "/api/wall/layouts"): "the caller's wall layouts and those shared with a room, by owner (staff)",
    ("GET", "/api/cameras/{camera_id}/ptz"): "which colleague is moving the camera now (staff), shown to "
    "those watching it; taking control is itself audited (camera.ptz_control)",
}


# Pictures and documents whose call needs what a test centre has not got (recorded footage, a
# citizen's look-up token): their reads are audited in their own domains' tests.
BINARY_UNREACHED = {
    "/api/recordings/cameras/{camera_id}/play.mp4",
    "/api/portal/challans/{number}/notice",
    "/api/portal/challans/{number}/evidence/{ref}",
}


@dataclass(frozen=True)
class Read:
    """One route that returns personal data, as a role that may call it calls it."""

    path: str
    role: str
    params: dict[str, str] = field(default_factory=dict)
    citizen: bool = False  # the portal: the row names the citizen's address, not a user

    def url(self, seeds: dict[str, str]) -> str:
        return self.path.format(**seeds)


PERSONAL = [
    Read("/api/users", "admin"),
    Read("/api/maintenance/team", "admin"),
    Read("/api/cameras/{camera_id}/snapshot", "operator"),
    Read("/api/recordings/cameras/{camera_id}/timeline", "operator", {"start": "{start}", "end": "{end}"}),
    Read("/api/plates/reads", "investigator", {"plate": "LEA4521", "reason": "case 12/24 theft"}),
    Read("/api/plates/reads/{read_id}", "investigator"),
    Read("/api/plates/hotlist", "supervisor"),
    Read("/api/plates/hotlist/check", "supervisor", {"plate": "LEA4521"}),
    Read("/api/plates/areas", "operator"),
    Read("/api/plates/visits", "supervisor"),
    Read("/api/violations", "traffic_officer"),
    Read("/api/violations/{violation_id}", "traffic_officer"),
    Read("/api/challans", "traffic_officer"),
    Read("/api/challans/{number}", "traffic_officer"),
    Read("/api/challans/{number}/notice", "traffic_officer"),
    Read("/api/challans/{number}/appeal", "traffic_officer"),
    Read("/api/challans/registry/{plate}", "traffic_officer"),
    Read("/api/challans/flags", "traffic_officer"),
    Read("/api/portal/verify/{code}", "anonymous", citizen=True),
    Read("/api/faces/entries", "investigator"),
    Read("/api/faces/entries/{entry_id}", "investigator"),
    Read("/api/faces/matches", "operator"),
    Read("/api/faces/notifications", "operator"),
    Read("/api/alerts", "operator"),
    Read("/api/alerts/{alert_id}", "operator"),
    Read("/api/alerts/{alert_id}/history", "operator"),
    Read("/api/alerts/{alert_id}/context", "operator"),
    Read("/api/live/recent", "supervisor"),
    Read("/api/incidents", "operator"),
    Read("/api/incidents/{incident_id}", "operator"),
    Read("/api/field/assignment", "patrol_officer"),  # the photo and title of the incident it is sent to
    Read("/api/audit", "auditor"),
    Read("/media/{media_ref}", "traffic_officer"),
]
# Pictures and documents: personal whatever their schema says (faces, plates, notices with addresses).
BINARY = {
    "/api/cameras/{camera_id}/snapshot",
    "/api/recordings/cameras/{camera_id}/play.mp4",
    "/api/challans/{number}/notice",
    "/api/portal/challans/{number}/notice",
    "/api/portal/challans/{number}/evidence/{ref}",
    "/api/challans/registry/{plate}",
    "/api/portal/verify/{code}",
    "/media/{ref}",
}


def _fields(schema: dict[str, Any], schemas: dict[str, Any], seen: set[str]) -> set[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return set()
        seen.add(name)
        return _fields(schemas[name], schemas, seen)
    found = set(schema.get("properties", {}))
    for sub in schema.get("properties", {}).values():
        found |= _fields(sub, schemas, seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found |= _fields(schema[key], schemas, seen)
    for key in ("anyOf", "allOf", "oneOf"):
        for sub in schema.get(key, []):
            found |= _fields(sub, schemas, seen)
    return found


def personal_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Returns the GET operations whose answers carry personal data, read from the OpenAPI document."""
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    found = set()
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        content = get.get("responses", {}).get("200", {}).get("content", {})
        names: set[str] = set()
        for body in content.values():
            names |= _fields(body.get("schema", {}), schemas, set())
        if names & SUBJECT_FIELDS or path in BINARY:
            found.add(("GET", path))
    return found | {("GET", p) for p in BINARY}


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Context, TestClient, dict[str, str]]]:
    ctx = Context.create(Settings(data_dir=Path(tmp_path_factory.mktemp("personal")) / "data"))
    app = create_app(ctx)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield ctx, client, _seed(ctx, client)
    runtime._snapshots.pop("cam-1", None)
    ctx.db.dispose()


def _seed(ctx: Context, client: TestClient) -> dict[str, str]:
    """A camera with a picture, a plate read, a hot-list entry, a violation turned challan with an
    appeal, an alert with an incident, a watch-list entry: one of everything a route may show."""
    from tests.challans.test_challan_lifecycle import REGISTRY, approved_violation

    now = utcnow()
    crop = ctx.media.put_image(np.full((40, 120, 3), 200, np.uint8))
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn(
                id="cam-1", name="Saddar", kind="anpr", district="South", latitude=24.86, longitude=67.02
            ),
            actor="test",
        )
        (read,) = anpr.store_reads(
            session,
            [PlateRead(key="r1", camera_id="cam-1", at=now, plate="LEA4521", confidence=0.9, crop_ref=crop)],
        )
        challans.import_registry(session, REGISTRY, actor="test")
        violation_id = approved_violation(session, "v-personal", media=ctx.media)
        number = challans.issue_pending(session).numbers[0]
        notice.render_notice(session, ctx.media, number, portal=notice.portal_address(ctx.settings))
        challan = challans.get_challan(session, number)
        alert, _ = alerts.raise_alert(
            session,
            kind="hotlist",
            priority=1,
            title="LEA4521 on the stolen list",
            source_key="hit-1",
            dedup_key="hit:LEA4521",
            camera_id="cam-1",
            evidence={"crop_ref": crop, "plate": "LEA4521"},
        )
        code = challan.verification_code
    runtime._snapshots["cam-1"] = b"\xff\xd8a-picture"
    admin = {"Authorization": f"Bearer {_token(ctx, 'seed-admin', 'admin')}"}
    supervisor = {"Authorization": f"Bearer {_token(ctx, 'seed-supervisor', 'supervisor')}"}
    assert client.post(
        "/api/plates/hotlist",
        json={"plate": "LEA4521", "list_name": "stolen", "reason": "FIR 1"},
        headers=supervisor,
    ).is_success
    incident = client.post(
        "/api/incidents", json={"title": "Stolen car seen", "alert_ids": [alert.id]}, headers=admin
    )
    assert incident.is_success, incident.text
    appeal = client.post(
        f"/api/portal/challans/{number}/appeal",
        json={"grounds": "I sold the car a month before it was seen there"},
        headers={"X-Portal-Token": _portal_token(client)},
    )
    assert appeal.status_code == 201, appeal.text
    return {
        "camera_id": "cam-1",
        "read_id": read.id,
        "violation_id": violation_id,
        "number": number,
        "plate": "ABC123",
        "code": code,
        "alert_id": alert.id,
        "incident_id": incident.json()["id"],
        "entry_id": "",
        "media_ref": crop,
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(minutes=1)).isoformat(),
    }


def _token(ctx: Context, name: str, role: str) -> str:
    make_user(ctx, role, name)
    with ctx.db.session() as session:
        token, _ = accounts.issue_token(session, accounts.get_by_username(session, name), kind="api", hours=1)
    return token


def _portal_token(client: TestClient) -> str:
    found = client.post("/api/portal/lookup", json={"plate": "ABC123", "cnic": "4210112345671"})
    return str(found.json().get("token", ""))


def test_every_route_that_returns_personal_data_is_listed_here(
    centre: tuple[Context, TestClient, dict[str, str]],
) -> None:
    _, client, _ = centre
    listed = {("GET", r.path.replace("{media_ref}", "{ref}")) for r in PERSONAL}
    unreached = {("GET", path) for path in BINARY_UNREACHED}
    missing = personal_routes(client.app) - listed - set(EXEMPT) - unreached  # type: ignore[arg-type]
    assert sorted(missing) == []


@pytest.mark.parametrize("read", PERSONAL, ids=lambda r: r.path)
def test_each_read_of_personal_data_writes_an_audit_row(
    centre: tuple[Context, TestClient, dict[str, str]], read: Read, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, client, seeds = centre
    if "{entry_id}" in read.path:
        seeds = {**seeds, "entry_id": _watchlist_entry(ctx, client, monkeypatch)}
    headers: dict[str, str] = {}
    name = "citizen@"
    if not read.citizen:
        name = f"reader-{read.role}-{len(read.path)}-{abs(hash(read.path)) % 10_000}"
        headers = {"Authorization": f"Bearer {_token(ctx, name, read.role)}"}
    params = {k: v.format(**seeds) for k, v in read.params.items()}
    before = _rows(ctx)
    response = client.get(read.url(seeds), params=params, headers=headers)
    assert response.is_success, f"{read.path}: {response.status_code} {response.text[:200]}"
    with ctx.db.session() as session:
        written = session.scalars(select(AuditEntry).where(AuditEntry.seq > before)).all()
    assert any(row.actor.startswith(name) for row in written), (
        read.path,
        [(r.actor, r.action) for r in written],
    )


def _rows(ctx: Context) -> int:
    with ctx.db.session() as session:
        return int(session.scalar(select(func.max(AuditEntry.seq))) or 0)


def _watchlist_entry(ctx: Context, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> str:
    from safecity.faces import service as faces
    from tests.faces.test_watchlist_governance import person_photo, stand_in_encoder

    monkeypatch.setattr(faces, "pipeline_encoder", lambda: stand_in_encoder)
    monkeypatch.setattr(faces, "default_threshold", lambda settings: 0.9)
    maker = _token(ctx, f"seed-investigator-{_rows(ctx)}", "investigator")
    created = client.post(
        "/api/faces/entries",
        data={
            "name": "Kamran Sheikh",
            "category": "wanted",
            "legal_basis": "FIR 455/2024 PS Clifton",
            "expires_at": (utcnow() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
        },
        files=[("photos", ("p.jpg", person_photo(120), "image/jpeg"))],
        headers={"Authorization": f"Bearer {maker}"},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])
