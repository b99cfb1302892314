"""E-challans: issue from approved violations, the fine clock, payments, appeals, flags, the citizen look-up.

Every function takes the caller's session; times default to now but can be given, so the fine clock
(discount, due, doubling, appeal pauses, licence and CNIC flags) is testable day by day.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Table, and_, case, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from safecity.accounts.signin.service import address_key
from safecity.audit import service as audit
from safecity.challans.models import (
    CHALLAN_STATES,
    Appeal,
    AppealIn,
    Challan,
    ChallanCounter,
    ChallanRules,
    ChallanRulesSetting,
    CitizenChallan,
    DecisionIn,
    Delivery,
    DriverFlag,
    ImportReport,
    IssueReport,
    LookupOut,
    PortalAttempt,
    PortalGrant,
    Vehicle,
    VehicleIn,
    normalise_cnic,
    normalise_plate,
)
from safecity.challans.payments import slips
from safecity.core import memo
from safecity.core.clock import as_utc, end_of_day, format_day, local_day, start_of_day, utcnow
from safecity.core.db import Base, get_by
from safecity.core.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from safecity.core.ids import new_id
from safecity.core.importer import CsvRows, ImportLimits, Source
from safecity.enforcement import service as enforcement
from safecity.evidence import service as evidence

DAY = timedelta(days=1)
REGISTRY_COLUMNS = ("plate", "owner", "cnic", "address", "make", "colour")
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_CHUNK = 500

# --- rules -----------------------------------------------------------------------------------------


memo.watch(ChallanRulesSetting, "challans.rules")


def get_rules(session: Session) -> ChallanRules:
    """Returns the fine schedule in force (Karachi's defaults until someone changes it)."""
    return memo.remember(session, "challans.rules", lambda: _load_rules(session)).model_copy()


def _load_rules(session: Session) -> ChallanRules:
    row = session.get(ChallanRulesSetting, 1)
    return ChallanRules.model_validate(row.data) if row else ChallanRules()


def set_rules(session: Session, rules: ChallanRules, *, actor: str) -> ChallanRules:
    """Replaces the fine schedule (challans already issued keep their fine)."""
    data = rules.model_dump(mode="json")
    row = session.get(ChallanRulesSetting, 1)
    if row is None:
        session.add(ChallanRulesSetting(id=1, data=data, updated_by=actor))
    else:
        row.data, row.updated_by, row.updated_at = data, actor, utcnow()
    audit.record(session, actor=actor, action="challans.rules", detail=data)
    return rules


# --- vehicle registry ------------------------------------------------------------------------------


def parse_registry(
    csv_text: Source, *, limits: ImportLimits = ImportLimits()
) -> tuple[list[VehicleIn], list[str]]:
    """Parses a registry CSV stream; returns the valid rows and an error per broken line, by its number."""
    reader = CsvRows(
        csv_text,
        limits=limits,
        required=REGISTRY_COLUMNS,
        hint="the first line must be: plate,owner,cnic,address,make,colour (phone,email optional)",
    )
    known = {*REGISTRY_COLUMNS, "phone", "email"}
    rows: list[VehicleIn] = []
    errors = reader.errors
    seen: dict[str, int] = {}
    for line, row in reader:
        clean = {k: v for k, v in row.items() if k in known}
        try:
            vehicle = VehicleIn.model_validate(clean)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "row"
                errors.append(f"line {line}: {where}: {err['msg'].removeprefix('Value error, ')}")
            continue
        if vehicle.plate in seen:
            errors.append(f"line {line}: plate {vehicle.plate} repeats line {seen[vehicle.plate]}")
            continue
        seen[vehicle.plate] = line
        rows.append(vehicle)
    return rows, errors


def import_registry(
    session: Session, csv_text: Source, *, actor: str, limits: ImportLimits = ImportLimits()
) -> ImportReport:
    """Imports the vehicle registry from CSV; a broken row means nothing is written, every error listed.

    Plates already registered are updated (the excise department re-exports the whole registry).
    Violations held because their plate was unknown become issuable again.
    """
    rows, errors = parse_registry(csv_text, limits=limits)
    if errors:
        return ImportReport(errors=errors)
    existing: set[str] = set()
    plates = [r.plate for r in rows]
    for chunk in _chunks(plates):
        existing.update(session.scalars(select(Vehicle.plate).where(Vehicle.plate.in_(chunk))))
    now = utcnow()
    new_rows = [{**r.model_dump(), "updated_at": now} for r in rows if r.plate not in existing]
    changed = [{**r.model_dump(), "updated_at": now} for r in rows if r.plate in existing]
    if new_rows:
        session.execute(insert(Vehicle), new_rows)
    if changed:
        session.execute(update(Vehicle), changed)
    reopened = enforcement.reopen_unissuable(session, plates=plates) if plates else 0
    report = ImportReport(created=len(new_rows), updated=len(changed))
    audit.record(
        session,
        actor=actor,
        action="challans.registry_import",
        detail={"created": report.created, "updated": report.updated, "reopened": reopened},
    )
    return report


def registry_status(session: Session, plate: str) -> bool | None:
    """Returns whether `plate` is registered; None when no registry has been imported at all."""
    if session.scalar(select(Vehicle.plate).where(Vehicle.plate == normalise_plate(plate))) is not None:
        return True
    return False if session.scalar(select(exists().select_from(Vehicle))) else None


def registry_statuses(session: Session, plates: Iterable[str]) -> dict[str, bool | None]:
    """Returns `registry_status` for many plates at once (one query per 500 plates)."""
    wanted = sorted({normalise_plate(p) for p in plates})
    if not wanted:
        return {}
    if not session.scalar(select(exists().select_from(Vehicle))):
        return dict.fromkeys(wanted)
    found: set[str] = set()
    for chunk in _chunks(wanted, 500):
        found.update(session.scalars(select(Vehicle.plate).where(Vehicle.plate.in_(chunk))))
    return {plate: plate in found for plate in wanted}


def lookup_vehicle(session: Session, plate: str) -> Vehicle:
    """Returns the registered vehicle for a plate, or raises NotFound."""
    vehicle = session.get(Vehicle, normalise_plate(plate))
    if vehicle is None:
        raise NotFound(
            f"plate {normalise_plate(plate)} is not in the vehicle registry", hint="import the registry"
        )
    return vehicle


# --- issue -----------------------------------------------------------------------------------------


def issue_pending(session: Session, *, limit: int = 5_000, now: datetime | None = None) -> IssueReport:
    """Issues challans for up to `limit` approved violations not yet issued (oldest first).

    Violations another transaction is issuing are skipped, so sweeps in several processes share the
    backlog; the report counts only this call's share.
    """
    rows = enforcement.approved_unissued(session, limit=limit, claim=True)
    return _issue(session, rows, now=now or utcnow())


def issue_for_violations(
    session: Session, violation_ids: Sequence[str], *, now: datetime | None = None
) -> IssueReport:
    """Issues challans for the named violations if approved and not yet issued (a repeat changes nothing)."""
    rows = enforcement.violation_rows(session, violation_ids, lock=True)
    return _issue(session, rows, now=now or utcnow())


def _issue(session: Session, rows: list[dict[str, Any]], *, now: datetime) -> IssueReport:
    """Issues challans for violation rows this transaction has locked, numbering only those it issues."""
    report = IssueReport()
    if not rows:
        return report
    rules = get_rules(session)
    ids = [r["id"] for r in rows]
    # Checked after the lock: a challan another process committed while this one waited is seen here.
    already: dict[str, str] = {}
    for chunk in _chunks(ids):
        found = session.execute(
            select(Challan.violation_id, Challan.id).where(Challan.violation_id.in_(chunk))
        )
        already.update({vid: cid for vid, cid in found})
    # The columns a challan copies, not whole ORM objects: thousands a batch, only read.
    vehicles: dict[str, Any] = {}
    for chunk in _chunks(sorted({r["plate"] for r in rows if r["plate"]})):
        found_vehicles = session.execute(
            select(
                Vehicle.plate, Vehicle.cnic, Vehicle.owner, Vehicle.address, Vehicle.phone, Vehicle.email
            ).where(Vehicle.plate.in_(chunk))
        )
        vehicles.update({v.plate: v for v in found_vehicles})
    held: dict[str, str] = {}
    ready: list[tuple[dict[str, Any], Any]] = []
    # The court-readiness gate: no challan on evidence that would not stand up (each failure named).
    not_ready = enforcement.readiness_holds(session, [r for r in rows if r["id"] not in already])
    for row in rows:
        if row["id"] in already:
            continue
        vehicle = vehicles.get(row["plate"] or "")
        if row["offence"] == "unregistered":
            held[row["id"]] = (
                "no registered owner to address: refer the vehicle to traffic police for interception"
            )
        elif not row["plate"]:
            held[row["id"]] = "no readable plate: correct the plate in review"
        elif vehicle is None:
            held[row["id"]] = f"plate {row['plate']} is not in the vehicle registry"
        elif row["offence"] not in rules.offences:
            held[row["id"]] = f"the fine schedule has no fine for {row['offence']}"
        elif row["id"] in not_ready:
            held[row["id"]] = not_ready[row["id"]]
        else:
            ready.append((row, vehicle))
    first = _allocate_numbers(session, now.year, len(ready)) if ready else 0
    challans: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    issued = dict(already)
    for offset, (row, vehicle) in enumerate(ready):
        offence = rules.offences[row["offence"]]
        challan_id = new_id()
        number = f"{rules.number_prefix}-{now.year}-{first + offset:08d}"
        evidence = dict(row["evidence"] or {})
        evidence["unit"] = row["unit"]
        evidence["photo"] = next(
            iter(
                [
                    *evidence.get("frames_after", []),
                    *evidence.get("frames_before", []),
                    *evidence.get("refs", []),
                ]
            ),
            None,
        )
        challans.append(
            {
                "id": challan_id,
                "number": number,
                "violation_id": row["id"],
                "plate": row["plate"],
                "cnic": vehicle.cnic,
                "owner": vehicle.owner,
                "address": vehicle.address,
                "offence": row["offence"],
                "camera_id": row["camera_id"],
                "offence_at": row["at"],
                "issued_at": now,
                "fine": max(rules.minimum_fine, offence.fine_for(row["vehicle_class"])),
                "points": offence.points,
                "status": "unpaid",
                "paused_s": 0.0,
                "verification_code": _verification_code(),
                "psid": slips.psid_for(rules.payments, number),
                "evidence": evidence,
            }
        )
        deliveries.append({"challan_id": challan_id, "channel": "post", "address": vehicle.address})
        if vehicle.phone:
            deliveries.append({"challan_id": challan_id, "channel": "sms", "address": vehicle.phone})
        if vehicle.email:
            deliveries.append({"challan_id": challan_id, "channel": "email", "address": vehicle.email})
        issued[row["id"]] = challan_id
        report.numbers.append(number)
    if challans:
        # Core inserts: the ORM's bulk path costs a third of issuing for rows nothing reads back.
        session.execute(insert(_table(Challan)), challans)
        session.execute(insert(_table(Delivery)), [{**d, "created_at": now} for d in deliveries])
    enforcement.mark_issued(session, issued)
    enforcement.mark_unissuable(session, held)
    report.issued, report.held, report.held_reasons = len(challans), len(held), held
    if challans:
        _flag_points(session, {c["cnic"] for c in challans if c["points"]}, rules, now)
        audit.record(
            session,
            actor="system",
            action="challan.issue",
            detail={
                "issued": len(challans),
                "first": report.numbers[0],
                "last": report.numbers[-1],
                "held": len(held),
            },
        )
    return report


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _allocate_numbers(session: Session, year: int, count: int) -> int:
    """Reserves `count` consecutive challan numbers for `year`; returns the first."""
    # One statement takes the row lock (PostgreSQL) or write lock (SQLite) and reads the new last.
    last = session.scalar(
        update(ChallanCounter)
        .where(ChallanCounter.year == year)
        .values(last=ChallanCounter.last + count)
        .returning(ChallanCounter.last)
        .execution_options(synchronize_session=False)
    )
    if last is None:
        try:
            with session.begin_nested():
                session.add(ChallanCounter(year=year, last=count))
        except IntegrityError:
            return _allocate_numbers(session, year, count)
        return 1
    return int(last) - count + 1


def get_challan(session: Session, number: str) -> Challan:
    """Returns a challan by number, or raises NotFound."""
    challan = get_by(session, Challan, number=number.strip().upper())
    if challan is None:
        raise NotFound(f"no challan is numbered {number!r}", hint="check the number printed on the notice")
    return challan


def list_challans(
    session: Session,
    *,
    status: str | None = None,
    plate: str | None = None,
    cnic: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Sequence[Challan]:
    """Returns challans, newest first, optionally by status, plate or CNIC."""
    if status and status not in CHALLAN_STATES:
        raise InvalidInput(f"unknown status {status!r}", hint=f"use one of {', '.join(CHALLAN_STATES)}")
    query = (
        select(Challan).order_by(Challan.issued_at.desc(), Challan.number.desc()).limit(limit).offset(offset)
    )
    if status:
        query = query.where(Challan.status == status)
    if plate:
        query = query.where(Challan.plate == normalise_plate(plate))
    if cnic:
        query = query.where(Challan.cnic == _cnic_or_invalid(cnic))
    return session.scalars(query).all()


def count_by_status(session: Session) -> dict[str, int]:
    """Returns how many challans are in each status."""
    return {s: n for s, n in session.execute(select(Challan.status, func.count()).group_by(Challan.status))}


# --- the fine clock --------------------------------------------------------------------------------


def paused_seconds(challan: Challan, at: datetime) -> float:
    """Returns how long the clock has been stopped by appeals up to `at`."""
    running = (at - challan.clock_paused_at).total_seconds() if challan.clock_paused_at else 0.0
    return challan.paused_s + max(0.0, running)


def paused_days(challan: Challan, at: datetime) -> int:
    """Returns the whole days appeals stopped the clock up to `at` (part of a day counts whole)."""
    # Rounded to the millisecond first: a pause of exactly 30 days must not become 31 by float noise.
    return math.ceil(round(paused_seconds(challan, at), 3) / 86_400)


def clock_day(challan: Challan, at: datetime) -> int:
    """Returns the challan's day on its clock at `at`: day 1 is the local day of issue, paused days excluded.

    Days are calendar days in the display zone, so "day 14" ends at local midnight, as the notice says.
    """
    days = (local_day(at) - local_day(challan.issued_at)).days - paused_days(challan, at)
    return max(0, days) + 1


def amount_due(challan: Challan, rules: ChallanRules, at: datetime) -> int:
    """Returns what paying at `at` costs: discount in its period, the fine until due, then more."""
    day = clock_day(challan, at)
    if day <= rules.discount_days:
        return round(challan.fine * (100 - rules.discount_pct) / 100)
    if day <= rules.due_days:
        return challan.fine
    return round(challan.fine * rules.late_multiplier)


def clock_dates(challan: Challan, rules: ChallanRules, at: datetime) -> dict[str, datetime]:
    """Returns the last moments of the discount, of paying the fine and of appealing, as seen at `at`.

    Each is the end of a calendar day in the display zone (the day `amount_due` and `file_appeal`
    change their answer after), moved on by the whole days appeals paused the clock. Every notice,
    message, page and API prints these, so all of them name the same day.
    """
    first = local_day(challan.issued_at) + timedelta(days=paused_days(challan, at) - 1)
    return {
        "discount_until": end_of_day(first + timedelta(days=rules.discount_days)),
        "due_at": end_of_day(first + timedelta(days=rules.due_days)),
        "appeal_until": end_of_day(first + timedelta(days=rules.appeal_days)),
    }


# --- appeals ---------------------------------------------------------------------------------------


def file_appeal(
    session: Session, number: str, data: AppealIn, *, actor: str, now: datetime | None = None
) -> Appeal:
    """Files a citizen's appeal; it stops the fine clock until the committee decides."""
    now = now or utcnow()
    challan = get_challan(session, number)
    if session.scalar(select(Appeal.id).where(Appeal.challan_id == challan.id)) is not None:
        raise Conflict(f"challan {challan.number} has already been appealed", hint="one appeal per challan")
    if challan.status != "unpaid":
        raise Conflict(f"challan {challan.number} is {challan.status}; it cannot be appealed")
    rules = get_rules(session)
    deadline = clock_dates(challan, rules, now)["appeal_until"]
    if now > deadline:
        raise Conflict(
            f"the appeal period of challan {challan.number} ended with {format_day(deadline)}",
            hint=f"appeals must be filed within {rules.appeal_days} days of issue",
        )
    appeal = Appeal(challan_id=challan.id, filed_at=now, grounds=data.grounds, contact=data.contact)
    session.add(appeal)
    challan.status, challan.clock_paused_at = "appealed", now
    session.flush()
    # The violation's pictures and the notice stay, whatever their retention, until the appeal is decided.
    evidence.hold_evidence_of(
        session,
        kind="appeal",
        reference=challan.number,
        reason=f"appeal against challan {challan.number}",
        actor=actor,
        owners=[("violation", challan.violation_id), ("challan_notice", challan.id)],
    )
    audit.record(
        session, actor=actor, action="challan.appeal", target=challan.number, detail={"grounds": data.grounds}
    )
    return appeal


def decide_appeal(
    session: Session, number: str, data: DecisionIn, *, actor: str, now: datetime | None = None
) -> Appeal:
    """Records the committee's decision: upheld cancels the challan; dismissed restarts its clock."""
    now = now or utcnow()
    challan = get_challan(session, number)
    appeal = get_by(session, Appeal, challan_id=challan.id)
    if appeal is None:
        raise NotFound(f"challan {challan.number} has no appeal", hint="a decision needs an appeal first")
    if appeal.status != "pending":
        raise Conflict(f"the appeal was already decided ({appeal.status}) on {format_day(appeal.decided_at)}")
    appeal.status, appeal.decided_at, appeal.decided_by = data.decision, now, actor
    appeal.committee, appeal.reason = list(data.committee), data.reason
    challan.paused_s = paused_seconds(challan, now)
    challan.clock_paused_at = None
    challan.status = "cancelled" if data.decision == "upheld" else "unpaid"
    if data.decision == "upheld":
        session.execute(
            update(DriverFlag)
            .where(DriverFlag.challan_id == challan.id, DriverFlag.cleared_at.is_(None))
            .values(cleared_at=now)
            .execution_options(synchronize_session=False)
        )
    evidence.release_holds_of(
        session, kind="appeal", reference=challan.number, reason=f"appeal {data.decision}", actor=actor
    )
    audit.record(
        session,
        actor=actor,
        action=f"challan.appeal_{data.decision}",
        target=challan.number,
        detail={"reason": data.reason, "committee": data.committee},
    )
    return appeal


def get_appeal(session: Session, challan: Challan) -> Appeal | None:
    """Returns a challan's appeal, if any."""
    return get_by(session, Appeal, challan_id=challan.id)


# --- demerit points and flags ----------------------------------------------------------------------


def points_for(session: Session, cnic: str, *, now: datetime | None = None) -> int:
    """Returns the demerit points an owner collected within the window (cancelled ones excluded)."""
    now = now or utcnow()
    rules = get_rules(session)
    total = session.scalar(
        select(func.coalesce(func.sum(Challan.points), 0)).where(
            Challan.cnic == _cnic_or_invalid(cnic),
            Challan.status != "cancelled",
            Challan.offence_at >= now - rules.points_window_days * DAY,
        )
    )
    return int(total or 0)


def _flag_points(session: Session, cnics: Iterable[str], rules: ChallanRules, now: datetime) -> None:
    cnics = list(cnics)
    for chunk in _chunks(cnics):
        over = session.execute(
            select(Challan.cnic, func.sum(Challan.points))
            .where(
                Challan.cnic.in_(chunk),
                Challan.status != "cancelled",
                Challan.offence_at >= now - rules.points_window_days * DAY,
            )
            .group_by(Challan.cnic)
            .having(func.sum(Challan.points) >= rules.points_limit)
        ).all()
        for cnic, total in over:
            open_flag = session.scalar(
                select(DriverFlag.id).where(
                    DriverFlag.cnic == cnic,
                    DriverFlag.kind == "licence_suspension",
                    DriverFlag.cleared_at.is_(None),
                )
            )
            if open_flag is None:
                cause = f"{total} demerit points by {format_day(now)}"
                session.add(DriverFlag(cnic=cnic, kind="licence_suspension", cause=cause, raised_at=now))


def sweep_flags(session: Session, *, now: datetime | None = None) -> dict[str, int]:
    """Flags licences (3 months unpaid) and CNICs (6 months unpaid) by each challan's clock."""
    now = now or utcnow()
    rules = get_rules(session)
    counts = {"licence": 0, "cnic": 0}
    candidates = session.scalars(
        select(Challan).where(
            Challan.status == "unpaid",
            # A day early: the clock counts local calendar days, not 24-hour periods since issue.
            Challan.issued_at <= now - (rules.licence_flag_days - 1) * DAY,
            (Challan.licence_flagged_at.is_(None)) | (Challan.cnic_flagged_at.is_(None)),
        )
    ).all()
    for challan in candidates:
        age = clock_day(challan, now) - 1
        for kind, days, column in (
            ("licence", rules.licence_flag_days, "licence_flagged_at"),
            ("cnic", rules.cnic_flag_days, "cnic_flagged_at"),
        ):
            if age >= days and getattr(challan, column) is None:
                setattr(challan, column, now)
                session.add(
                    DriverFlag(
                        cnic=challan.cnic,
                        kind="licence_suspension" if kind == "licence" else "cnic_block",
                        cause=f"challan {challan.number} unpaid {days} days",
                        challan_id=challan.id,
                        raised_at=now,
                    )
                )
                counts[kind] += 1
    if any(counts.values()):
        audit.record(session, actor="system", action="challan.flags", detail=counts)
    return counts


def list_flags(session: Session, *, cnic: str | None = None, open_only: bool = True) -> Sequence[DriverFlag]:
    """Returns licence and CNIC flags, newest first."""
    query = select(DriverFlag).order_by(DriverFlag.raised_at.desc()).limit(1000)
    if cnic:
        query = query.where(DriverFlag.cnic == _cnic_or_invalid(cnic))
    if open_only:
        query = query.where(DriverFlag.cleared_at.is_(None))
    return session.scalars(query).all()


# --- citizen portal --------------------------------------------------------------------------------

GRANT_MINUTES = 30


def find_for_citizen(session: Session, *, plate: str, cnic: str) -> Sequence[Challan]:
    """Returns the challans on `plate` addressed to `cnic` (both must match), newest first."""
    return session.scalars(
        select(Challan)
        .where(Challan.plate == plate, Challan.cnic == cnic)
        .order_by(Challan.issued_at.desc())
        .limit(200)
    ).all()


def portal_lookup(
    session: Session, *, plate: str, cnic: str, client: str, now: datetime | None = None
) -> LookupOut:
    """A citizen's look-up: rate-limited, same answer shape whether anything matched.

    Limits count the caller's address first (IPv6 by its /64); a plate that many failed look-ups named
    only makes each address wait a short delay between its own look-ups of it, so nobody can keep the
    owner, who comes with the right CNIC, out.
    """
    now = now or utcnow()
    plate = normalise_plate(plate)
    cnic = _cnic_or_invalid(cnic)
    limited = address_key(client)  # what the limits count (IPv6: its /64); the audit keeps the address
    rules = get_rules(session)
    _check_portal_rate(session, client=limited, plate=plate, rules=rules, now=now)
    challans = find_for_citizen(session, plate=plate, cnic=cnic)
    session.add(PortalAttempt(client=limited[:64], plate=plate[:20], at=now, matched=bool(challans)))
    token = secrets.token_urlsafe(24)
    expires = now + timedelta(minutes=GRANT_MINUTES)
    session.add(PortalGrant(token_hash=_hash(token), plate=plate, cnic=cnic, expires_at=expires))
    audit.record(
        session,
        actor=f"citizen@{client}",
        action="challan.portal_lookup",
        target=plate,
        detail={"found": len(challans)},
    )
    views = [citizen_view(session, c, rules, now) for c in challans]
    return LookupOut(token=token, expires_at=expires, challans=views)


def _check_portal_rate(
    session: Session, *, client: str, plate: str, rules: ChallanRules, now: datetime
) -> None:
    session.execute(delete(PortalAttempt).where(PortalAttempt.at < now - timedelta(hours=1)))
    session.execute(delete(PortalGrant).where(PortalGrant.expires_at < now))
    hour_ago = now - timedelta(hours=1)
    mine = PortalAttempt.client == client
    by_client = session.scalar(
        select(func.count()).where(mine, PortalAttempt.at >= now - timedelta(minutes=1))
    )
    if (by_client or 0) >= rules.portal_per_minute:
        raise TooManyRequests("too many look-ups from your address", hint="wait a minute and try again")
    failed = session.scalar(
        select(func.count()).where(mine, PortalAttempt.at >= hour_ago, ~PortalAttempt.matched)
    )
    if (failed or 0) >= rules.portal_failures_per_address_hour:
        raise TooManyRequests(
            "too many look-ups from your address found nothing",
            hint="check the plate and the CNIC on the registration card, and try again within the hour",
        )
    plate_failed = session.scalar(
        select(func.count()).where(
            PortalAttempt.plate == plate, PortalAttempt.at >= hour_ago, ~PortalAttempt.matched
        )
    )
    if (plate_failed or 0) < rules.portal_per_plate_hour:
        return
    # A plate someone is guessing CNICs for: each address waits between its own look-ups of it.
    last = session.scalar(select(func.max(PortalAttempt.at)).where(mine, PortalAttempt.plate == plate))
    if last is not None:
        wait = rules.portal_plate_delay_s - (now - as_utc(last)).total_seconds()
        if wait > 0:
            raise TooManyRequests(
                f"this plate was looked up many times; wait {math.ceil(wait)} s before trying it again",
                hint="check the CNIC printed on the registration card",
            )


def portal_challan(session: Session, *, token: str, number: str, now: datetime | None = None) -> Challan:
    """Returns the challan `number` if the citizen's access token proved its plate and CNIC."""
    grant = session.get(PortalGrant, _hash(token)) if token else None
    if grant is None or grant.expires_at < (now or utcnow()):
        raise NotFound("this look-up has expired or is not valid", hint="look up your plate and CNIC again")
    challan = get_by(session, Challan, number=number.strip().upper())
    # The same answer for "no such challan" and "not yours", so numbers cannot be probed.
    if challan is None or challan.plate != grant.plate or challan.cnic != grant.cnic:
        raise NotFound(
            f"no challan {number!r} for this plate and CNIC", hint="check the number on your notice"
        )
    return challan


def citizen_view(session: Session, challan: Challan, rules: ChallanRules, now: datetime) -> CitizenChallan:
    """Returns what a citizen may see of their own challan."""
    dates = clock_dates(challan, rules, now)
    evidence = challan.evidence or {}
    refs = [evidence.get("photo"), evidence.get("plate_crop"), *evidence.get("frames_before", [])]
    refs += evidence.get("frames_after", [])
    appeal = get_appeal(session, challan)
    offence = rules.offences.get(challan.offence)
    return CitizenChallan(
        number=challan.number,
        plate=challan.plate,
        offence=challan.offence,
        offence_label=(offence.label if offence and offence.label else challan.offence.replace("_", " ")),
        offence_at=challan.offence_at,
        issued_at=challan.issued_at,
        status=challan.status,
        fine=challan.fine,
        amount_due=0 if challan.status in {"paid", "cancelled"} else amount_due(challan, rules, now),
        discount_until=dates["discount_until"],
        due_at=dates["due_at"],
        appeal_until=dates["appeal_until"],
        measured=evidence.get("measured"),
        limit=evidence.get("limit"),
        unit=str(evidence.get("unit") or ""),
        evidence=list(dict.fromkeys(r for r in refs if r)),
        psid=challan.psid,
        appeal=(
            {
                "status": appeal.status,
                "filed_at": appeal.filed_at,
                "reason": appeal.reason,
                "decided_at": appeal.decided_at,
            }
            if appeal
            else None
        ),
    )


def verify_code(session: Session, code: str) -> dict[str, Any]:
    """Returns the facts a notice's verification code vouches for (number, plate, offence, fine, status)."""
    challan = get_by(session, Challan, verification_code=code.strip().upper())
    if challan is None:
        raise NotFound("no notice carries this verification code", hint="the notice may be forged: call 1915")
    return {
        "number": challan.number,
        "plate": challan.plate,
        "offence": challan.offence,
        "offence_at": challan.offence_at,
        "fine": challan.fine,
        "status": challan.status,
    }


# --- helpers ---------------------------------------------------------------------------------------


def _cnic_or_invalid(value: str) -> str:
    try:
        return normalise_cnic(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), hint="enter the CNIC printed on the card") from None


def _verification_code() -> str:
    # 10 symbols of 32 (50 bits): unguessable, and free of look-alikes (0/O, 1/I) for reading aloud.
    return "".join(_CODE_ALPHABET[b & 31] for b in secrets.token_bytes(10))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def daily_counts(session: Session, *, days: int = 30, now: datetime | None = None) -> list[dict[str, Any]]:
    """Returns challans issued and paid per local day (display zone) in the last `days` days, oldest first."""
    today = local_day(now or utcnow())
    windows = [
        (day, start_of_day(day), start_of_day(day + DAY))
        for day in (today - timedelta(days=back) for back in range(days - 1, -1, -1))
    ]

    def per_day(column: Any) -> list[int]:
        # One query, a sum per local day: local midnights differ from UTC ones, and from day to day
        # where clocks change, so the database's own date() cannot group them.
        sums = [
            func.coalesce(func.sum(case((and_(column >= lo, column < hi), 1), else_=0)), 0)
            for _, lo, hi in windows
        ]
        row = session.execute(select(*sums).where(column >= windows[0][1], column < windows[-1][2])).one()
        return [int(n) for n in row]

    issued, paid = per_day(Challan.issued_at), per_day(Challan.paid_at)
    return [
        {"day": day.isoformat(), "issued": issued[n], "paid": paid[n]}
        for n, (day, _, _) in enumerate(windows)
    ]
