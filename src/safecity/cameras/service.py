"""The camera registry: register, change, list and bulk-import cameras; version their configuration; record
their health."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.orm import Session, undefer

from safecity.audit import service as audit
from safecity.cameras.models import (
    Camera,
    CameraConfig,
    CameraConfigVersion,
    CameraIn,
    CameraPatch,
    ConfigChange,
    ImportReport,
)
from safecity.cameras.ptz.models import PtzLease
from safecity.core.clock import utcnow
from safecity.core.db import get_or_raise
from safecity.core.errors import Conflict, InvalidInput, NotFound
from safecity.core.importer import CsvRows, ImportLimits, Source, yaml_list


def _apply(camera: Camera, data: CameraIn) -> None:
    camera.name, camera.kind, camera.district = data.name, data.kind.value, data.district
    camera.latitude, camera.longitude = data.latitude, data.longitude
    camera.stream_url, camera.username, camera.password = data.stream_url, data.username, data.password
    camera.substream_url = data.substream_url
    camera.enabled = data.enabled


def _stored(camera: Camera) -> dict[str, Any]:
    return {"analysis": camera.analysis or {}, "zones": camera.zones or [], "lines": camera.lines or []}


def _last_versions(session: Session, camera_ids: Sequence[str]) -> dict[str, int]:
    rows = session.execute(
        select(CameraConfigVersion.camera_id, func.max(CameraConfigVersion.version))
        .where(CameraConfigVersion.camera_id.in_(camera_ids))
        .group_by(CameraConfigVersion.camera_id)
    )
    return {camera_id: version for camera_id, version in rows}


def _configure(
    session: Session,
    camera: Camera,
    config: CameraConfig,
    *,
    actor: str,
    note: str,
    new: bool = False,
    last: int | None = None,
) -> CameraConfigVersion | None:
    """Puts a configuration in force and keeps it as a new version; returns it (None: nothing changed).

    `last` is the camera's newest version number where the caller already knows it (bulk imports).
    """
    after = config.stored()
    before = None if new else _stored(camera)
    if before == after:
        return None
    camera.analysis, camera.zones, camera.lines = after["analysis"], after["zones"], after["lines"]
    # Numbers go on across a removal and a new registration under the same id: a cited version stays unique.
    if last is None:
        last = _last_versions(session, [camera.id]).get(camera.id, 0)
    camera.config_version = last + 1
    changes = [] if before is None else [c.model_dump(mode="json") for c in config_changes(before, after)]
    version = CameraConfigVersion(
        camera_id=camera.id,
        version=camera.config_version,
        config=after,
        changes=changes,
        note=note,
        created_by=actor,
    )
    session.add(version)
    return version


def config_changes(before: dict[str, Any], after: dict[str, Any]) -> list[ConfigChange]:
    """Returns what differs between two stored configurations: settings by name, zones and lines by name."""
    changes = []
    old, new = before.get("analysis") or {}, after.get("analysis") or {}
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) != new.get(key):
            changes.append(ConfigChange(field=f"analysis.{key}", before=old.get(key), after=new.get(key)))
    for field in ("zones", "lines"):
        was = {item["name"]: item for item in before.get(field) or []}
        now = {item["name"]: item for item in after.get(field) or []}
        for name in [*was, *(n for n in now if n not in was)]:
            if was.get(name) != now.get(name):
                changes.append(
                    ConfigChange(field=f"{field}[{name!r}]", before=was.get(name), after=now.get(name))
                )
    return changes


def create(session: Session, data: CameraIn, *, actor: str) -> Camera:
    """Registers a camera with its configuration as version 1 (or the next, after a removal); a duplicate id
    is a Conflict."""
    if session.get(Camera, data.id) is not None:
        raise Conflict(
            f"camera {data.id!r} is already registered", hint="use another id or update it instead"
        )
    camera = Camera(id=data.id)
    _apply(camera, data)
    _configure(session, camera, data.config, actor=actor, note="registered", new=True)
    session.add(camera)
    session.flush()
    session.expire(camera, ["has_password"])
    audit.record(
        session,
        actor=actor,
        action="camera.create",
        target=data.id,
        detail={"kind": data.kind, "config_version": camera.config_version},
    )
    return camera


def get(session: Session, camera_id: str) -> Camera:
    """Returns a camera or raises NotFound."""
    return get_or_raise(session, Camera, camera_id, what="camera")


def watchable(session: Session) -> dict[str, bool]:
    """Returns the cameras with live video to watch (enabled, with a stream), by id: whether each has a
    sub-stream (one query)."""
    rows = session.execute(
        select(Camera.id, Camera.substream_url).where(Camera.enabled.is_(True), Camera.stream_url != "")
    )
    return {camera_id: bool(substream) for camera_id, substream in rows}


def positions(session: Session, camera_ids: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Returns the latitude and longitude of each of these cameras that exists (one query)."""
    ids = sorted(set(camera_ids))
    if not ids:
        return {}
    rows = session.execute(select(Camera.id, Camera.latitude, Camera.longitude).where(Camera.id.in_(ids)))
    return {camera_id: (lat, lon) for camera_id, lat, lon in rows}


