"""Enforcement: violation candidates become de-duplicated violations with evidence, reviewed before issue.

Also the configuration enforcement needs: the policy, speed sections and the signal controllers' phase
feed. Calibrations (`calibrations/`) and the court-readiness gate (`readiness/`) are sub-domains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, select, text, update
from sqlalchemy.orm import Session

from safecity.anpr.hotlist import class_key
from safecity.audit import service as audit
from safecity.core import memo
from safecity.core.clock import utcnow
from safecity.core.db import get_or_raise
from safecity.core.errors import Conflict, InvalidInput
from safecity.core.events import PlateRead, ViolationCandidate
from safecity.core.ids import new_id
from safecity.core.media import MediaStore
from safecity.enforcement.models import (
    OFFENCES,
    REVIEW_ONLY_OFFENCES,
    VIOLATION_STATES,
    EnforcementPolicy,
    EnforcementPolicySetting,
    PhaseIn,
    ReviewIn,
    SectionSighting,
    SignalPhaseChange,
    SpeedLimit,
    SpeedSection,
    SpeedSectionIn,
    Violation,
    ViolationApproved,
)
from safecity.enforcement.readiness import service as readiness
from safecity.evidence import service as media_owners

SPEED_OFFENCES = ("speeding", "section_speeding")

# --- policy ----------------------------------------------------------------------------------------


memo.watch(EnforcementPolicySetting, "enforcement.policy")


def get_policy(session: Session) -> EnforcementPolicy:
    """Returns the enforcement policy in force (the defaults until someone changes it)."""
    return memo.remember(session, "enforcement.policy", lambda: _load_policy(session)).model_copy()


def _load_policy(session: Session) -> EnforcementPolicy:
    row = session.get(EnforcementPolicySetting, 1)
    if row is None:
        return EnforcementPolicy()
    # A policy stored before helmet and seat belt became review-only keeps them out of auto-issue.
    offences = [o for o in row.data.get("auto_issue_offences", []) if o not in REVIEW_ONLY_OFFENCES]
    return EnforcementPolicy.model_validate({**row.data, "auto_issue_offences": offences})


def set_policy(session: Session, policy: EnforcementPolicy, *, actor: str) -> EnforcementPolicy:
    """Replaces the enforcement policy."""
    unknown = set(policy.auto_issue_offences) - set(OFFENCES)
    if unknown:
        raise InvalidInput(f"unknown offences {sorted(unknown)}", hint=f"use some of {', '.join(OFFENCES)}")
    row = session.get(EnforcementPolicySetting, 1)
    data = policy.model_dump(mode="json")
    if row is None:
        session.add(EnforcementPolicySetting(id=1, data=data, updated_by=actor))
    else:
        row.data, row.updated_by, row.updated_at = data, actor, utcnow()
    audit.record(session, actor=actor, action="enforcement.policy", detail=data)
    return policy


# --- speed sections ----------------------------------------------------------------------------------


def create_speed_section(session: Session, data: SpeedSectionIn, *, actor: str) -> SpeedSection:
    """Configures a speed section between two ANPR cameras; a duplicate id is a Conflict."""
    if session.get(SpeedSection, data.id) is not None:
        raise Conflict(
            f"speed section {data.id!r} already exists", hint="choose another id or delete it first"
        )
    section = SpeedSection(
        id=data.id,
        name=data.name,
        entry_camera_id=data.entry_camera_id,
        exit_camera_id=data.exit_camera_id,
        distance_m=data.distance_m,
        limits=data.limit.model_dump(mode="json"),
        enabled=data.enabled,
    )
    session.add(section)
    session.flush()
    audit.record(
        session, actor=actor, action="enforcement.section_create", target=data.id, detail=data.model_dump()
    )
    return section


def list_speed_sections(session: Session) -> Sequence[SpeedSection]:
    """Returns every speed section."""
    return session.scalars(select(SpeedSection).order_by(SpeedSection.id)).all()


def delete_speed_section(session: Session, section_id: str, *, actor: str) -> None:
    """Removes a speed section and its unpaired sightings."""
    session.delete(get_or_raise(session, SpeedSection, section_id, what="speed section"))
    session.execute(delete(SectionSighting).where(SectionSighting.section_id == section_id))
    audit.record(session, actor=actor, action="enforcement.section_delete", target=section_id)


def enabled_sections(session: Session) -> Sequence[SpeedSection]:
    """Returns the speed sections in force."""
    return session.scalars(select(SpeedSection).where(SpeedSection.enabled.is_(True))).all()


def section_read(
    session: Session, read: PlateRead, *, sections: Sequence[SpeedSection] | None = None
) -> list[ViolationCandidate]:
    """Files a plate read at a section camera and returns section-speeding candidates it completes.

    Entry and exit reads may arrive in either order (different workers); whichever comes second
    finds its counterpart. Each sighting pairs once; stale ones are purged after the longest
    plausible trip (the distance at 5 km/h). `sections` is `enabled_sections()` when the caller
    already has it (a batch of reads reads it once).
    """
    if read.camera_id is None or not read.plate:
        return []
    here = [
        section
        for section in (enabled_sections(session) if sections is None else sections)
        if read.camera_id in (section.entry_camera_id, section.exit_camera_id)
    ]
    candidates = []
    for section in here:
        role = "entry" if section.entry_camera_id == read.camera_id else "exit"
        max_trip = timedelta(seconds=section.distance_m / (5 / 3.6))
        session.execute(
            delete(SectionSighting).where(
                SectionSighting.section_id == section.id, SectionSighting.at < read.at - 2 * max_trip
            )
        )
        sighting = SectionSighting(
            section_id=section.id,
            role=role,
            plate=read.plate,
            at=read.at,
            event_key=read.key,
            camera_id=read.camera_id,
            confidence=read.confidence,
            crop_ref=read.crop_ref,
            frame_ref=read.frame_ref,
            vehicle_class=read.vehicle_class,
        )
        session.add(sighting)
        session.flush()
        order: Any
        if role == "entry":
            other_role, order = "exit", SectionSighting.at
            bounds = (SectionSighting.at > read.at, SectionSighting.at <= read.at + max_trip)
        else:
            other_role, order = "entry", SectionSighting.at.desc()
            bounds = (SectionSighting.at >= read.at - max_trip, SectionSighting.at < read.at)
        other = session.scalars(
            select(SectionSighting)
            .where(
                SectionSighting.section_id == section.id,
                SectionSighting.plate == read.plate,
                SectionSighting.role == other_role,
                SectionSighting.paired.is_(False),
                *bounds,
            )
            .order_by(order)
            .limit(1)
        ).first()
        if other is None:
            continue
        entry, exit_ = (sighting, other) if role == "entry" else (other, sighting)
        entry.paired = exit_.paired = True
        candidate = _section_candidate(section, entry, exit_)
        if candidate is not None:
            candidates.append(candidate)
    return candidates


def _section_candidate(
    section: SpeedSection, entry: SectionSighting, exit_: SectionSighting
) -> ViolationCandidate | None:
    seconds = (exit_.at - entry.at).total_seconds()
    if seconds <= 0:
        return None
    kmh = section.distance_m / seconds * 3.6
    limit = SpeedLimit.model_validate(section.limits)
    vehicle_class = exit_.vehicle_class or entry.vehicle_class
    if kmh <= limit.threshold_for(vehicle_class):
        return None
    return ViolationCandidate(
        key=f"section:{section.id}:{entry.event_key}:{exit_.event_key}",
        camera_id=exit_.camera_id,
        at=exit_.at,
        offence="section_speeding",
        plate=exit_.plate,
        confidence=min(entry.confidence, exit_.confidence),
        measured=round(kmh, 1),
        limit=limit.limit_for(vehicle_class),
        evidence_refs=[r for r in (entry.frame_ref, exit_.frame_ref, entry.crop_ref, exit_.crop_ref) if r],
        detail={
            "unit": "km/h",
            "vehicle_class": vehicle_class,
            "section": {
                "id": section.id,
                "name": section.name,
                "distance_m": section.distance_m,
                "entry_camera_id": section.entry_camera_id,
                "exit_camera_id": section.exit_camera_id,
                "entry_at": entry.at.isoformat(),
                "exit_at": exit_.at.isoformat(),
                "seconds": round(seconds, 3),
                "tolerance_kmh": limit.threshold_for(vehicle_class) - limit.limit_for(vehicle_class),
            },
            "frames_before": [entry.frame_ref] if entry.frame_ref else [],
            "frames_after": [exit_.frame_ref] if exit_.frame_ref else [],
            "plate_crop": exit_.crop_ref or entry.crop_ref,
        },
    )


def unregistered_candidate(read: PlateRead, *, registered: bool | None) -> ViolationCandidate | None:
    """Returns an `unregistered` candidate for a read with no plate, or a plate the registry lacks.

    `registered` is None when there is no registry to ask (nothing is then judged unregistered by
    its plate). A read too uncertain to trust is judged by the caller before asking.
    """
    if read.plate and registered is not False:
        return None
    reason = "no readable plate" if not read.plate else "plate not in the vehicle registry"
    return ViolationCandidate(
        key=f"unregistered:{read.key}",
        camera_id=read.camera_id,
        at=read.at,
        offence="unregistered",
        plate=read.plate or None,
        confidence=read.confidence if read.plate else 1.0,
        evidence_refs=[r for r in (read.frame_ref, read.crop_ref) if r],
        detail={
            "reason": reason,
            "track_id": read.track_id,
            "vehicle_class": read.vehicle_class,
            "frames_after": [read.frame_ref] if read.frame_ref else [],
            "plate_crop": read.crop_ref,
        },
    )


# --- signals ------------------------------------------------------------------------


def record_phase(session: Session, junction: str, data: PhaseIn) -> SignalPhaseChange:
    """Records a signal controller's phase change."""
    if not junction or len(junction) > 64:
        raise InvalidInput("the junction id must be 1 to 64 characters")
    row = SignalPhaseChange(junction=junction, phase=data.phase, at=data.at or utcnow(), source=data.source)
    session.add(row)
    session.flush()
    return row


