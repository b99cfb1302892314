"""`safecity evidence …`: body-worn recordings from the dock to the courtroom.

import a docking folder, list and show items, their custody log and report, verify them, hold,
classify, delete and restore, cases, shares, court bundles and `verify-bundle`.
"""

from __future__ import annotations

import shutil
import sys
from datetime import datetime
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from safecity.bodyworn import (
    bundle,
    cases,
    custody,
    ingest,
    integrity,
    redaction,
    retention,
    sharing,
    verify_bundle,
)
from safecity.bodyworn import service as items
from safecity.bodyworn.models import CaseIn, ClassifyIn, ImportResult, ItemMeta, RedactionIn
from safecity.core.cliutil import console, err_console, friendly_errors, open_context, print_json
from safecity.core.errors import InvalidInput

app = typer.Typer(
    help="Body-worn camera evidence: import, custody, verification, retention, cases, sharing, bundles.",
    no_args_is_help=True,
)
case_app = typer.Typer(help="Cases: group evidence, protect it while open.", no_args_is_help=True)
app.add_typer(case_app, name="case")

ACTOR = typer.Option("cli", "--as", help="Who does it (custody log)")
JSON = typer.Option(False, "--json", help="Print JSON")


@app.command("import")
@friendly_errors
def import_command(
    folder: Path = typer.Argument(..., help="The docking station's folder (searched recursively)"),
    officer: str = typer.Option(..., "--officer", help="Who wore the camera"),
    device: str = typer.Option(..., "--device", help="The camera's id"),
    category: list[str] = typer.Option([], "--category", help="Retention category (repeat)"),
    case: str | None = typer.Option(None, "--case", help="Add every item to this open case"),
    incident: str | None = typer.Option(None, "--incident", help="The incident they belong to"),
    actor: str = ACTOR,
    json_output: bool = JSON,
) -> None:
    """Ingest every recording of a docking folder (resumable: a re-run skips what is in)."""
    ctx = open_context()
    meta = ItemMeta(officer=officer, device=device, categories=category, case=case, incident_id=incident)
    paths, _ = ingest.recordings_in(folder) if folder.is_dir() else ([], 0)
    total = sum(p.stat().st_size for p in paths)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"),
        console=err_console,
        disable=json_output or not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task(f"{len(paths)} recordings", total=total, last="")

        def step(result: ImportResult, size: int) -> None:
            bar.update(task, advance=size, last=f"{result.outcome}: {Path(result.path).name}")

        report = ingest.import_folder(ctx, folder, meta, actor=actor, progress=step)
    if json_output:
        print_json(report.model_dump(mode="json"))
        raise typer.Exit(2 if report.refused or report.failed else 0)
    console.print(
        f"{report.files} recordings: {report.ingested} ingested ({report.bytes / 1024**2:.1f} MiB), "
        f"{report.skipped} already in, {report.duplicates} duplicates, {report.refused} refused, "
        f"{report.failed} failed, in {report.seconds:.1f} s"
    )
    for result in report.results:
        if result.outcome in ("refused", "failed"):
            err_console.print(f"[red]{result.outcome}[/] {result.path}: {result.message}")
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}")
    if report.refused or report.failed:
        raise typer.Exit(2)


@app.command("list")
@friendly_errors
def list_command(
    officer: str | None = typer.Option(None, help="Only this officer's"),
    device: str | None = typer.Option(None, help="Only this camera's"),
    category: str | None = typer.Option(None, help="Only this category"),
    case: str | None = typer.Option(None, help="Only this case's"),
    status: str = typer.Option("active", help="active, deleted, purged or any"),
    limit: int = typer.Option(200, help="At most this many"),
    json_output: bool = JSON,
) -> None:
    """List items, newest recording first."""
    from safecity.accounts.service import SYSTEM

    ctx = open_context()
    with ctx.db.session() as session:
        rows = items.list_items(
            session,
            SYSTEM,
            officer=officer,
            device=device,
            category=category,
            case=case,
            status=status,
            limit=limit,
        )
        shown = items.out(session, ctx.settings, rows)
    if json_output:
        print_json([s.model_dump(mode="json") for s in shown])
        return
    table = Table(
        "item", "recorded", "officer", "device", "length", "categories", "cases", "status", "delete due"
    )
    for s in shown:
        table.add_row(
            s.id,
            f"{s.recorded_at:%Y-%m-%d %H:%M}" if s.recorded_at else "?",
            s.officer,
            s.device,
            f"{s.duration_s:.0f} s" if s.duration_s else "?",
            ", ".join(s.categories) or items.UNCATEGORISED,
            ", ".join(s.cases),
            s.status,
            f"{s.delete_due:%Y-%m-%d}" if s.delete_due else "kept",
        )
    console.print(table)


