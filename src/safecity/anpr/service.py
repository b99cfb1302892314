"""ANPR in the centre: store every plate read, search plate histories, keep hot lists, catch cloned plates.

`process_reads` is what the bus consumer runs for each batch of `PlateRead`s: it stores the reads (one
multi-row insert), checks them against the hot lists, logs sensitive-area entries and exits, and looks
for cloned plates, returning the alerts raised so that the caller can announce them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Select, Table, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from safecity.alerts import service as alerts
from safecity.alerts.models import Alert
from safecity.anpr import areas
from safecity.anpr.hotlist import HotlistIndex, IndexCache, Match
from safecity.anpr.models import (
    AnprConfig,
    AnprConfigRow,
    AreaVisit,
    CameraSighting,
    HotlistEntry,
    HotlistEntryIn,
    HotlistEntryOut,
    HotlistEntryPatch,
    HotlistImportReport,
    HotlistMatchOut,
    HotlistRevision,
    PlateReadOut,
    PlateReadRow,
    PlateSeen,
    SearchQuery,
    SearchResult,
    checked_plate,
    normalise_plate,
)
from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.cameras.models import Camera
from safecity.core import memo
from safecity.core.clock import as_utc, utcnow
from safecity.core.db import get_or_raise, insert_many
from safecity.core.errors import Conflict, InvalidInput, NotFound
from safecity.core.events import PlateRead
from safecity.core.geo import distance_m
from safecity.core.ids import new_id
from safecity.core.importer import CsvRows, ImportLimits, Source
from safecity.evidence import service as evidence

LIST_PRIORITY = {"stolen": 1, "wanted": 1, "bolo": 2}
_index_cache = IndexCache()


# --- settings -------------------------------------------------------------------------------------


memo.watch(AnprConfigRow, "anpr.config")


def get_config(session: Session) -> AnprConfig:
    """Returns the installation's ANPR settings (defaults until someone changes them)."""
    return memo.remember(session, "anpr.config", lambda: _load_config(session)).model_copy()


def _load_config(session: Session) -> AnprConfig:
    row = session.get(AnprConfigRow, 1)
    return AnprConfig.model_validate(row.values) if row else AnprConfig()


def set_config(session: Session, config: AnprConfig, *, actor: str) -> AnprConfig:
    """Replaces the ANPR settings, recording who changed what."""
    row = session.get(AnprConfigRow, 1)
    before = row.values if row else {}
    values = config.model_dump()
    if row is None:
        session.add(AnprConfigRow(id=1, values=values, updated_by=actor, updated_at=utcnow()))
    else:
        row.values, row.updated_by, row.updated_at = values, actor, utcnow()
    changed = {k: v for k, v in values.items() if before.get(k) != v}
    audit.record(session, actor=actor, action="anpr.config", detail=changed)
    return config


# --- plate reads ----------------------------------------------------------------------------------


def _clean_plate(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())[:16]


def store_reads(session: Session, events: Sequence[PlateRead]) -> list[PlateReadRow]:
    """Stores plate reads with their cameras' positions, in one statement per few hundred reads.

    Returns the rows stored, in the order given (not attached to the session); a read without a
    plate, or stored before under the same event key, is left out.
    """
    values: list[dict[str, Any]] = []
    now = utcnow()
    for event in events:
        plate = _clean_plate(event.plate)
        if not plate:
            continue
        values.append(
            {
                "id": new_id(),
                "event_key": event.key,
                "plate": plate,
                "region": event.region[:8],
                "confidence": event.confidence,
                "camera_id": event.camera_id,
                "latitude": None,
                "longitude": None,
                "at": as_utc(event.at),
                "crop_ref": event.crop_ref,
                "frame_ref": event.frame_ref,
                "box": event.box,
                "direction": event.direction,
                "track_id": event.track_id,
                "speed_kmh": event.speed_kmh,
                "vehicle_class": event.vehicle_class,
                "stored_at": now,
            }
        )
    if not values:
        return []
    # The camera's position when it read the plate: evidence must not move if the camera later does.
    positions = cameras.positions(session, {v["camera_id"] for v in values if v["camera_id"]})
    for v in values:
        v["latitude"], v["longitude"] = positions.get(v["camera_id"], (None, None))
    table = PlateReadRow.__table__
    assert isinstance(table, Table)
    stored = set(insert_many(session, table, values, skip_conflicts_on=["event_key"], returning="event_key"))
    rows = [PlateReadRow(**v) for v in values if v["event_key"] in stored]
    _note_plates(session, rows)
    # Their crops and frames are plate reads' to show (/media asks who owns a picture).
    claims = [(row.id, ref, row.at) for row in rows for ref in (row.crop_ref, row.frame_ref)]
    evidence.own_many(session, "plate_read", claims)
    return rows