def phase_at(session: Session, junction: str, at: datetime) -> SignalPhaseChange | None:
    """Returns the phase change in force at `junction` at `at`, or None when none is recorded."""
    return session.scalars(
        select(SignalPhaseChange)
        .where(SignalPhaseChange.junction == junction, SignalPhaseChange.at <= at)
        .order_by(SignalPhaseChange.at.desc(), SignalPhaseChange.id.desc())
        .limit(1)
    ).first()


# --- violations --------------------------------------------------------------------------------------


def record_candidate(
    session: Session,
    candidate: ViolationCandidate,
    *,
    policy: EnforcementPolicy | None = None,
    media: MediaStore | None = None,
) -> tuple[Violation, bool]:
    """Turns a candidate into a violation, or folds it into the same vehicle's offence at the same camera.

    Returns the violation and whether it is new. A new violation is approved at once when the
    policy's auto-issue confidence allows and it passes the court-readiness gate; one that fails the
    gate is held with the reason. `media` is the store its pictures are checked against (without
    it they count as unchecked, so the gate holds the violation). Call `approved_event` for an
    approved one after the commit.
    """
    return record_candidates(session, [candidate], policy=policy, media=media)[0]


def dedup_key_of(candidate: ViolationCandidate) -> str:
    """Returns what makes two candidates one offence: the offence, the camera and the vehicle."""
    track = candidate.detail.get("track_id")
    vehicle = candidate.plate or (f"track:{track}" if track is not None else None)
    return f"{candidate.offence}:{candidate.camera_id}:{vehicle or candidate.key}"


