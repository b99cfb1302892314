"""`safecity enforcement …`: speed sections, calibrations, what the court-readiness gate reads, the
policy, and the violations held (with the check that failed) or counted."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
import yaml

from safecity.core.cliutil import console, friendly_errors, open_context, parse_moment, print_json
from safecity.core.clock import utcnow
from safecity.core.errors import InvalidInput
from safecity.enforcement import service
from safecity.enforcement.calibrations import service as calibrations
from safecity.enforcement.calibrations.models import CalibrationIn, CalibrationOut, CalibrationRevokeOut
from safecity.enforcement.models import SpeedLimit, SpeedSectionIn, SpeedSectionOut, ViolationOut
from safecity.enforcement.readiness import clock_jobs
from safecity.enforcement.readiness import service as readiness
from safecity.enforcement.readiness.models import ClockCheckIn, RoadSurveyIn, SignalSourceIn

app = typer.Typer(
    help="Traffic enforcement: speed sections, calibrations, court readiness, policy, violations.",
    no_args_is_help=True,
)
CERTIFICATE_EXT = {".pdf": "pdf", ".jpg": "jpg", ".jpeg": "jpg", ".png": "png"}


@app.command("add-section")
@friendly_errors
def add_section(
    section_id: str = typer.Argument(..., help="Section id, e.g. sharea-faisal-nb"),
    entry: str = typer.Option(..., help="Entry ANPR camera id"),
    exit_: str = typer.Option(..., "--exit", help="Exit ANPR camera id"),
    distance_m: float = typer.Option(..., help="Road distance between them in metres"),
    limit_kmh: float = typer.Option(..., help="Limit for vehicles not listed by class"),
    tolerance_kmh: float = typer.Option(5.0, help="Speed above the limit not fined"),
    name: str = typer.Option("", help="Road and direction"),
) -> None:
    """Configure a speed section between two ANPR cameras."""
    ctx = open_context()
    data = SpeedSectionIn(
        id=section_id,
        name=name or section_id,
        entry_camera_id=entry,
        exit_camera_id=exit_,
        distance_m=distance_m,
        limit=SpeedLimit(default_kmh=limit_kmh, tolerance_kmh=tolerance_kmh),
    )
    with ctx.db.session() as session:
        service.create_speed_section(session, data, actor="cli")
    console.print(f"speed section {section_id} added")


@app.command("sections")
@friendly_errors
def sections() -> None:
    """List speed sections."""
    ctx = open_context()
    with ctx.db.session() as session:
        rows = [
            SpeedSectionOut.model_validate(s).model_dump(mode="json")
            for s in service.list_speed_sections(session)
        ]
    print_json(rows)


@app.command("policy")
@friendly_errors
def policy() -> None:
    """Show the enforcement policy in force."""
    ctx = open_context()
    with ctx.db.session() as session:
        print_json(service.get_policy(session).model_dump(mode="json"))


@app.command("counts")
@friendly_errors
def counts() -> None:
    """How many violations are in each status."""
    ctx = open_context()
    with ctx.db.session() as session:
        print_json(service.count_by_status(session))


@app.command("calibrate")
@friendly_errors
def calibrate(
    camera_id: str = typer.Argument(..., help="Camera the calibration is for"),
    file: Path = typer.Option(..., "--file", help="YAML or JSON: points, references, who, when, certificate"),
    certificate: Path = typer.Option(..., help="The certificate file (PDF, JPEG or PNG)"),
) -> None:
    """Record a camera's calibration with its reference measurements and certificate."""
    ext = CERTIFICATE_EXT.get(certificate.suffix.lower())
    if ext is None or not certificate.is_file():
        raise InvalidInput(
            f"{certificate} is not a PDF, JPEG or PNG file", hint="give the certificate's path"
        )
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(
            f"{file} cannot be read: {exc}", hint="give a YAML or JSON calibration file"
        ) from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{file} does not hold a calibration", hint="see the README for its fields")
    ctx = open_context()
    ref = ctx.media.put(certificate.read_bytes(), ext)
    record = CalibrationIn.model_validate({**data, "certificate_ref": ref})
    with ctx.db.session() as session:
        row = calibrations.record(session, camera_id, record, media=ctx.media, actor="cli")
        print_json(CalibrationOut.model_validate(row).model_dump(mode="json"))


@app.command("calibrations")
@friendly_errors
def list_calibrations(camera_id: str = typer.Argument(..., help="Camera id")) -> None:
    """List a camera's calibrations, the latest first."""
    ctx = open_context()
    with ctx.db.session() as session:
        print_json(
            [
                CalibrationOut.model_validate(c).model_dump(mode="json")
                for c in calibrations.list_for(session, camera_id)
            ]
        )


@app.command("revoke-calibration")
@friendly_errors
def revoke_calibration(
    calibration_id: int = typer.Argument(
        ..., help="Calibration id (see `safecity enforcement calibrations`)"
    ),
    effective_from: str = typer.Option(
        ..., "--from", help="First moment it no longer holds (ISO time; without a zone: the display zone)"
    ),
    reason: str = typer.Option(
        ..., "--reason", help="Why it is revoked (faulty device, certificate withdrawn…)"
    ),
) -> None:
    """Revoke a calibration from a moment on: speeds it measured from then are not evidence."""
    ctx = open_context()
    moment = parse_moment(effective_from, "--from")
    with ctx.db.session() as session:
        row, held, challans = calibrations.revoke(
            session, calibration_id, effective_from=moment, reason=reason, actor="cli"
        )
        print_json(
            CalibrationRevokeOut(
                calibration=CalibrationOut.model_validate(row),
                violations_held=held,
                challans_to_review=challans,
            ).model_dump(mode="json")
        )


