"""The court-readiness gate: no challan unless its evidence would stand up, and each failure named.

A violation is ready when its evidence images are present and match their hashes; the camera's clock
(both cameras' for a speed section) was checked against NTP close enough before the offence and was
within tolerance; the road was surveyed compliant (lane markings, stop lines, signals) before it; a
speed was measured with the calibration in force then, certificate current; and a red light was
judged by a signal source whose clock drift is known, small, and smaller than the time into red.
The gate runs when a violation is recorded (a failure holds it from automatic approval) and again
before issue (a failure makes it unissuable with the reason), in a few queries per batch.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.core import memo
from safecity.core.clock import as_utc
from safecity.core.errors import InvalidInput
from safecity.core.media import MediaStore
from safecity.enforcement.calibrations import service as calibrations
from safecity.enforcement.calibrations.models import CameraCalibration
from safecity.enforcement.models import EnforcementPolicy
from safecity.enforcement.readiness.models import (
    CameraClockCheck,
    Check,
    ClockCheckIn,
    RoadSurvey,
    RoadSurveyIn,
    SignalSource,
    SignalSourceIn,
)

# --- what the gate reads: surveys, clock checks, signal sources ---------------------------------------


def record_survey(session: Session, camera_id: str, data: RoadSurveyIn, *, actor: str) -> RoadSurvey:
    """Records a survey of the road a camera watches."""
    cameras.get(session, camera_id)
    row = RoadSurvey(camera_id=camera_id, **data.model_dump(), recorded_by=actor)
    row.surveyed_at = as_utc(data.surveyed_at)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="enforcement.road_survey",
        target=camera_id,
        detail={"id": row.id, "compliant": row.compliant, "surveyed_by": data.surveyed_by},
    )
    return row


def record_clock_check(
    session: Session, camera_id: str, data: ClockCheckIn, *, actor: str
) -> CameraClockCheck:
    """Records how far a camera's clock was from the NTP reference."""
    cameras.get(session, camera_id)
    row = CameraClockCheck(
        camera_id=camera_id,
        offset_s=data.offset_s,
        uncertainty_s=data.uncertainty_s,
        measured_at=as_utc(data.measured_at),
        method=data.method,
        detail=data.detail,
        recorded_by=actor,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="enforcement.clock_check",
        target=camera_id,
        detail={
            "id": row.id,
            "offset_s": data.offset_s,
            "uncertainty_s": data.uncertainty_s,
            "method": data.method,
        },
    )
    return row


def record_signal_source(
    session: Session, junction: str, data: SignalSourceIn, *, actor: str
) -> SignalSource:
    """Records a junction's signal-phase source and its clock check."""
    if not junction or len(junction) > 64:
        raise InvalidInput("the junction id must be 1 to 64 characters")
    if data.kind == "lamp":
        cameras.get(session, data.device)  # a lamp is read by a registered camera
    row = SignalSource(junction=junction, **data.model_dump(), recorded_by=actor)
    row.checked_at = as_utc(data.checked_at)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="enforcement.signal_source",
        target=junction,
        detail={"id": row.id, "kind": data.kind, "device": data.device, "offset_ms": data.offset_ms},
    )
    return row


def surveys_of(session: Session, camera_id: str) -> Sequence[RoadSurvey]:
    """Returns a camera's road surveys, newest first."""
    query = select(RoadSurvey).where(RoadSurvey.camera_id == camera_id)
    query = query.order_by(RoadSurvey.surveyed_at.desc())
    return session.scalars(query).all()


def clock_checks_of(session: Session, camera_id: str, *, limit: int = 100) -> Sequence[CameraClockCheck]:
    """Returns a camera's latest clock checks, newest first."""
    query = (
        select(CameraClockCheck)
        .where(CameraClockCheck.camera_id == camera_id)
        .order_by(CameraClockCheck.measured_at.desc())
        .limit(limit)
    )
    return session.scalars(query).all()