def record_candidates(
    session: Session,
    candidates: Sequence[ViolationCandidate],
    *,
    policy: EnforcementPolicy | None = None,
    media: MediaStore | None = None,
) -> list[tuple[Violation, bool]]:
    """Does `record_candidate` for a batch, in a few statements rather than a few per candidate.

    Returns, in the order given, each candidate's violation and whether it is new. Candidates of one
    offence in the batch fold into one violation as they would one at a time.
    """
    for candidate in candidates:
        if candidate.offence not in OFFENCES:
            raise InvalidInput(
                f"unknown offence {candidate.offence!r}", hint=f"use one of {', '.join(OFFENCES)}"
            )
    if not candidates:
        return []
    policy = policy or get_policy(session)
    keys = [dedup_key_of(c) for c in candidates]
    _lock_offences(session, keys)
    same = {
        v.source_key: v
        for v in session.scalars(
            select(Violation).where(Violation.source_key.in_({c.key for c in candidates}))
        )
    }
    window = timedelta(seconds=policy.dedup_window_s)
    earlier: dict[str, list[Violation]] = {}
    if policy.dedup_window_s > 0:
        for v in session.scalars(
            select(Violation)
            .where(
                Violation.dedup_key.in_(set(keys)),
                Violation.at >= min(c.at for c in candidates) - window,
                Violation.at <= max(c.at for c in candidates) + window,
            )
            .order_by(Violation.at)
        ):
            earlier.setdefault(v.dedup_key, []).append(v)
    results: list[tuple[Violation, bool]] = []
    created: list[Violation] = []
    for candidate, dedup_key in zip(candidates, keys, strict=True):
        if candidate.key in same:
            results.append((same[candidate.key], False))
            continue
        existing = next((v for v in earlier.get(dedup_key, ()) if abs(v.at - candidate.at) <= window), None)
        if existing is not None and policy.dedup_window_s > 0:
            existing.occurrences += 1
            existing.detail = {
                **existing.detail,
                "folded": [*existing.detail.get("folded", []), candidate.key][-20:],
            }
            results.append((existing, False))
            continue
        violation = _new_violation(session, candidate, dedup_key, policy, media)
        created.append(violation)
        same[candidate.key] = violation
        earlier.setdefault(dedup_key, []).append(violation)
        results.append((violation, True))
    if created:
        _group_misreads(session, created, window)
        _judge(session, created, policy)
        session.add_all(created)
        session.flush()
        # Their frames and crops are the violations' to show (and their challans', through them).
        media_owners.own_many(
            session,
            "violation",
            ((v.id, ref, v.created_at) for v in created for ref in media_owners.refs_in(v.evidence)),
        )
    return results