@app.command("show")
@friendly_errors
def show_command(item_id: str, json_output: bool = JSON) -> None:
    """Show one item, its holds and shares."""
    ctx = open_context()
    with ctx.db.session() as session:
        shown = items.detail(session, ctx.settings, items.get(session, item_id))
    data = shown.model_dump(mode="json", exclude={"track"})
    data["track_points"] = len(shown.track)
    if json_output:
        print_json(data)
        return
    for key, value in data.items():
        console.print(f"[bold]{key}[/]: {value}")


@app.command("custody")
@friendly_errors
def custody_command(
    item_id: str,
    pdf: Path | None = typer.Option(None, "--pdf", help="Write the custody report to this PDF"),
    actor: str = ACTOR,
    json_output: bool = JSON,
) -> None:
    """Show an item's custody log (every act on it, from the audit chain), or write its PDF report."""
    ctx = open_context()
    with ctx.db.session() as session:
        item = items.get(session, item_id)
        if pdf is not None:
            custody.record(
                session, item.id, actor=actor, action="report", reason=f"custody report to {pdf.name}"
            )
        entries = custody.entries_of(session, item.id)
        if pdf is not None:
            cases_in = [n for n, _ in items.cases_of(session, [item.id]).get(item.id, [])]
            pdf.write_bytes(
                custody.report_pdf(
                    item, entries, holds=items.holds_of(session, item), cases=cases_in, generated_by=actor
                )
            )
            console.print(f"custody report of {item.id} ({len(entries)} entries) written to {pdf}")
            return
    if json_output:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    table = Table("#", "when", "who", "what", "why")
    for e in entries:
        table.add_row(str(e.seq), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.reason)
    console.print(table)


@app.command("verify")
@friendly_errors
def verify_command(
    item_ids: list[str] = typer.Argument(None, help="Items to verify"),
    all_items: bool = typer.Option(False, "--all", help="Every item whose original is kept"),
    actor: str = ACTOR,
    json_output: bool = JSON,
) -> None:
    """Hash stored originals again and compare with their digests on arrival (a mismatch raises an alert)."""
    ctx = open_context()
    chosen = integrity.live_items(ctx) if all_items else list(item_ids or [])
    if not chosen:
        raise typer.BadParameter("name items, or give --all")
    report = integrity.verify_many(ctx, chosen, actor=actor)
    if json_output:
        print_json(report.model_dump(mode="json"))
    else:
        rate = report.bytes / report.seconds / 1024**3 if report.seconds else 0.0
        console.print(
            f"{report.checked} checked, {report.ok} match, {len(report.mismatched)} changed, "
            f"{len(report.missing)} missing ({report.bytes / 1024**2:.1f} MiB at {rate:.2f} GiB/s)"
        )
        for item_id in report.mismatched:
            err_console.print(f"[red]CHANGED[/] {item_id}: the stored original does not match its digest")
        for item_id in report.missing:
            err_console.print(f"[red]MISSING[/] {item_id}: the stored original is gone")
    if report.mismatched or report.missing:
        raise typer.Exit(1)


@app.command("classify")
@friendly_errors
def classify_command(
    item_id: str,
    reason: str = typer.Option(..., "--reason", help="Why (custody log)"),
    category: list[str] = typer.Option(None, "--category", help="New categories (repeat)"),
    access: str | None = typer.Option(None, "--access", help="normal, restricted or confidential"),
    allow: list[str] = typer.Option(None, "--allow", help="A user who may open a confidential item (repeat)"),
    disclose: bool | None = typer.Option(
        None, "--disclose/--do-not-disclose", help="Lift or set do-not-disclose"
    ),
    retain_until: datetime | None = typer.Option(None, "--retain-until", help="Keep at least until (UTC)"),
    actor: str = ACTOR,
) -> None:
    """Change an item's categories, access class, disclosure or minimum retention."""
    change = ClassifyIn.model_validate(
        {
            "reason": reason,
            "categories": category or None,
            "access_class": access,
            "allowed_users": allow or None,
            "do_not_disclose": None if disclose is None else not disclose,
            "retain_until": retain_until,
        }
    )
    ctx = open_context()
    with ctx.db.session() as session:
        item = items.classify(session, ctx.settings, item_id, change, actor=actor)
        due = items.delete_due(ctx.settings, item)
    console.print(
        f"item {item_id}: {', '.join(item.categories) or 'uncategorised'}, {item.access_class}"
        f"{', do not disclose' if item.do_not_disclose else ''}; retention deletes it on {due:%Y-%m-%d}"
    )