def store_read(session: Session, event: PlateRead) -> PlateReadRow | None:
    """Stores one plate read; returns None if stored before or if it has no plate."""
    rows = store_reads(session, [event])
    return rows[0] if rows else None


def _note_plates(session: Session, rows: Sequence[PlateReadRow]) -> None:
    """Adds the plates to the dictionary of plates seen, or counts more reads of them."""
    seen: dict[str, tuple[datetime, int]] = {}
    for row in rows:
        last, count = seen.get(row.plate, (row.at, 0))
        seen[row.plate] = (max(last, row.at), count + 1)
    if not seen:
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    # Sorted, so two processes upserting overlapping plates lock them in the same order (no deadlock).
    values = [{"plate": p, "last_at": at, "reads": n} for p, (at, n) in sorted(seen.items())]
    stmt = (pg_insert if postgres else sqlite_insert)(PlateSeen)
    # Both databases keep the newer time: PostgreSQL spells the two-argument maximum GREATEST.
    newest = (func.greatest if postgres else func.max)(PlateSeen.last_at, stmt.excluded.last_at)
    upsert = stmt.on_conflict_do_update(
        index_elements=[PlateSeen.plate],
        set_={"reads": PlateSeen.reads + stmt.excluded.reads, "last_at": newest},
    )
    session.execute(upsert, values)


MAX_DICTIONARY_PLATES = 2000
"""A partial search matching more plates than this scans the reads newest first instead (a common
fragment such as "1" matches reads on every page, so that scan stops early)."""


def _resolve_match(query: SearchQuery) -> str:
    if query.match != "auto":
        return query.match
    return "wildcard" if any(ch in query.plate for ch in "?*") else "exact"


def search_reads(session: Session, query: SearchQuery, *, actor: str) -> SearchResult:
    """Returns the reads matching an investigator's search, newest first; the search itself is audited."""
    match = _resolve_match(query)
    if not query.plate and not query.camera_id:
        raise InvalidInput(
            "say which plate or which camera to search", hint="give a plate, a pattern or a camera"
        )
    if query.since and query.until and query.since >= query.until:
        raise InvalidInput("the time range ends before it starts", hint="make 'since' earlier than 'until'")
    if match != "wildcard" and any(ch in query.plate for ch in "?*"):
        raise InvalidInput(
            f"? and * are wildcards, but match is {match!r}", hint="use match=wildcard or auto"
        )
    stmt = select(PlateReadRow)
    if query.plate:
        if match == "exact":
            stmt = stmt.where(PlateReadRow.plate == query.plate)
        elif match == "partial":
            stmt = stmt.where(PlateReadRow.plate.contains(query.plate, autoescape=True))
            stmt = _through_dictionary(session, stmt, PlateSeen.plate.contains(query.plate, autoescape=True))
        else:
            pattern = query.plate.replace("*", "%").replace("?", "_")
            stmt = stmt.where(PlateReadRow.plate.like(pattern))
            prefix = query.plate.split("*")[0].split("?")[0]
            if not prefix:
                stmt = _through_dictionary(session, stmt, PlateSeen.plate.like(pattern))
            else:
                # A literal prefix bounds the pattern to a range of the (plate, at) index on every database
                # (PostgreSQL under a non-C collation never uses an index for LIKE). Past Z or 9 the next
                # character is punctuation, which some collations ignore, so there only the floor is safe.
                stmt = stmt.where(PlateReadRow.plate >= prefix)
                if prefix[-1] not in "Z9":
                    stmt = stmt.where(PlateReadRow.plate < prefix[:-1] + chr(ord(prefix[-1]) + 1))
    if query.camera_id:
        stmt = stmt.where(PlateReadRow.camera_id == query.camera_id)
    if query.since:
        stmt = stmt.where(PlateReadRow.at >= query.since)
    if query.until:
        stmt = stmt.where(PlateReadRow.at < query.until)
    rows = list(session.scalars(stmt.order_by(PlateReadRow.at.desc()).limit(query.limit + 1)))
    truncated = len(rows) > query.limit
    rows = rows[: query.limit]
    audit.record(
        session,
        actor=actor,
        action="anpr.search",
        target=query.plate or f"camera:{query.camera_id}",
        detail={
            "plate": query.plate,
            "match": match,
            "camera_id": query.camera_id,
            "since": query.since,
            "until": query.until,
            "reason": query.reason,
            "results": len(rows),
        },
    )
    return SearchResult(
        plate=query.plate,
        match=match,
        truncated=truncated,
        reads=[PlateReadOut.model_validate(r) for r in rows],
        cameras=_sightings(session, rows),
    )