def signal_sources_of(session: Session, junction: str) -> Sequence[SignalSource]:
    """Returns a junction's signal sources, newest check first."""
    query = select(SignalSource).where(SignalSource.junction == junction)
    query = query.order_by(SignalSource.checked_at.desc())
    return session.scalars(query).all()


# --- evidence images ----------------------------------------------------------------------------------


def image_refs(evidence: Mapping[str, Any]) -> list[str]:
    """Returns every picture a violation's evidence names (frames, refs, plate crop), once each."""
    refs = [*_frames(evidence), *(evidence.get("refs") or [])]
    if evidence.get("plate_crop"):
        refs.append(evidence["plate_crop"])
    return list(dict.fromkeys(r for r in refs if isinstance(r, str)))


def _frames(evidence: Mapping[str, Any]) -> list[str]:
    return [*(evidence.get("frames_before") or []), *(evidence.get("frames_after") or [])]


def verify_images(media: MediaStore, refs: Iterable[str]) -> dict[str, bool]:
    """Returns, for each ref, whether the store holds it and it still hashes to its name."""
    out: dict[str, bool] = {}
    for ref in refs:
        try:
            out[ref] = media.verify(ref)
        except InvalidInput:
            out[ref] = False  # not a ref the store could ever hold
    return out


def with_images(evidence: dict[str, Any], *, verified: Mapping[str, bool], at: datetime) -> dict[str, Any]:
    """Returns the evidence with the record of its images' check (which ref was present and intact)."""
    return {**evidence, "images": {"checked_at": at.isoformat(), "verified": dict(verified)}}


# --- the gate ---------------------------------------------------------------------------------------------


def check(
    session: Session, rows: Sequence[Mapping[str, Any]], *, policy: EnforcementPolicy
) -> dict[str, list[Check]]:
    """Runs the checks that apply to each violation row (id, offence, camera_id, at, measured, evidence)."""
    if not rows:
        return {}
    context = _Context.read(session, rows, policy)
    return {str(row["id"]): context.checks(row) for row in rows}


def failures(
    session: Session, rows: Sequence[Mapping[str, Any]], *, policy: EnforcementPolicy
) -> dict[str, str]:
    """Returns, for each row that fails the gate, one line naming every failed check."""
    out = {}
    for violation_id, checks in check(session, rows, policy=policy).items():
        failed = [f"{c.check}: {c.detail}" for c in checks if not c.ok]
        if failed:
            out[violation_id] = "not court-ready: " + "; ".join(failed)
    return out


def _cameras_of(row: Mapping[str, Any]) -> list[str]:
    section = (row.get("evidence") or {}).get("section") or {}
    cams = [row.get("camera_id"), section.get("entry_camera_id")]
    return list(dict.fromkeys(c for c in cams if c))