def _new_violation(
    session: Session,
    candidate: ViolationCandidate,
    dedup_key: str,
    policy: EnforcementPolicy,
    media: MediaStore | None,
) -> Violation:
    detail = dict(candidate.detail)
    evidence = _evidence(session, candidate, policy)
    if media is not None:
        verified = readiness.verify_images(media, readiness.image_refs(evidence))
        evidence = readiness.with_images(evidence, verified=verified, at=utcnow())
    return Violation(
        id=new_id(),
        offence=candidate.offence,
        plate=candidate.plate,
        camera_id=candidate.camera_id,
        at=candidate.at,
        status="pending",
        confidence=candidate.confidence,
        measured=candidate.measured,
        limit=candidate.limit,
        unit=str(detail.get("unit") or ("km/h" if candidate.offence in SPEED_OFFENCES else "")),
        vehicle_class=detail.get("vehicle_class"),
        evidence=evidence,
        detail=detail,
        source_key=candidate.key,
        dedup_key=dedup_key,
        occurrences=1,
        created_at=utcnow(),
    )


def plates_alike(a: str, b: str) -> bool:
    """Returns whether two different plates may be one plate read twice: the same but for OCR
    look-alikes (B/8, O/0, I/1…), or with one character dropped or added.

    A character changed into one that looks nothing like it (ABC123 against ABC124) is a different
    vehicle more often than a misread: at a busy camera, near-consecutive plates pass within a minute.
    """
    if a == b:
        return False
    x, y = class_key(a), class_key(b)
    if x == y:
        return True
    short, long = sorted((x, y), key=len)
    return len(long) - len(short) == 1 and any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _group_misreads(session: Session, created: Sequence[Violation], window: timedelta) -> None:
    """Groups a new violation with a pending one of the same vehicle read otherwise (a look-alike plate,
    or the same track at the same camera) rather than let it wait in the queue as a new offence."""
    cams = {v.camera_id for v in created if v.camera_id and v.plate}
    if not cams:
        return
    low = min(v.at for v in created) - window
    high = max(v.at for v in created) + window
    queue = list(
        session.scalars(
            select(Violation)
            .where(
                Violation.camera_id.in_(cams),
                Violation.status == "pending",
                Violation.at >= low,
                Violation.at <= high,
                Violation.plate.is_not(None),
            )
            .order_by(Violation.created_at)
        )
    )
    for violation in created:
        if not violation.plate or not violation.camera_id:
            continue
        track = violation.detail.get("track_id")
        head = next(
            (
                other
                for other in [*queue, *created]
                if other is not violation
                and other.plate
                and other.plate != violation.plate
                and other.camera_id == violation.camera_id
                and not (other.detail or {}).get("misread_of")
                and abs(other.at - violation.at) <= window
                and (
                    plates_alike(other.plate, violation.plate)
                    or (track is not None and (other.detail or {}).get("track_id") == track)
                )
                and other.created_at <= violation.created_at
            ),
            None,
        )
        if head is not None:
            violation.detail = {**violation.detail, "misread_of": head.id}
            violation.hold_reason = (
                f"possible misread of {head.plate} (violation {head.id}) at this camera: review them together"
            )