@app.command("hold")
@friendly_errors
def hold_command(
    item_id: str,
    reference: str = typer.Option(..., "--reference", help="Court order or request number"),
    reason: str = typer.Option(..., "--reason", help="Why it is held"),
    actor: str = ACTOR,
) -> None:
    """Place a legal hold on an item: nothing deletes it until the hold is released."""
    ctx = open_context()
    with ctx.db.session() as session:
        placed = items.hold(session, item_id, reference=reference, reason=reason, actor=actor)
    console.print(f"hold {placed.id} ({reference}) keeps item {item_id}")


@app.command("release")
@friendly_errors
def release_command(
    item_id: str,
    hold_id: str,
    reason: str = typer.Option(..., "--reason", help="Why the hold ends"),
    actor: str = ACTOR,
) -> None:
    """Release a legal hold on an item."""
    ctx = open_context()
    with ctx.db.session() as session:
        items.release_hold(session, item_id, hold_id, reason=reason, actor=actor)
    console.print(f"hold {hold_id} released; item {item_id} follows its retention again")


@app.command("delete")
@friendly_errors
def delete_command(item_id: str, reason: str = typer.Option(..., "--reason"), actor: str = ACTOR) -> None:
    """Delete an item into its recovery window (refused while in an open case or on hold)."""
    ctx = open_context()
    with ctx.db.session() as session:
        item = items.delete(session, ctx.settings, item_id, reason=reason, actor=actor)
    console.print(f"item {item_id} deleted; it can be restored until {item.purge_after:%Y-%m-%d %H:%M} UTC")


@app.command("restore")
@friendly_errors
def restore_command(item_id: str, reason: str = typer.Option(..., "--reason"), actor: str = ACTOR) -> None:
    """Restore a deleted item within its recovery window."""
    ctx = open_context()
    with ctx.db.session() as session:
        items.restore(session, item_id, reason=reason, actor=actor)
    console.print(f"item {item_id} restored")


@app.command("retention")
@friendly_errors
def retention_command(json_output: bool = JSON) -> None:
    """Apply retention now: delete what is past its categories' period, purge what is past its window."""
    ctx = open_context()
    report = retention.apply(ctx)
    if json_output:
        print_json(report.model_dump(mode="json"))
        return
    console.print(
        f"{len(report.deleted)} deleted into the recovery window, {len(report.purged)} purged; kept: "
        f"{report.kept_in_case} in open cases, {report.kept_on_hold} on hold"
    )


@app.command("share")
@friendly_errors
def share_command(
    item_id: str,
    recipient: str = typer.Option(..., "--recipient", help="The recipient's name (burnt into a download)"),
    role: str = typer.Option("prosecutor", "--role", help="prosecutor, defence, court or other"),
    mode: str = typer.Option("view", "--mode", help="view or download"),
    days: float = typer.Option(7, "--days", help="Days the link lives"),
    reason: str = typer.Option(..., "--reason", help="Why it is shared"),
    base_url: str | None = typer.Option(None, "--base-url", help="This server's public address"),
    actor: str = ACTOR,
) -> None:
    """Share an item with one recipient: an expiring link and an access code to give separately."""
    from safecity.bodyworn.models import ShareIn

    body = ShareIn.model_validate(
        {"recipient": recipient, "recipient_role": role, "mode": mode, "days": days, "reason": reason}
    )
    ctx = open_context()
    with ctx.db.session() as session:
        share, token, code = sharing.create(session, item_id, body, actor=actor)
        share_id, expires = share.id, share.expires_at
    if mode == "download":
        with console.status("burning the recipient's name into a copy…"):
            sharing.make_copy(ctx, share_id)
    base = (
        base_url or ctx.settings.public_base_url or f"http://{ctx.settings.host}:{ctx.settings.port}"
    ).rstrip("/")
    console.print(f"link:        {base}/share/{token}")
    console.print(f"access code: {code}   (give it separately: phone or in person)")
    console.print(f"expires:     {expires:%Y-%m-%d %H:%M} UTC; opens in the first browser that uses it only")