def _through_dictionary(session: Session, stmt: Select[Any], matches: ColumnElement[bool]) -> Select[Any]:
    """Narrows a search to the plates of the dictionary that match, so the reads' index does the rest."""
    plates = list(session.scalars(select(PlateSeen.plate).where(matches).limit(MAX_DICTIONARY_PLATES + 1)))
    if len(plates) > MAX_DICTIONARY_PLATES:
        return stmt
    return stmt.where(PlateReadRow.plate.in_(plates))


def _sightings(session: Session, rows: Sequence[PlateReadRow]) -> list[CameraSighting]:
    by_camera: dict[str | None, list[PlateReadRow]] = {}
    for row in rows:
        by_camera.setdefault(row.camera_id, []).append(row)
    sightings = []
    for camera_id, reads in by_camera.items():
        name = None
        if camera_id:
            try:
                name = cameras.get(session, camera_id).name
            except NotFound:
                name = None
        sightings.append(
            CameraSighting(
                camera_id=camera_id,
                name=name,
                latitude=reads[0].latitude,
                longitude=reads[0].longitude,
                reads=len(reads),
                first_at=min(r.at for r in reads),
                last_at=max(r.at for r in reads),
            )
        )
    return sorted(sightings, key=lambda s: s.first_at)


def get_read(session: Session, read_id: str, *, actor: str) -> PlateReadRow:
    """Returns one stored read (audited as a view of a vehicle's movements)."""
    row = get_or_raise(session, PlateReadRow, read_id, what="plate read")
    audit.record(session, actor=actor, action="anpr.view_read", target=read_id, detail={"plate": row.plate})
    return row


def count_reads(session: Session) -> int:
    """Returns how many plate reads are stored."""
    return session.scalar(select(func.count()).select_from(PlateReadRow)) or 0


def purge_reads(session: Session, *, older_than_days: int, actor: str = "system") -> int:
    """Deletes reads (and closed area visits) older than the retention period; returns the reads deleted."""
    if older_than_days < 1:
        raise InvalidInput(
            "retention must be at least one day", hint="set plate_read_retention_days to 1 or more"
        )
    cutoff = utcnow() - timedelta(days=older_than_days)
    # A read a legal hold, case or appeal names is evidence: it stays (row and pictures) until released.
    held = evidence.held_rows(session, "plate_read")
    expired = delete(PlateReadRow).where(PlateReadRow.at < cutoff)
    if held:
        expired = expired.where(PlateReadRow.id.not_in(sorted(held)))
    reads = session.execute(expired).rowcount  # type: ignore[attr-defined]
    # A plate whose newest read is past retention has no reads left (unless held): it leaves the
    # dictionary too.
    gone = delete(PlateSeen).where(PlateSeen.last_at < cutoff)
    if held:
        kept_plates = select(PlateReadRow.plate).where(PlateReadRow.id.in_(sorted(held)))
        gone = gone.where(PlateSeen.plate.not_in(kept_plates))
    session.execute(gone)
    evidence.forget(session, "plate_read", before=cutoff, keep=held)
    visits = session.execute(
        delete(AreaVisit).where(AreaVisit.exited_at.is_not(None), AreaVisit.last_seen_at < cutoff)
    ).rowcount  # type: ignore[attr-defined]
    if reads or visits:
        audit.record(
            session,
            actor=actor,
            action="anpr.purge",
            detail={
                "older_than_days": older_than_days,
                "cutoff": cutoff,
                "reads": reads,
                "visits": visits,
                "kept_under_hold": len(held),
            },
        )
    return int(reads or 0)