def _judge(session: Session, created: Sequence[Violation], policy: EnforcementPolicy) -> None:
    """Runs the court-readiness gate on new violations: those failing it are held with the reason,
    those passing it are approved at once where the policy's auto-issue confidence allows."""
    rows = [
        {
            "id": v.id,
            "offence": v.offence,
            "camera_id": v.camera_id,
            "at": v.at,
            "measured": v.measured,
            "evidence": v.evidence,
        }
        for v in created
    ]
    results = readiness.check(session, rows, policy=policy)
    for violation in created:
        checks = results[violation.id]
        violation.evidence = {**violation.evidence, "readiness": [c.as_dict() for c in checks]}
        failed = [f"{c.check}: {c.detail}" for c in checks if not c.ok]
        if failed:
            violation.hold_reason = "; ".join(
                filter(None, [violation.hold_reason, "not court-ready: " + "; ".join(failed)])
            )
        elif violation.hold_reason:
            pass  # held for an officer's eyes (a possible misread): never approved on arrival
        elif (
            policy.auto_issue_confidence is not None
            and violation.confidence >= policy.auto_issue_confidence
            and violation.offence in policy.auto_issue_offences
            and violation.offence not in REVIEW_ONLY_OFFENCES
            and violation.plate
        ):
            violation.status, violation.auto_approved, violation.reviewed_at = "approved", True, utcnow()
            violation.reviewed_by = "auto"


def readiness_holds(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Returns the reason (every failed check named) for each violation row that fails the court-readiness
    gate; each check is judged at the moment of the offence, whenever the gate runs."""
    return readiness.failures(session, rows, policy=get_policy(session))


def _lock_offences(session: Session, dedup_keys: Sequence[str]) -> None:
    """Holds offences' de-duplication keys to the end of the transaction: look-up and insert as one step.

    Two processes given candidates for the same offence at the same instant would otherwise both find
    nothing and both insert. PostgreSQL takes transaction-scoped advisory locks on stable hashes of
    the keys, in one order in every process (so two batches never deadlock), in one statement; the
    second caller waits, then finds the first's violation. SQLite already runs one writing transaction
    at a time (`BEGIN IMMEDIATE`).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted({_lock_id(f"violation:{key}") for key in dedup_keys})
    session.execute(
        text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:ids AS bigint[])) AS k"), {"ids": ids}
    )