def _numbers(text: str, count: int, what: str, form: str) -> list[float]:
    """Returns the `count` comma-separated numbers of an option's value, or says what is wrong."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise InvalidInput(f"{what} {text!r} is not {form}", hint=f"e.g. {what} " + ",".join(["1"] * count))
    return values


@app.command("redact")
@friendly_errors
def redact_command(
    item_id: str,
    faces: bool = typer.Option(
        False, "--faces", help="Pixelate every face (detected on every frame, tracked)"
    ),
    plates: bool = typer.Option(False, "--plates", help="Pixelate every number plate"),
    box: list[str] = typer.Option(
        [], "--box", help="T0,T1,X,Y,W,H: a box (pixels at T0) to hide from T0 to T1 s, following its object"
    ),
    still: bool = typer.Option(False, "--still", help="Keep drawn boxes still instead of following"),
    mute: list[str] = typer.Option([], "--mute", help="T0,T1: seconds of sound to silence (repeat)"),
    reason: str = typer.Option("redacted copy for disclosure", "--reason", help="Why (custody log)"),
    out: Path | None = typer.Option(None, "--out", help="Also write the redacted copy to this file"),
    actor: str = ACTOR,
    json_output: bool = JSON,
) -> None:
    """Make a redacted copy of an item, a new item: faces, plates, boxes, muted sound; the original stays."""
    boxes = []
    for text in box:
        t0, t1, x, y, w, h = _numbers(text, 6, "--box", "T0,T1,X,Y,W,H")
        boxes.append({"t0": t0, "t1": t1, "x": x, "y": y, "w": w, "h": h, "follow": not still})
    mutes = []
    for text in mute:
        t0, t1 = _numbers(text, 2, "--mute", "T0,T1")
        mutes.append({"t0": t0, "t1": t1})
    body = RedactionIn.model_validate(
        {"faces": faces, "plates": plates, "boxes": boxes, "mutes": mutes, "reason": reason}
    )
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise InvalidInput(
            f"--out {out} is not a file in an existing folder", hint="e.g. --out ./redacted.mp4"
        )
    ctx = open_context()
    with Progress(
        TextColumn("[bold]redacting {task.fields[item]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        TimeRemainingColumn(),
        console=err_console,
        disable=json_output or not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task("redact", total=None, item=item_id)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        job = redaction.redact_now(ctx, item_id, body, actor=actor, progress=step)
    with ctx.db.session() as session:
        made = items.get(session, job.result_item_id or "")
        path, made_id, digest = ctx.media.path(made.ref), made.id, made.sha256
        withheld = made.do_not_disclose
    if out is not None:
        shutil.copyfile(path, out)
    if json_output:
        print_json(
            {
                "item_id": made_id,
                "sha256": digest,
                "redaction": job.id,
                "frames": job.frames_done,
                "out": str(out) if out else None,
                "do_not_disclose": withheld,
            }
        )
        return
    console.print(f"item {made_id} made from {item_id}: {job.frames_done} frames, sha256 {digest}")
    if out is not None:
        console.print(f"copy written to {out}")
    if withheld:
        console.print(
            f"[yellow]the copy is marked do not disclose, as {item_id} is[/]: someone with bodycam:manage "
            f"lifts it once the copy may go out: safecity evidence classify {made_id} --disclose --reason …"
        )


@app.command("bundle")
@friendly_errors
def bundle_command(
    item_ids: list[str] = typer.Argument(None, help="Items to put in"),
    case: str | None = typer.Option(None, "--case", help="Every body-worn item of this case"),
    out: Path = typer.Option(..., "--out", help="A new folder for the bundle"),
    reason: str = typer.Option(..., "--reason", help="Whom it is for"),
    actor: str = ACTOR,
) -> None:
    """Write a court bundle: originals, manifest of SHA-256 digests, custody reports and verify.py."""
    ctx = open_context()
    manifest = bundle.write_bundle(
        ctx, out=out, actor=actor, reason=reason, item_ids=item_ids or [], case=case
    )
    console.print(
        f"bundle {manifest['bundle']}: {len(manifest['files'])} files in {out}; manifest.json sha256 "
        f"{manifest['manifest_sha256']}\ncheck it anywhere with: python3 {out / 'verify.py'}"
    )


@app.command("verify-bundle")
def verify_bundle_command(folder: Path = typer.Argument(..., help="The bundle's folder")) -> None:
    """Check a court bundle: every file whole and unchanged, nothing added (no database needed)."""
    ok, lines = verify_bundle.verify(folder)
    for line in lines:
        (console if line.startswith(("OK", "manifest", "bundle intact")) else err_console).print(
            line, markup=False
        )
    if not ok:
        raise typer.Exit(1)


@case_app.command("open")
@friendly_errors
def case_open(
    number: str,
    title: str = typer.Option(..., "--title"),
    fir: str | None = typer.Option(None, "--fir", help="FIR number"),
    officer: list[str] = typer.Option([], "--officer", help="An officer of the case (repeat)"),
    actor: str = ACTOR,
) -> None:
    """Open a case."""
    ctx = open_context()
    with ctx.db.session() as session:
        cases.create(
            session, CaseIn(number=number, title=title, fir_number=fir, officers=officer), actor=actor
        )
    console.print(f"case {number} opened")


@case_app.command("add")
@friendly_errors
def case_add(
    number: str,
    ref_id: str = typer.Argument(..., help="The evidence's id (a challan's number)"),
    kind: str = typer.Option(
        "bodyworn", "--kind", help="bodyworn, clip, plate_read, face_match, challan, violation"
    ),
    note: str = typer.Option("", "--note"),
    actor: str = ACTOR,
) -> None:
    """Add evidence to an open case (it is held while the case is open)."""
    ctx = open_context()
    with ctx.db.session() as session:
        cases.add_item(session, number, kind=kind, ref_id=ref_id, actor=actor, note=note)
    console.print(f"{kind} {ref_id} added to case {number}")


@case_app.command("remove")
@friendly_errors
def case_remove(
    number: str,
    ref_id: str,
    kind: str = typer.Option("bodyworn", "--kind"),
    reason: str = typer.Option(..., "--reason"),
    actor: str = ACTOR,
) -> None:
    """Take evidence out of a case."""
    ctx = open_context()
    with ctx.db.session() as session:
        cases.remove_item(session, number, kind=kind, ref_id=ref_id, reason=reason, actor=actor)
    console.print(f"{kind} {ref_id} taken out of case {number}")


@case_app.command("close")
@friendly_errors
def case_close(number: str, reason: str = typer.Option(..., "--reason"), actor: str = ACTOR) -> None:
    """Close a case: its hold ends and its evidence follows its own retention."""
    ctx = open_context()
    with ctx.db.session() as session:
        cases.close(session, number, reason=reason, actor=actor)
    console.print(f"case {number} closed; its evidence follows its own retention again")


@case_app.command("show")
@friendly_errors
def case_show(number: str, json_output: bool = JSON) -> None:
    """Show a case and its evidence."""
    ctx = open_context()
    with ctx.db.session() as session:
        shown = cases.out(session, cases.get(session, number))
    if json_output:
        print_json(shown.model_dump(mode="json"))
        return
    console.print(
        f"[bold]{shown.number}[/] {shown.title} (FIR {shown.fir_number or '–'}), {shown.status}; "
        f"officers: {', '.join(shown.officers) or '–'}; hold: {shown.hold_id or 'none'}"
    )
    table = Table("kind", "id", "added", "by", "note")
    for i in shown.items:
        table.add_row(i.kind, i.ref_id, f"{i.added_at:%Y-%m-%d %H:%M}", i.added_by, i.note)
    console.print(table)


@case_app.command("list")
@friendly_errors
def case_list(
    status: str | None = typer.Option(None, help="open or closed"), json_output: bool = JSON
) -> None:
    """List cases."""
    ctx = open_context()
    with ctx.db.session() as session:
        shown = [cases.out(session, c) for c in cases.list_cases(session, status=status)]
    if json_output:
        print_json([c.model_dump(mode="json") for c in shown])
        return
    table = Table("case", "title", "FIR", "status", "items", "opened")
    for c in shown:
        table.add_row(
            c.number, c.title, c.fir_number or "", c.status, str(len(c.items)), f"{c.created_at:%Y-%m-%d}"
        )
    console.print(table)