class _Context:
    """What the gate needs for a batch of rows, read in a few queries and indexed by camera and time."""

    def __init__(self, policy: EnforcementPolicy) -> None:
        self.policy = policy
        self.clock: dict[str, tuple[list[datetime], list[CameraClockCheck]]] = {}
        self.surveys: dict[str, tuple[list[datetime], list[RoadSurvey]]] = {}
        self.signals: dict[str, tuple[list[datetime], list[SignalSource]]] = {}
        self.calibrations: dict[int, Any] = {}
        self._memo: dict[tuple[Any, ...], Check] = {}
        self._images_ok: dict[int, Check] = {}
        self._max_clock_age = timedelta(hours=policy.clock_check_max_age_h)

    @classmethod
    def read(cls, session: Session, rows: Sequence[Mapping[str, Any]], policy: EnforcementPolicy) -> _Context:
        context = cls(policy)
        cams = sorted({c for row in rows for c in _cameras_of(row)})
        times = [as_utc(row["at"]) for row in rows]
        oldest, newest = min(times), max(times)
        max_age = timedelta(hours=policy.clock_check_max_age_h)
        checks = session.scalars(
            select(CameraClockCheck)
            .where(
                CameraClockCheck.camera_id.in_(cams),
                CameraClockCheck.measured_at >= oldest - max_age,
                CameraClockCheck.measured_at <= newest,
            )
            .order_by(CameraClockCheck.measured_at)
        )
        context.clock = _index(checks, lambda c: c.camera_id, lambda c: c.measured_at)
        if memo.active(session):  # city mode: every survey, kept until one changes
            context.surveys = memo.remember(session, "enforcement.surveys", lambda: _survey_index(session))
        else:
            surveys = session.scalars(
                select(RoadSurvey)
                .where(RoadSurvey.camera_id.in_(cams), RoadSurvey.surveyed_at <= newest)
                .order_by(RoadSurvey.surveyed_at)
            )
            context.surveys = _index(surveys, lambda s: s.camera_id, lambda s: s.surveyed_at)
        junctions = sorted(
            {
                str(j)
                for row in rows
                if (j := ((row.get("evidence") or {}).get("signal") or {}).get("junction"))
            }
        )
        if junctions:
            sources = session.scalars(
                select(SignalSource)
                .where(SignalSource.junction.in_(junctions), SignalSource.checked_at <= newest)
                .order_by(SignalSource.checked_at)
            )
            context.signals = _index(sources, lambda s: s.junction, lambda s: s.checked_at)
        ids = {
            int(cid)
            for row in rows
            if isinstance(cid := ((row.get("evidence") or {}).get("calibration") or {}).get("id"), int)
        }
        if memo.active(session):
            kept = memo.remember(session, "enforcement.calibrations", lambda: _all_calibrations(session))
            context.calibrations = {i: kept[i] for i in ids if i in kept}
        else:
            context.calibrations = calibrations.by_ids(session, ids)
        return context

    def checks(self, row: Mapping[str, Any]) -> list[Check]:
        evidence: Mapping[str, Any] = row.get("evidence") or {}
        at = as_utc(row["at"])
        cams = _cameras_of(row)
        out = [self._images(evidence)]
        out += [self._clock(camera, at) for camera in cams]
        out += [self._road(camera, at) for camera in cams]
        if row["offence"] == "speeding":
            out.append(self._calibration(evidence, at))
        if row["offence"] == "red_light":
            out.append(self._signal(evidence, row.get("measured"), at))
        return out

    def _images(self, evidence: Mapping[str, Any]) -> Check:
        before, after = evidence.get("frames_before") or (), evidence.get("frames_after") or ()
        refs = evidence.get("refs") or ()
        if not (before or after or refs):
            return Check(check="images", ok=False, detail="the evidence has no picture of the offence")
        record = evidence.get("images") or {}
        verified: Mapping[str, bool] = record.get("verified") or {}
        if not verified:
            return Check(
                check="images", ok=False, detail="the evidence images were never checked against the store"
            )
        crop = evidence.get("plate_crop")
        # Every named picture checked and intact (the common case) costs one pass and no list.
        if all(verified.get(ref) for ref in (*before, *after, *refs) if isinstance(ref, str)) and (
            not isinstance(crop, str) or verified.get(crop)
        ):
            count = len(verified)
            if count not in self._images_ok:
                self._images_ok[count] = Check(
                    check="images", ok=True, detail=f"{count} image(s) present and hashed"
                )
            return self._images_ok[count]
        bad = [ref for ref in image_refs(evidence) if not verified.get(ref)]
        return Check(
            check="images",
            ok=False,
            detail=f"{len(bad)} evidence image(s) missing or not matching their hash ({bad[0]})",
        )

    def _clock(self, camera: str, at: datetime) -> Check:
        measured_at, found = _latest_with_time(self.clock, camera, at)
        stale = found is None or at - measured_at > self._max_clock_age
        # Rows of one camera mostly share one clock check: judge each check once per batch (rows are
        # indexed once per batch, so the row object stands for its id).
        key = (camera, id(found), stale)
        if key not in self._memo:
            self._memo[key] = self._clock_check(camera, found, stale)
        return self._memo[key]

    def _clock_check(self, camera: str, found: CameraClockCheck | None, stale: bool) -> Check:
        if found is None or stale:
            return Check(
                check="camera_clock",
                ok=False,
                detail=f"camera {camera}'s clock was not checked in the "
                f"{self.policy.clock_check_max_age_h:g} h before the offence",
            )
        tolerance = self.policy.clock_tolerance_s
        when = as_utc(found.measured_at).isoformat(timespec="seconds")
        # The worst the clock can have been: the offset plus what the measurement could not rule out.
        margin = found.uncertainty_s or 0.0
        known = found.uncertainty_s is not None
        measured = f"{found.offset_s:+.3f} s" + (f" ± {margin:.3f} s" if known else "")
        if abs(found.offset_s) + margin > tolerance:
            return Check(
                check="camera_clock",
                ok=False,
                detail=f"camera {camera}'s clock was {measured} off NTP "
                f"({found.method}, {when}); tolerance {tolerance:g} s",
            )
        return Check(
            check="camera_clock",
            ok=True,
            detail=f"camera {camera} {measured} ({found.method}, {when})",
        )

    def _road(self, camera: str, at: datetime) -> Check:
        survey = _latest(self.surveys, camera, at)
        key = ("road", camera, id(survey))
        if key not in self._memo:
            self._memo[key] = self._road_check(camera, survey)
        return self._memo[key]

    def _road_check(self, camera: str, survey: RoadSurvey | None) -> Check:
        if survey is None:
            return Check(check="road", ok=False, detail=f"the road at camera {camera} was never surveyed")
        day = as_utc(survey.surveyed_at).date().isoformat()
        if not survey.compliant:
            lacking = [
                name
                for name, ok in (
                    ("lane markings", survey.lane_markings),
                    ("stop lines", survey.stop_lines),
                    ("signals", survey.signals),
                )
                if not ok
            ]
            return Check(
                check="road",
                ok=False,
                detail=f"the road at camera {camera} lacks {', '.join(lacking)} "
                f"(survey by {survey.surveyed_by}, {day})",
            )
        return Check(
            check="road",
            ok=True,
            detail=f"camera {camera}: compliant (survey by {survey.surveyed_by}, {day})",
        )

    def _calibration(self, evidence: Mapping[str, Any], at: datetime) -> Check:
        named = evidence.get("calibration") or {}
        calibration_id = named.get("id")
        if not isinstance(calibration_id, int):
            return Check(
                check="calibration", ok=False, detail="the speed was measured without a recorded calibration"
            )
        row = self.calibrations.get(calibration_id)
        points = named.get("image_points")
        in_force = False
        if row is not None and row.valid_from is not None and row.valid_until is not None:
            in_force = as_utc(row.valid_from) <= at < as_utc(row.valid_until)
        same = row is None or points is None or points == row.image_points  # 170 == 170.0 as JSON reads
        revoked = row is not None and row.revoked_from is not None and at >= as_utc(row.revoked_from)
        key = ("calibration", calibration_id, in_force, same, revoked)
        if key not in self._memo:
            self._memo[key] = self._calibration_check(calibration_id, row, in_force, same, revoked)
        return self._memo[key]

    def _calibration_check(
        self, calibration_id: int, row: Any, in_force: bool, same: bool, revoked: bool
    ) -> Check:
        if row is None:
            return Check(
                check="calibration", ok=False, detail=f"calibration {calibration_id} is not on record"
            )
        if revoked:
            return Check(
                check="calibration",
                ok=False,
                detail=f"calibration {calibration_id} was revoked from "
                f"{as_utc(row.revoked_from).isoformat()} by {row.revoked_by}: {row.revoked_reason}",
            )
        if not in_force:
            start = as_utc(row.valid_from).isoformat() if row.valid_from else "?"
            end = as_utc(row.valid_until).isoformat() if row.valid_until else "?"
            return Check(
                check="calibration",
                ok=False,
                detail=f"calibration {calibration_id} was not in force then (in force {start} to {end}; "
                f"certificate {row.certificate_number or 'none'} expires {row.certificate_expires})",
            )
        if not same:
            return Check(
                check="calibration",
                ok=False,
                detail="the speed was measured with points that differ from the record of "
                f"calibration {calibration_id}",
            )
        return Check(
            check="calibration",
            ok=True,
            detail=f"calibration {calibration_id}, certificate {row.certificate_number} "
            f"to {row.certificate_expires}",
        )

    def _signal(self, evidence: Mapping[str, Any], measured: float | None, at: datetime) -> Check:
        signal = evidence.get("signal") or {}
        if signal.get("disagreement"):
            return Check(check="signal", ok=False, detail=str(signal["disagreement"]))
        junction = signal.get("junction")
        if not junction:
            return Check(check="signal", ok=False, detail="the evidence does not name the junction's signal")
        source = _latest(self.signals, str(junction), at)
        max_age = timedelta(days=self.policy.signal_check_max_age_days)
        if source is None or at - as_utc(source.checked_at) > max_age:
            return Check(
                check="signal",
                ok=False,
                detail=f"junction {junction} has no signal source checked in the "
                f"{self.policy.signal_check_max_age_days:g} days before the offence",
            )
        drift_s = abs(source.offset_ms) / 1000
        if abs(source.offset_ms) > self.policy.signal_clock_tolerance_ms:
            return Check(
                check="signal",
                ok=False,
                detail=f"{source.kind} {source.device}'s clock drifts {source.offset_ms:+g} ms "
                f"(tolerance {self.policy.signal_clock_tolerance_ms:g} ms)",
            )
        if measured is not None and measured <= drift_s:
            return Check(
                check="signal",
                ok=False,
                detail=f"crossed {measured:g} s into red, within the signal clock's known drift "
                f"of {drift_s:g} s",
            )
        return Check(
            check="signal", ok=True, detail=f"{source.kind} {source.device}, drift {source.offset_ms:+g} ms"
        )