def update(session: Session, camera_id: str, patch: CameraPatch, *, actor: str) -> Camera:
    """Applies the given changes to a camera; a changed configuration becomes its next version."""
    camera = get(session, camera_id)
    changes = patch.model_dump(exclude_unset=True, mode="json")
    config_fields = {"analysis", "zones", "lines"}
    for name, value in changes.items():
        if name not in config_fields:
            setattr(camera, name, value)
    version = None
    if config_fields & changes.keys():
        version = _configure(session, camera, patched_config(camera, patch), actor=actor, note="changed")
    session.flush()
    session.expire(camera, ["has_password"])
    shown = {k: ("•••" if k == "password" and v else v) for k, v in changes.items()}
    if version is not None:
        shown["config_version"] = version.version
    audit.record(session, actor=actor, action="camera.update", target=camera_id, detail=shown)
    return camera


def patched_config(camera: Camera, patch: CameraPatch) -> CameraConfig:
    """Returns a camera's configuration with a patch applied: the settings it names, its zones and lines."""
    config = _stored(camera)
    named = patch.model_fields_set
    if "analysis" in named:
        analysis = patch.analysis
        config["analysis"] = (
            {}
            if analysis is None
            else {**config["analysis"], **analysis.model_dump(include=analysis.model_fields_set)}
        )
    for field in ("zones", "lines"):
        if field in named:
            config[field] = [item.model_dump() for item in getattr(patch, field) or []]
    # Validated again as a whole: the stored part too, so a row edited past the checks is named, not kept.
    try:
        return CameraConfig.model_validate(config)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(
            f"camera {camera.id!r}: the configuration would be invalid: {problems}",
            hint="send the fields named with valid values",
        ) from None


def versions(session: Session, camera_id: str) -> Sequence[CameraConfigVersion]:
    """Returns a camera's configuration versions, newest first (kept after the camera is removed)."""
    rows = session.scalars(
        select(CameraConfigVersion)
        .where(CameraConfigVersion.camera_id == camera_id)
        .order_by(CameraConfigVersion.version.desc())
    ).all()
    if not rows:
        get(session, camera_id)  # NotFound names a camera never registered
    return rows


def get_version(session: Session, camera_id: str, version: int) -> CameraConfigVersion:
    """Returns one configuration version of a camera, or raises NotFound."""
    row = session.scalars(
        select(CameraConfigVersion).where(
            CameraConfigVersion.camera_id == camera_id, CameraConfigVersion.version == version
        )
    ).first()
    if row is None:
        newest = session.scalar(
            select(func.max(CameraConfigVersion.version)).where(CameraConfigVersion.camera_id == camera_id)
        )
        raise NotFound(
            f"camera {camera_id!r} has no configuration version {version}",
            hint=f"its versions run from 1 to {newest}" if newest else "no such camera was ever registered",
        )
    return row


def version_at(session: Session, camera_id: str, at: datetime) -> CameraConfigVersion | None:
    """Returns the configuration version of a camera in force at a moment (None: not configured yet)."""
    return session.scalars(
        select(CameraConfigVersion)
        .where(CameraConfigVersion.camera_id == camera_id, CameraConfigVersion.created_at <= at)
        .order_by(CameraConfigVersion.version.desc())
        .limit(1)
    ).first()


def delete(session: Session, camera_id: str, *, actor: str) -> None:
    """Removes a camera from the registry (and who was moving it)."""
    session.delete(get(session, camera_id))
    session.execute(sql_delete(PtzLease).where(PtzLease.camera_id == camera_id))
    audit.record(session, actor=actor, action="camera.delete", target=camera_id)


def list_cameras(
    session: Session,
    *,
    kind: str | None = None,
    district: str | None = None,
    health: str | None = None,
    limit: int = 5000,
    offset: int = 0,
    with_credentials: bool = False,
) -> Sequence[Camera]:
    """Returns cameras, optionally filtered by type, district and health state.

    Their passwords are loaded (and decrypted) only `with_credentials`, for opening the streams.
    """
    query = select(Camera).order_by(Camera.id).limit(limit).offset(offset)
    if with_credentials:
        query = query.options(undefer(Camera.password))
    if kind:
        query = query.where(Camera.kind == kind)
    if district:
        query = query.where(Camera.district == district)
    if health:
        query = query.where(Camera.health_state == health)
    return session.scalars(query).all()