def _lock_id(name: str) -> int:
    """Returns a signed 64-bit number naming `name`, the same in every process (unlike the salted `hash`)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _evidence(session: Session, candidate: ViolationCandidate, policy: EnforcementPolicy) -> dict[str, Any]:
    """Gathers what makes a violation stand up on appeal: frames, crop, measure, calibration, clock."""
    detail = candidate.detail
    refs = list(candidate.evidence_refs)
    before = list(detail.get("frames_before") or [])
    after = list(detail.get("frames_after") or [])
    crop = detail.get("plate_crop")
    if not before and not after and refs:
        frames = [r for r in refs if r != crop]
        half = max(1, len(frames) // 2)
        before, after = frames[:half], frames[half:]
    evidence: dict[str, Any] = {
        "frames_before": before,
        "frames_after": after,
        "plate_crop": crop,
        "refs": refs,
        "measured": candidate.measured,
        "limit": candidate.limit,
        "clock_source": detail.get("clock_source") or policy.clock_source,
    }
    if candidate.offence == "speeding":
        # The calibration the worker measured with, as the worker says; the gate checks it against the record.
        evidence["calibration"] = {
            **(detail.get("calibration") or {}),
            "id": detail.get("calibration_id"),
        }
    if candidate.offence == "section_speeding":
        evidence["section"] = detail.get("section")
    if candidate.offence == "red_light" and detail.get("junction"):
        recorded = phase_at(session, str(detail["junction"]), candidate.at)
        signal = {
            "junction": detail["junction"],
            "phase_seen": detail.get("phase"),
            "phase_source": detail.get("phase_source"),
            "red_since": detail.get("red_since"),
            "controller_phase": recorded.phase if recorded else None,
            "controller_since": recorded.at.isoformat() if recorded else None,
        }
        if recorded is not None and recorded.phase != "red":
            signal["disagreement"] = f"the signal controller reported {recorded.phase} at that moment"
        evidence["signal"] = signal
    return evidence


def approved_event(violation: Violation) -> ViolationApproved:
    """Returns the event announcing that a violation may become a challan."""
    return ViolationApproved(
        key=f"violation_approved:{violation.id}",
        camera_id=violation.camera_id,
        at=violation.at,
        violation_id=violation.id,
        offence=violation.offence,
        plate=violation.plate,
    )


def get_violation(session: Session, violation_id: str) -> Violation:
    """Returns a violation or raises NotFound."""
    return get_or_raise(session, Violation, violation_id, what="violation")


def list_violations(
    session: Session,
    *,
    status: str | None = None,
    offence: str | None = None,
    plate: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Violation]:
    """Returns violations, oldest first when pending (a queue), newest first otherwise."""
    if status and status not in VIOLATION_STATES:
        raise InvalidInput(f"unknown status {status!r}", hint=f"use one of {', '.join(VIOLATION_STATES)}")
    order = Violation.created_at if status == "pending" else Violation.created_at.desc()
    query = select(Violation).order_by(order).limit(limit).offset(offset)
    if status:
        query = query.where(Violation.status == status)
    if offence:
        query = query.where(Violation.offence == offence)
    if plate:
        query = query.where(Violation.plate == plate)
    return session.scalars(query).all()


def held_violations(session: Session, *, limit: int = 100) -> Sequence[Violation]:
    """Returns violations held back with a reason (pending with a hold, or unissuable), newest first."""
    query = (
        select(Violation)
        .where(Violation.hold_reason != "", Violation.status.in_(["pending", "unissuable"]))
        .order_by(Violation.created_at.desc())
        .limit(limit)
    )
    return session.scalars(query).all()


def count_by_status(session: Session) -> dict[str, int]:
    """Returns how many violations are in each status."""
    rows = session.execute(select(Violation.status, func.count()).group_by(Violation.status))
    return {status: n for status, n in rows}


def review(session: Session, violation_id: str, data: ReviewIn, *, actor: str) -> Violation:
    """Applies a traffic officer's approval or rejection to a pending violation."""
    violation = get_violation(session, violation_id)
    if violation.status != "pending":
        raise Conflict(f"violation is already {violation.status}", hint="reload the queue")
    if data.decision == "reject" and not data.reason.strip():
        raise InvalidInput("a rejection needs a reason", hint="say what is wrong with the evidence")
    plate = (data.plate or "").upper().replace(" ", "").replace("-", "") or None
    if data.decision == "approve" and not (plate or violation.plate):
        raise InvalidInput(
            "a violation without a plate cannot be approved", hint="enter the plate as you read it"
        )
    before = violation.plate
    result = session.execute(
        update(Violation)
        .where(Violation.id == violation_id, Violation.status == "pending")
        .values(
            status="approved" if data.decision == "approve" else "rejected",
            reviewed_by=actor,
            reviewed_at=utcnow(),
            review_reason=data.reason.strip(),
            plate=plate or violation.plate,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("another officer decided this violation first", hint="reload the queue")
    session.refresh(violation)
    audit.record(
        session,
        actor=actor,
        action=f"violation.{data.decision}",
        target=violation_id,
        detail={"reason": data.reason, "plate_before": before, "plate": violation.plate},
    )
    return violation


def approved_unissued(session: Session, *, limit: int = 10_000, claim: bool = False) -> list[dict[str, Any]]:
    """Returns approved violations not yet issued, oldest first, as plain rows (for batch issue).

    With `claim`, the rows are locked to the end of the transaction and rows another transaction
    holds are skipped, so issuers in several processes share the backlog instead of colliding.
    """
    query = (
        select(
            Violation.id,
            Violation.offence,
            Violation.plate,
            Violation.camera_id,
            Violation.at,
            Violation.vehicle_class,
            Violation.measured,
            Violation.limit,
            Violation.unit,
            Violation.evidence,
        )
        .where(Violation.status == "approved")
        .order_by(Violation.created_at)
        .limit(limit)
    )
    if claim:
        query = query.with_for_update(skip_locked=True)
    return [dict(r) for r in session.execute(query).mappings()]


def violation_rows(
    session: Session, violation_ids: Sequence[str], *, lock: bool = False
) -> list[dict[str, Any]]:
    """Returns the named approved violations as plain rows (those not approved are left out).

    With `lock`, the rows are locked to the end of the transaction, waiting for another transaction
    that holds them; a row it issued meanwhile is then no longer approved and is left out.
    """
    query = (
        select(
            Violation.id,
            Violation.offence,
            Violation.plate,
            Violation.camera_id,
            Violation.at,
            Violation.vehicle_class,
            Violation.measured,
            Violation.limit,
            Violation.unit,
            Violation.evidence,
        )
        .where(Violation.id.in_(list(violation_ids)), Violation.status == "approved")
        .order_by(Violation.id)
    )
    if lock:
        query = query.with_for_update()
    return [dict(r) for r in session.execute(query).mappings()]


def mark_issued(session: Session, issued: dict[str, str]) -> None:
    """Marks violations as issued, each with its challan id."""
    if not issued:
        return
    # Core, by primary key: the ORM's bulk update path cost more than the statement itself.
    table = _violations()
    session.execute(
        update(table)
        .where(table.c.id == bindparam("vid"))
        .values(status="issued", challan_id=bindparam("cid"), hold_reason=""),
        [{"vid": vid, "cid": cid} for vid, cid in issued.items()],
    )


def mark_unissuable(session: Session, reasons: dict[str, str]) -> None:
    """Marks approved violations that cannot become challans, each with the reason."""
    if not reasons:
        return
    table = _violations()
    session.execute(
        update(table)
        .where(table.c.id == bindparam("vid"))
        .values(status="unissuable", hold_reason=bindparam("why")),
        [{"vid": vid, "why": why} for vid, why in reasons.items()],
    )


def _violations() -> Table:
    table = Violation.__table__
    assert isinstance(table, Table)
    return table


REOPEN_SLICE = 5_000


def reopen_unissuable(session: Session, *, plates: Sequence[str]) -> int:
    """Puts violations held for a missing owner back to approved once their plates are registered."""
    reopened = 0
    unique = list(dict.fromkeys(plates))
    # In slices: a registry import of a city's vehicles names more plates than one statement may carry
    # (PostgreSQL takes at most 65,535 parameters).
    for start in range(0, len(unique), REOPEN_SLICE):
        result = session.execute(
            update(Violation)
            .where(
                Violation.status == "unissuable",
                Violation.plate.in_(unique[start : start + REOPEN_SLICE]),
                Violation.offence != "unregistered",
                # Held for the evidence, not the owner: a registration changes nothing for those.
                Violation.hold_reason.not_like("not court-ready%"),
            )
            .values(status="approved", hold_reason="")
            .execution_options(synchronize_session=False)
        )
        reopened += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return reopened