memo.watch(RoadSurvey, "enforcement.surveys")
memo.watch(CameraCalibration, "enforcement.calibrations")


def _detached(session: Session, rows: Iterable[Any]) -> list[Any]:
    """The rows, out of the session: kept in memory, they must never see this transaction's changes."""
    out = list(rows)
    for row in out:
        session.expunge(row)
    return out


def _survey_index(session: Session) -> dict[str, tuple[list[datetime], list[RoadSurvey]]]:
    rows = _detached(session, session.scalars(select(RoadSurvey).order_by(RoadSurvey.surveyed_at)))
    return _index(rows, lambda s: s.camera_id, lambda s: s.surveyed_at)


def _all_calibrations(session: Session) -> dict[int, CameraCalibration]:
    return {row.id: row for row in _detached(session, session.scalars(select(CameraCalibration)))}


def _index(rows: Iterable[Any], key: Any, when: Any) -> dict[str, tuple[list[datetime], list[Any]]]:
    """Groups rows (given oldest first) by key, each group with its times for bisection."""
    out: dict[str, tuple[list[datetime], list[Any]]] = {}
    for row in rows:
        times, items = out.setdefault(key(row), ([], []))
        times.append(as_utc(when(row)))
        items.append(row)
    return out


_NOTHING: tuple[list[datetime], list[Any]] = ([], [])


def _latest(index: Mapping[str, tuple[list[datetime], list[Any]]], key: str, at: datetime) -> Any:
    """Returns the newest row of `key` at or before `at`, or None."""
    return _latest_with_time(index, key, at)[1]


def _latest_with_time(
    index: Mapping[str, tuple[list[datetime], list[Any]]], key: str, at: datetime
) -> tuple[datetime, Any]:
    """Returns the newest row of `key` at or before `at` with its (UTC) time, or (`at`, None)."""
    times, items = index.get(key, _NOTHING)
    position = bisect.bisect_right(times, at) - 1
    return (times[position], items[position]) if position >= 0 else (at, None)