@app.command("survey")
@friendly_errors
def survey(
    camera_id: str = typer.Argument(..., help="Camera watching the road"),
    lane_markings: bool = typer.Option(..., "--lane-markings/--no-lane-markings", help="Lanes marked"),
    stop_lines: bool = typer.Option(..., "--stop-lines/--no-stop-lines", help="Stop lines painted"),
    signals: bool = typer.Option(..., "--signals/--no-signals", help="Signals installed and working"),
    by: str = typer.Option(..., help="Officer who surveyed the road"),
    at: datetime | None = typer.Option(None, help="When it was surveyed (default: now)"),
    note: str = typer.Option("", help="What was found"),
) -> None:
    """Record a survey of the road a camera watches (challans need a compliant one)."""
    data = RoadSurveyIn(
        lane_markings=lane_markings,
        stop_lines=stop_lines,
        signals=signals,
        surveyed_by=by,
        surveyed_at=at or utcnow(),
        note=note,
    )
    ctx = open_context()
    with ctx.db.session() as session:
        row = readiness.record_survey(session, camera_id, data, actor="cli")
        console.print(
            f"road survey {row.id} of {camera_id}: {'compliant' if row.compliant else 'NOT compliant'}"
        )


@app.command("clock-check")
@friendly_errors
def clock_check(
    camera_id: str = typer.Argument(..., help="Camera whose clock was checked"),
    probe: bool = typer.Option(
        False, "--probe", help="Measure it now over ONVIF against NTP (SAFECITY_NTP_SERVER or this host)"
    ),
    url: str | None = typer.Option(None, help="With --probe: the ONVIF device service, if not the camera's"),
    offset_s: float | None = typer.Option(None, help="Without --probe: camera clock minus NTP, seconds"),
    uncertainty_s: float | None = typer.Option(None, help="Without --probe: ± how sure, seconds"),
    method: str | None = typer.Option(None, help="Without --probe: onvif, rtcp, ntp_query or manual"),
    at: datetime | None = typer.Option(None, help="When it was measured (default: now)"),
) -> None:
    """Measure (--probe) or record how far a camera's clock is from NTP."""
    ctx = open_context()
    if probe:
        if offset_s is not None or method is not None:
            raise InvalidInput("--probe measures the offset itself: leave out --offset-s and --method")
        with ctx.db.session() as session:
            row, reading = clock_jobs.probe_camera(
                session, camera_id, ntp_server=ctx.settings.ntp_server, url=url, actor="cli"
            )
            console.print(
                f"clock check {row.id} of {camera_id}: {reading.offset_s:+.3f} s "
                f"± {reading.uncertainty_s:.3f} s ({reading.detail})"
            )
        return
    if offset_s is None or method is None:
        raise InvalidInput(
            "say what was measured (--offset-s and --method), or measure it now with --probe",
            hint=f"safecity enforcement clock-check {camera_id} --probe",
        )
    data = ClockCheckIn.model_validate(
        {
            "offset_s": offset_s,
            "uncertainty_s": uncertainty_s,
            "method": method,
            "measured_at": at or utcnow(),
        }
    )
    with ctx.db.session() as session:
        readiness.record_clock_check(session, camera_id, data, actor="cli")
    console.print(f"clock check of {camera_id} recorded: {offset_s:+.3f} s")


@app.command("signal-source")
@friendly_errors
def signal_source(
    junction: str = typer.Argument(..., help="Junction (signal controller) id"),
    kind: str = typer.Option(..., help="controller or lamp"),
    device: str = typer.Option(..., help="Controller id, or the camera reading the lamp"),
    offset_ms: float = typer.Option(..., help="Its clock minus NTP when checked, milliseconds"),
    by: str = typer.Option(..., help="Who checked it"),
    at: datetime | None = typer.Option(None, help="When it was checked (default: now)"),
) -> None:
    """Record a junction's signal-phase source and its clock check."""
    data = SignalSourceIn.model_validate(
        {
            "kind": kind,
            "device": device,
            "offset_ms": offset_ms,
            "checked_by": by,
            "checked_at": at or utcnow(),
        }
    )
    ctx = open_context()
    with ctx.db.session() as session:
        readiness.record_signal_source(session, junction, data, actor="cli")
    console.print(f"signal source of {junction} recorded: {kind} {device}")


@app.command("held")
@friendly_errors
def held(limit: int = typer.Option(100, help="How many to list")) -> None:
    """List violations held back (pending with a hold, or unissuable) and the check that failed."""
    ctx = open_context()
    with ctx.db.session() as session:
        rows = service.held_violations(session, limit=limit)
        print_json(
            [
                {
                    key: ViolationOut.model_validate(v).model_dump(mode="json")[key]
                    for key in ("id", "offence", "plate", "camera_id", "at", "status", "hold_reason")
                }
                for v in rows
            ]
        )