# --- hot lists ------------------------------------------------------------------------------------


def _bump_revision(session: Session) -> None:
    # A fresh random token (not a counter): a rolled-back change can never share a later one's token.
    row = session.get(HotlistRevision, 1, with_for_update=True)
    if row is None:
        session.add(HotlistRevision(id=1, token=new_id()))
    else:
        row.token = new_id()
    session.flush()


def _entry_detail(entry: HotlistEntry) -> dict[str, Any]:
    return HotlistEntryOut.model_validate(entry).model_dump(mode="json")


def add_hotlist_entry(
    session: Session,
    *,
    plate: str,
    list_name: str,
    reason: str,
    actor: str,
    vehicle: str = "",
    reference: str = "",
    expires_at: datetime | None = None,
) -> HotlistEntry:
    """Puts a vehicle on the stolen, wanted or BOLO list; the same plate twice on one list is a Conflict."""
    try:
        data = HotlistEntryIn.model_validate(
            {
                "plate": plate,
                "list_name": list_name,
                "reason": reason,
                "vehicle": vehicle,
                "reference": reference,
                "expires_at": expires_at,
            }
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"hot-list entry is not valid: {problems}", hint="fix the fields named") from None
    existing = session.scalar(
        select(HotlistEntry).where(HotlistEntry.plate == data.plate, HotlistEntry.list_name == data.list_name)
    )
    if existing is not None:
        raise Conflict(
            f"{data.plate} is already on the {data.list_name} list (entry {existing.id})",
            hint="edit that entry instead",
        )
    now = utcnow()
    entry = HotlistEntry(
        id=new_id(),
        plate=data.plate,
        list_name=data.list_name,
        reason=data.reason,
        vehicle=data.vehicle,
        reference=data.reference,
        expires_at=data.expires_at,
        added_by=actor,
        created_at=now,
        updated_by=actor,
        updated_at=now,
    )
    session.add(entry)
    _bump_revision(session)
    audit.record(
        session, actor=actor, action="anpr.hotlist_add", target=entry.plate, detail=_entry_detail(entry)
    )
    return entry


def get_hotlist_entry(session: Session, entry_id: str) -> HotlistEntry:
    """Returns a hot-list entry or raises NotFound."""
    return get_or_raise(session, HotlistEntry, entry_id, what="hot-list entry")


def update_hotlist_entry(
    session: Session, entry_id: str, patch: HotlistEntryPatch, *, actor: str
) -> HotlistEntry:
    """Changes a hot-list entry, recording who changed it and why."""
    entry = get_hotlist_entry(session, entry_id)
    changes = patch.model_dump(exclude_unset=True, exclude={"why"})
    new_list = changes.get("list_name")
    if new_list and new_list != entry.list_name:
        clash = session.scalar(
            select(HotlistEntry.id).where(
                HotlistEntry.plate == entry.plate, HotlistEntry.list_name == new_list
            )
        )
        if clash is not None:
            raise Conflict(
                f"{entry.plate} is already on the {new_list} list", hint="edit or remove that entry"
            )
    for name, value in changes.items():
        # A null vehicle or reference empties it; the columns hold "" for "none".
        setattr(entry, name, "" if value is None and name in {"vehicle", "reference"} else value)
    entry.updated_by, entry.updated_at = actor, utcnow()
    _bump_revision(session)
    audit.record(
        session,
        actor=actor,
        action="anpr.hotlist_update",
        target=entry.plate,
        detail={"entry": entry.id, "why": patch.why, "changes": changes},
    )
    return entry