def count_by_health(session: Session) -> dict[str, int]:
    """Returns how many cameras are in each health state."""
    rows = session.execute(select(Camera.health_state, func.count()).group_by(Camera.health_state))
    return {state: n for state, n in rows}


def set_health(session: Session, camera_id: str, *, state: str, detail: str, since: datetime | None) -> bool:
    """Records a camera's health state; returns whether it changed."""
    camera = session.get(Camera, camera_id)
    if camera is None:
        return False
    if since is not None and camera.health_since is not None and since < camera.health_since:
        return False  # a late report must not overwrite a newer state
    if camera.health_state == state and camera.health_detail == detail:
        return False
    camera.health_state, camera.health_detail, camera.health_since = state, detail, since or utcnow()
    return True


_CSV_LIST_FIELDS = {"zones", "lines", "analysis"}


def parse_import(
    content: Source, *, fmt: str, limits: ImportLimits = ImportLimits()
) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """Parses CSV or YAML camera rows from a stream; returns (line, row) pairs and per-line errors."""
    rows: list[tuple[int, dict[str, Any]]] = []
    if fmt == "yaml":
        errors = []
        for index, item in yaml_list(content, key="cameras", limits=limits):
            if isinstance(item, dict):
                rows.append((index, item))
            else:
                errors.append(f"camera {index}: not a mapping of fields")
        return rows, errors
    if fmt != "csv":
        raise InvalidInput(f"unknown import format {fmt!r}", hint="use csv or yaml")
    reader = CsvRows(
        content,
        limits=limits,
        required=("id",),
        lower_header=False,
        hint="start with: id,name,kind,district,latitude,longitude,stream_url",
    )
    for line, row in reader:
        clean: dict[str, Any] = {k: v for k, v in row.items() if v}
        analysis = {k.removeprefix("analysis."): v for k, v in clean.items() if k.startswith("analysis.")}
        clean = {k: v for k, v in clean.items() if not k.startswith("analysis.")}
        try:
            for name in sorted(_CSV_LIST_FIELDS & clean.keys()):
                clean[name] = _json_cell(name, clean[name])
            for name, value in analysis.items():
                if value.startswith("["):  # a box or a point: [x, y, w, h]
                    analysis[name] = _json_cell(f"analysis.{name}", value)
        except ValueError as exc:
            reader.errors.append(f"line {line}: {exc}")
            continue
        if analysis:
            if not isinstance(clean.get("analysis", {}), dict):
                reader.errors.append(f"line {line}: the analysis cell must be a JSON object")
                continue
            clean["analysis"] = {**clean.get("analysis", {}), **analysis}
        if "enabled" in clean:
            clean["enabled"] = str(clean["enabled"]).strip().lower() in {"1", "true", "yes", "y"}
        rows.append((line, clean))
    return rows, reader.errors


def _json_cell(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{name}: the cell is not valid JSON ({exc.msg} at character {exc.pos + 1})"
        ) from None


def import_cameras(
    session: Session,
    content: Source,
    *,
    fmt: str,
    actor: str,
    upsert: bool = False,
    limits: ImportLimits = ImportLimits(),
) -> ImportReport:
    """Imports many cameras at once; any bad row means nothing is written, with every error listed."""
    where = "line" if fmt == "csv" else "camera"
    parsed, errors = parse_import(content, fmt=fmt, limits=limits)
    valid: list[CameraIn] = []
    seen: dict[str, int] = {}
    for line, row in parsed:
        try:
            data = CameraIn.model_validate(row)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "row"
                errors.append(f"{where} {line}: {field}: {err['msg']}")
            continue
        if data.id in seen:
            errors.append(f"{where} {line}: camera id {data.id!r} repeats {where} {seen[data.id]}")
            continue
        seen[data.id] = line
        valid.append(data)
    existing = set(session.scalars(select(Camera.id).where(Camera.id.in_(list(seen))))) if seen else set()
    if existing and not upsert:
        for camera_id in sorted(existing):
            errors.append(
                f"{where} {seen[camera_id]}: camera {camera_id!r} is already registered (use --upsert)"
            )
    if errors:
        return ImportReport(errors=errors)
    report = ImportReport()
    last = _last_versions(session, list(seen))
    for data in valid:
        camera = session.get(Camera, data.id) if data.id in existing else None
        if camera is None:
            camera = Camera(id=data.id)
            session.add(camera)
            report.created += 1
        else:
            report.updated += 1
        _apply(camera, data)
        new = data.id not in existing
        _configure(
            session,
            camera,
            data.config,
            actor=actor,
            note=f"imported ({fmt})",
            new=new,
            last=last.get(data.id, 0),
        )
    audit.record(
        session,
        actor=actor,
        action="camera.import",
        detail={"created": report.created, "updated": report.updated, "format": fmt},
    )
    return report
