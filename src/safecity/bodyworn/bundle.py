"""Court bundles: the originals, a manifest of their SHA-256 digests, custody reports and a verifier.

A bundle is a folder anyone can check without SafeCity: `python3 verify.py` inside it (standard
library only) recomputes every digest against `manifest.json` and `SHA256SUMS`. The manifest's own
digest goes into each item's custody log and the audit chain, so a manifest edited to match edited
files shows too. Items marked "do not disclose" are refused by name; originals are copied byte for
byte and hashed on the way, so a stored file that no longer matches its digest stops the bundle.

    manifest = write_bundle(ctx, out=Path("/media/usb/CASE-2026-0112"), case="CASE-2026-0112",
                            actor="inspector.rana", reason="disclosure to the trial court")
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safecity import __version__
from safecity.audit import service as audit
from safecity.bodyworn import cases, custody, verify_bundle
from safecity.bodyworn import service as items
from safecity.bodyworn.models import BodyWornItem
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import Conflict, Forbidden, InvalidInput
from safecity.core.ids import new_id

README = """SafeCity court bundle {id}

files/      the original recordings, byte for byte as they were received
custody/    the chain-of-custody report of each recording (PDF)
manifest.json   what is in the bundle: each file's SHA-256, size and what it is
SHA256SUMS      the same digests, for `sha256sum -c SHA256SUMS`
verify.py       checks the bundle with Python 3 alone: python3 verify.py

Made {at} by {by} with SafeCity {version}. Reason: {reason}
The SHA-256 of manifest.json is recorded in the custody log of each recording.
"""


def _copy_hashing(source: Path, target: Path) -> str:
    digest = hashlib.sha256()
    with source.open("rb") as inp, target.open("wb") as out:
        for block in iter(lambda: inp.read(4 * 1024**2), b""):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def _describe(item: BodyWornItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "filename": item.filename,
        "officer": item.officer,
        "device": item.device,
        "recorded_at": item.recorded_at.isoformat() if item.recorded_at else None,
        "duration_s": item.duration_s,
        "categories": item.categories,
        "received_at": item.ingested_at.isoformat(),
        "source": item.source,
        "derived_from": item.derived_from,
        "operations": item.operations,
    }


def select_items(
    ctx: Context, *, item_ids: Sequence[str] = (), case: str | None = None
) -> tuple[list[str], dict[str, Any] | None]:
    """Returns the items a bundle holds (named, or a case's body-worn items) and the case, if any."""
    with ctx.db.session() as session:
        chosen = list(dict.fromkeys(item_ids))
        about = None
        if case:
            row = cases.get(session, case)
            about = {
                "number": row.number,
                "title": row.title,
                "fir": row.fir_number,
                "status": row.status,
                "officers": row.officers,
            }
            chosen += [
                i.ref_id
                for i in cases.items_of(session, row.id)
                if i.kind == "bodyworn" and i.ref_id not in chosen
            ]
        if not chosen:
            raise InvalidInput("a bundle needs items", hint="name items, or a case with body-worn evidence")
        for item_id in chosen:
            item = items.get(session, item_id)
            if item.status != "active":
                raise Conflict(f"item {item_id} is {item.status}", hint="restore it or leave it out")
            if item.do_not_disclose:
                raise Forbidden(
                    f"item {item_id} is marked do not disclose", hint="leave it out of the bundle"
                )
    return chosen, about


def write_bundle(
    ctx: Context,
    *,
    out: Path,
    actor: str,
    reason: str,
    item_ids: Sequence[str] = (),
    case: str | None = None,
) -> dict[str, Any]:
    """Writes a court bundle to `out` (a new or empty folder); returns its manifest."""
    if len(reason.strip()) < 3:
        raise InvalidInput("a bundle needs a reason", hint="say whom it is for: court, prosecution, defence")
    if out.exists() and any(out.iterdir()):
        raise InvalidInput(f"{out} is not empty", hint="give a new folder")
    chosen, about = select_items(ctx, item_ids=item_ids, case=case)
    bundle_id = new_id()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".bundle-{bundle_id}-", dir=out))
    files: list[dict[str, Any]] = []
    try:
        (staging / "files").mkdir()
        (staging / "custody").mkdir()
        for item_id in chosen:
            with ctx.db.session() as session:
                item = items.get(session, item_id)
                source = ctx.media.path(item.ref)
                name = f"files/{item.id}_{Path(item.filename).name}"
                found = _copy_hashing(source, staging / name)
                if found != item.sha256:
                    raise Conflict(
                        f"the stored original of item {item.id} no longer matches its digest",
                        hint=f"run `safecity evidence verify {item.id}`; the bundle was not written",
                    )
                files.append(
                    {
                        "path": name,
                        "sha256": found,
                        "bytes": item.bytes,
                        "what": "original",
                        "item": _describe(item),
                    }
                )
                custody.record(
                    session, item.id, actor=actor, action="export", reason=reason, bundle=bundle_id
                )
            with ctx.db.session() as session:
                item = items.get(session, item_id)
                report = custody.report_pdf(
                    item,
                    custody.entries_of(session, item.id),
                    holds=items.holds_of(session, item),
                    cases=[n for n, _ in items.cases_of(session, [item.id]).get(item.id, [])],
                    generated_by=actor,
                )
            report_name = f"custody/{item_id}.pdf"
            (staging / report_name).write_bytes(report)
            files.append(
                {
                    "path": report_name,
                    "sha256": hashlib.sha256(report).hexdigest(),
                    "bytes": len(report),
                    "what": "custody report",
                    "item": {"id": item_id},
                }
            )
        made_at = utcnow()
        manifest = {
            "bundle": bundle_id,
            "made_at": made_at.isoformat(),
            "made_by": actor,
            "reason": reason,
            "software": f"SafeCity {__version__}",
            "case": about,
            "files": files,
        }
        (staging / verify_bundle.MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        (staging / verify_bundle.SUMS).write_text("".join(f"{f['sha256']}  {f['path']}\n" for f in files))
        shutil.copyfile(Path(verify_bundle.__file__), staging / "verify.py")
        (staging / "README.txt").write_text(
            README.format(id=bundle_id, at=made_at.isoformat(), by=actor, version=__version__, reason=reason)
        )
        manifest_sha = verify_bundle.sha256_of(staging / verify_bundle.MANIFEST)
        for entry in staging.iterdir():
            entry.rename(out / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with ctx.db.session() as session:
        audit.record(
            session,
            actor=actor,
            action="bodyworn.bundle",
            target=f"bundle:{bundle_id}",
            detail={"reason": reason, "case": case, "items": chosen, "manifest_sha256": manifest_sha},
        )
        for item_id in chosen:
            custody.record(
                session,
                item_id,
                actor=actor,
                action="bundle",
                reason=reason,
                bundle=bundle_id,
                manifest_sha256=manifest_sha,
            )
    manifest["manifest_sha256"] = manifest_sha
    return manifest