def remove_hotlist_entry(session: Session, entry_id: str, *, actor: str, why: str) -> None:
    """Takes a vehicle off a hot list; the audit log keeps the entry and the reason."""
    if len(why.strip()) < 3:
        raise InvalidInput("say why the entry is removed", hint="e.g. 'vehicle recovered, FIR 123/24 closed'")
    entry = get_hotlist_entry(session, entry_id)
    detail = {**_entry_detail(entry), "why": why}
    session.delete(entry)
    _bump_revision(session)
    audit.record(session, actor=actor, action="anpr.hotlist_remove", target=entry.plate, detail=detail)


def list_hotlist(
    session: Session,
    *,
    list_name: str | None = None,
    plate: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> Sequence[HotlistEntry]:
    """Returns hot-list entries, newest first, optionally one list's or those whose plate contains `plate`."""
    stmt = (
        select(HotlistEntry)
        .order_by(HotlistEntry.created_at.desc(), HotlistEntry.id)
        .limit(limit)
        .offset(offset)
    )
    if list_name:
        stmt = stmt.where(HotlistEntry.list_name == list_name)
    if plate:
        stmt = stmt.where(HotlistEntry.plate.contains(normalise_plate(plate), autoescape=True))
    return session.scalars(stmt).all()


def count_hotlist(session: Session) -> dict[str, int]:
    """Returns how many entries each hot list holds."""
    rows = session.execute(select(HotlistEntry.list_name, func.count()).group_by(HotlistEntry.list_name))
    return {name: n for name, n in rows}


_CSV_COLUMNS = ("plate", "list", "reason", "vehicle", "reference", "expires_at")


def import_hotlist_csv(
    session: Session,
    content: Source,
    *,
    actor: str,
    upsert: bool = False,
    limits: ImportLimits = ImportLimits(),
) -> HotlistImportReport:
    """Imports CSV lines (plate,list,reason[,vehicle,reference,expires_at]); one bad line writes nothing."""
    rows = CsvRows(content, limits=limits, hint="start with: " + ",".join(_CSV_COLUMNS))
    header = set(rows.header)
    if "plate" not in header or not {"list", "list_name"} & header or "reason" not in header:
        raise InvalidInput(
            "the CSV has no header row with plate, list and reason columns",
            hint="start with: " + ",".join(_CSV_COLUMNS),
        )
    unknown = sorted(header - {*_CSV_COLUMNS, "list_name", ""})
    if unknown:
        raise InvalidInput(
            f"line 1: unknown column(s) {', '.join(unknown)}", hint="use: " + ",".join(_CSV_COLUMNS)
        )
    errors = rows.errors
    valid: list[tuple[int, HotlistEntryIn]] = []
    seen: dict[tuple[str, str], int] = {}
    for line, values in rows:
        values["list_name"] = values.pop("list", "") or values.get("list_name", "")
        fields = {
            k: v for k, v in values.items() if k in {"plate", "list_name", "reason", "vehicle", "reference"}
        }
        if values.get("expires_at"):
            fields["expires_at"] = values["expires_at"]
        try:
            data = HotlistEntryIn.model_validate(fields)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "row"
                errors.append(f"line {line}: {where}: {err['msg']}")
            continue
        pair: tuple[str, str] = (data.plate, data.list_name)
        if pair in seen:
            errors.append(f"line {line}: {data.plate} on {data.list_name} repeats line {seen[pair]}")
            continue
        seen[pair] = line
        valid.append((line, data))
    if not valid and not errors:
        errors.append("the file holds no entries")
    existing: dict[tuple[str, str], HotlistEntry] = {}
    plates = sorted({p for p, _ in seen})
    for start in range(0, len(plates), 500):
        chunk = plates[start : start + 500]
        for entry in session.scalars(select(HotlistEntry).where(HotlistEntry.plate.in_(chunk))):
            existing[(entry.plate, entry.list_name)] = entry
    if not upsert:
        for pair in sorted(existing.keys() & seen.keys(), key=lambda p: seen[p]):
            errors.append(
                f"line {seen[pair]}: {pair[0]} is already on the {pair[1]} list (import with upsert)"
            )
    if errors:
        return HotlistImportReport(errors=errors)
    report = HotlistImportReport()
    now = utcnow()
    for _line, data in valid:
        current = existing.get((data.plate, data.list_name))
        if current is None:
            session.add(
                HotlistEntry(
                    id=new_id(),
                    added_by=actor,
                    created_at=now,
                    updated_by=actor,
                    updated_at=now,
                    **data.model_dump(),
                )
            )
            report.created += 1
        else:
            current.reason, current.vehicle, current.reference = data.reason, data.vehicle, data.reference
            current.expires_at, current.updated_by, current.updated_at = data.expires_at, actor, now
            report.updated += 1
    _bump_revision(session)
    audit.record(
        session,
        actor=actor,
        action="anpr.hotlist_import",
        detail={"created": report.created, "updated": report.updated},
    )
    return report


memo.watch(HotlistRevision, "anpr.hotlist")


def _hotlist_token(session: Session) -> str:
    revision = session.get(HotlistRevision, 1)
    return revision.token if revision else "empty"


def hotlist_index(session: Session) -> HotlistIndex:
    """Returns the match index of the current hot list, rebuilt only when the list has changed."""
    bind = session.get_bind()
    database = bind.engine.url.render_as_string(hide_password=True)
    # Read the token before the entries: a change landing in between only causes one extra rebuild.
    token = memo.remember(session, "anpr.hotlist", lambda: _hotlist_token(session))
    index = _index_cache.get(database, token)
    if index is None:
        index = HotlistIndex(session.execute(select(HotlistEntry.id, HotlistEntry.plate)).tuples())
        _index_cache.put(database, token, index)
    return index


def match_hotlist(
    session: Session, plate: str, *, config: AnprConfig | None = None, at: datetime | None = None
) -> list[HotlistMatchOut]:
    """Returns the live hot-list entries a plate matches: exact first, then look-alikes, then one-edit."""
    return _matches(session, hotlist_index(session), plate, config or get_config(session), at or utcnow())


def _matches(
    session: Session, index: HotlistIndex, plate: str, config: AnprConfig, moment: datetime
) -> list[HotlistMatchOut]:
    matches: list[Match] = index.lookup(
        normalise_plate(plate), max_confusions=config.max_confusions, edit_distance=config.edit_distance
    )
    out: list[HotlistMatchOut] = []
    for match in matches:
        for entry_id in match.entry_ids:
            entry = session.get(HotlistEntry, entry_id)
            if entry is None or (entry.expires_at is not None and entry.expires_at <= moment):
                continue
            out.append(
                HotlistMatchOut(
                    entry=HotlistEntryOut.model_validate(entry), kind=match.kind, distance=match.distance
                )
            )
    kinds = {"exact": 0, "confusion": 1, "edit": 2}
    return sorted(out, key=lambda m: (kinds[m.kind], m.distance, LIST_PRIORITY[m.entry.list_name]))


def check_plate(session: Session, plate: str, *, actor: str) -> list[HotlistMatchOut]:
    """Returns the hot-list entries a plate matches, for an officer's manual check (audited)."""
    try:
        clean = checked_plate(plate)
    except ValueError as exc:
        raise InvalidInput(str(exc), hint="type the plate as printed, e.g. LEA-4521") from None
    matches = match_hotlist(session, clean)
    audit.record(
        session, actor=actor, action="anpr.hotlist_check", target=clean, detail={"matches": len(matches)}
    )
    return matches


# --- cloned plates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CloneFinding:
    """Another read of the same plate too far away for the time between: one of them wears a cloned plate."""

    other: PlateReadRow
    distance_m: float
    seconds: float
    speed_kmh: float | None  # None when both reads carry the same moment


def find_clone(session: Session, read: PlateReadRow, *, config: AnprConfig) -> CloneFinding | None:
    """Returns the read of the same plate that implies the most impossible journey, if any does."""
    return find_clones(session, [read], config=config).get(read.id)


def find_clones(
    session: Session, reads: Sequence[PlateReadRow], *, config: AnprConfig
) -> dict[str, CloneFinding]:
    """Returns, per read id, the other read of its plate implying the most impossible journey.

    One query for the whole batch. A read is compared with reads stored before it; within a batch,
    with the reads given before it, as if the batch had been handled one read at a time.
    """
    eligible = [
        r
        for r in reads
        if r.latitude is not None and r.longitude is not None and r.confidence >= config.clone_min_confidence
    ]
    if not eligible:
        return {}
    window = timedelta(hours=config.clone_window_hours)
    order = {r.id: i for i, r in enumerate(reads)}
    by_plate: dict[str, list[Any]] = {}
    plates = sorted({r.plate for r in eligible})
    earliest, latest = min(r.at for r in eligible) - window, max(r.at for r in eligible) + window
    for start in range(0, len(plates), 500):
        rows = session.execute(
            select(
                PlateReadRow.id,
                PlateReadRow.plate,
                PlateReadRow.camera_id,
                PlateReadRow.latitude,
                PlateReadRow.longitude,
                PlateReadRow.at,
            ).where(
                PlateReadRow.plate.in_(plates[start : start + 500]),
                PlateReadRow.at >= earliest,
                PlateReadRow.at <= latest,
                PlateReadRow.confidence >= config.clone_min_confidence,
                PlateReadRow.latitude.is_not(None),
            )
        )
        for row in rows:
            by_plate.setdefault(row.plate, []).append(row)
    found: dict[str, tuple[str, float, float, float]] = {}
    for read in eligible:
        assert read.latitude is not None and read.longitude is not None
        worst: tuple[str, float, float, float] | None = None
        for other in by_plate.get(read.plate, ()):
            if other.id == read.id or order.get(other.id, -1) > order[read.id]:
                continue
            if other.camera_id is not None and other.camera_id == read.camera_id:
                continue
            other_at = as_utc(other.at)
            if abs(other_at - read.at) > window:
                continue
            metres = distance_m(read.latitude, read.longitude, other.latitude, other.longitude)
            if metres < config.clone_min_distance_m:
                continue
            seconds = abs((read.at - other_at).total_seconds())
            speed = metres / 1000 / (seconds / 3600) if seconds > 0 else math.inf
            if speed <= config.clone_max_speed_kmh:
                continue
            if worst is None or speed > worst[3]:
                worst = (other.id, metres, seconds, speed)
        if worst is not None:
            found[read.id] = worst
    findings = {}
    for read_id, (other_id, metres, seconds, speed) in found.items():
        other_row = session.get(PlateReadRow, other_id)
        if other_row is None:  # a read of this very batch, not yet in the session's identity map
            other_row = next(r for r in reads if r.id == other_id)
        findings[read_id] = CloneFinding(other_row, metres, seconds, None if math.isinf(speed) else speed)
    return findings


def _read_evidence(read: PlateReadRow) -> dict[str, Any]:
    return {
        "read_id": read.id,
        "camera_id": read.camera_id,
        "at": read.at.isoformat(),
        "confidence": read.confidence,
        "crop_ref": read.crop_ref,
        "frame_ref": read.frame_ref,
        "lat": read.latitude,
        "lon": read.longitude,
    }


# --- the pipeline of one read ---------------------------------------------------------------------


@dataclass
class ReadOutcome:
    """What one plate read did: the stored row, the alerts it raised or folded into, its hot-list hits."""

    read: PlateReadRow | None
    alerts: list[tuple[Alert, bool]] = field(default_factory=list)
    hotlist_matches: list[HotlistMatchOut] = field(default_factory=list)


def _place_name(session: Session, read: PlateReadRow) -> str:
    """Where a read was taken, as people say it: the camera's name and district, not its id."""
    camera = session.get(Camera, read.camera_id) if read.camera_id else None
    if camera is None:
        return f"camera {read.camera_id}" if read.camera_id else "an unknown camera"
    return f"{camera.name}, {camera.district}"


def _raise_hotlist_alert(
    session: Session, read: PlateReadRow, matches: list[HotlistMatchOut], config: AnprConfig
) -> tuple[Alert, bool]:
    best = matches[0]
    entry = best.entry
    how = "" if best.kind == "exact" else f" (read as {read.plate}, {best.kind} match)"
    vehicle = f" ({entry.vehicle})" if entry.vehicle else ""
    title = (
        f"{entry.list_name.capitalize()} vehicle {entry.plate}{vehicle}{how} at {_place_name(session, read)}"
    )
    return alerts.raise_alert(
        session,
        kind="hotlist",
        priority=LIST_PRIORITY[entry.list_name],
        title=title[:300],
        source_key=f"hotlist:{read.event_key}",
        dedup_key=f"hotlist:{entry.plate}:{read.camera_id}",
        camera_id=read.camera_id,
        evidence={
            "crop_ref": read.crop_ref,
            "frame_ref": read.frame_ref,
            "plate": read.plate,
            "entry": entry.model_dump(mode="json"),
            "lat": read.latitude,
            "lon": read.longitude,
        },
        detail={
            "read_id": read.id,
            "match": best.kind,
            "distance": best.distance,
            "confidence": read.confidence,
            "other_entries": [m.entry.model_dump(mode="json") for m in matches[1:]],
        },
        dedup_window=timedelta(minutes=config.hotlist_dedup_minutes),
    )


def _raise_clone_alert(
    session: Session, read: PlateReadRow, finding: CloneFinding, config: AnprConfig
) -> tuple[Alert, bool]:
    km = finding.distance_m / 1000
    minutes = finding.seconds / 60
    speed = "at the same moment" if finding.speed_kmh is None else f"{finding.speed_kmh:.0f} km/h"
    title = f"Cloned plate? {read.plate} read {km:.1f} km apart within {minutes:.0f} min ({speed})"
    first, second = sorted((read, finding.other), key=lambda r: r.at)
    return alerts.raise_alert(
        session,
        kind="cloned_plate",
        priority=2,
        title=title[:300],
        source_key=f"cloned:{read.event_key}",
        dedup_key=f"cloned:{read.plate}",
        camera_id=read.camera_id,
        evidence={
            "crop_ref": read.crop_ref,
            "frame_ref": read.frame_ref,
            "plate": read.plate,
            "lat": read.latitude,
            "lon": read.longitude,
            "reads": [_read_evidence(first), _read_evidence(second)],
        },
        detail={
            "distance_m": round(finding.distance_m),
            "seconds": finding.seconds,
            "speed_kmh": None if finding.speed_kmh is None else round(finding.speed_kmh, 1),
            "max_speed_kmh": config.clone_max_speed_kmh,
        },
        dedup_window=timedelta(hours=config.clone_window_hours),
    )


def process_read(session: Session, event: PlateRead) -> ReadOutcome:
    """Stores a read, checks the hot lists, logs sensitive-area visits and looks for a cloned plate."""
    outcomes = process_reads(session, [event])
    return outcomes[0] if outcomes else ReadOutcome(read=None)


def process_reads(session: Session, events: Sequence[PlateRead]) -> list[ReadOutcome]:
    """Does for a batch of reads what `process_read` does for one, with a few statements per batch.

    Returns an outcome for each read stored (reads without a plate or stored before are left out).
    """
    reads = store_reads(session, events)
    if not reads:
        return []
    config = get_config(session)
    index = hotlist_index(session)
    area_list = areas.list_areas(session)
    area_cameras = {c for a in area_list for c in (*a.camera_ids, *a.exit_camera_ids)}
    clones = find_clones(session, reads, config=config)
    outcomes = []
    for read in reads:
        outcome = ReadOutcome(read=read)
        matches = _matches(session, index, read.plate, config, read.at)
        if matches and read.confidence >= config.hotlist_min_confidence:
            outcome.hotlist_matches = matches
            outcome.alerts.append(_raise_hotlist_alert(session, read, matches, config))
        if read.camera_id in area_cameras:
            lists = sorted(
                {m.entry.list_name for m in matches if m.kind == "exact"}
                or {m.entry.list_name for m in matches}
            )
            outcome.alerts.extend(areas.log_read(session, read, lists=lists, areas=area_list))
        finding = clones.get(read.id)
        if finding is not None:
            outcome.alerts.append(_raise_clone_alert(session, read, finding, config))
        outcomes.append(outcome)
    return outcomes
