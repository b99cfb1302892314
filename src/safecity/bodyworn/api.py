"""Body-worn evidence over HTTP: items, playback, custody, holds, retention, uploads, cases, shares, pages.

Every route that shows footage or changes an item writes its custody log; the recipient's side of a
share (`/share/{token}`, `/api/share/{token}/…`) is answered by the link's own credential (its token,
access code and the browser it was bound to), not by a staff sign-in.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from safecity.accounts.api import require, require_any
from safecity.accounts.permissions import page
from safecity.accounts.service import Principal
from safecity.bodyworn import cases, custody, integrity, nearby, redaction, retention, sharing, uploads
from safecity.bodyworn import service as items
from safecity.bodyworn.models import (
    CaseIn,
    CaseItemIn,
    CaseOut,
    ClassifyIn,
    CustodyEntry,
    HoldItemIn,
    ItemDetail,
    ItemOut,
    NearbyOut,
    ReasonIn,
    RedactionIn,
    RedactionOut,
    RetentionOut,
    ShareIn,
    ShareOut,
    UploadIn,
    UploadOut,
)
from safecity.core.clock import Moment
from safecity.core.errors import InvalidInput
from safecity.core.http import Ctx, DbSession, is_https
from safecity.evidence.models import HoldOut

router = APIRouter(tags=["body-worn evidence"])
API = "/api/bodyworn"

Reader = Annotated[Principal, Depends(require("bodycam:read"))]
Lister = Annotated[Principal, Depends(require_any("bodycam:read", "bodycam:upload"))]
CustodyReader = Annotated[Principal, Depends(require_any("bodycam:read", "audit:read"))]
Uploader = Annotated[Principal, Depends(require("bodycam:upload"))]
Sharer = Annotated[Principal, Depends(require("bodycam:share"))]
Manager = Annotated[Principal, Depends(require("bodycam:manage"))]
Holder = Annotated[Principal, Depends(require("evidence:hold"))]
Redactor = Annotated[Principal, Depends(require("bodycam:redact"))]
FootageReader = Annotated[Principal, Depends(require("recordings:read"))]
VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
    ".ts": "video/mp2t",
}
ITEM_PAGE = page("/evidence/items/{item_id}", "bodycam:read")
REDACT_PAGE = page("/evidence/items/{item_id}/redact", "bodycam:redact")
CASE_PAGE = page("/evidence/cases/{number}", "bodycam:read")


def _video(ctx: Ctx, ref: str, *, filename: str | None = None) -> FileResponse:
    path = ctx.media.path(ref)
    headers = {"Cache-Control": "private, no-store"}
    return FileResponse(
        path,
        media_type=VIDEO_TYPES.get(path.suffix, "application/octet-stream"),
        headers=headers,
        filename=filename,
        content_disposition_type="attachment" if filename else "inline",
    )


# --- items -------------------------------------------------------------------------------------------


@router.get(API + "/items", response_model=list[ItemOut], summary="Body-worn items, filtered")
def list_items(
    session: DbSession,
    ctx: Ctx,
    principal: Lister,
    officer: str | None = None,
    device: str | None = None,
    category: str | None = None,
    case: str | None = None,
    since: Moment | None = None,
    until: Moment | None = None,
    status: Annotated[str, Query(pattern="^(active|deleted|purged|any)$")] = "active",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[ItemOut]:
    """Items newest recording first; an uploader without `bodycam:read` sees only what they brought."""
    rows = items.list_items(
        session,
        principal,
        officer=officer,
        device=device,
        category=category,
        case=case,
        since=since,
        until=until,
        status=status,
        limit=limit,
    )
    return items.out(session, ctx.settings, rows)


@router.get(
    API + "/items/{item_id}", response_model=ItemDetail, summary="One item (a view, in its custody log)"
)
def get_item(item_id: str, session: DbSession, ctx: Ctx, principal: Reader, reason: str = "") -> ItemDetail:
    item = items.get_for(session, item_id, principal, action="view", reason=reason[:500])
    return items.detail(session, ctx.settings, item)


@router.get(
    API + "/items/{item_id}/video", summary="Play the original (range requests; streams are in custody)"
)
def play(item_id: str, session: DbSession, ctx: Ctx, principal: Reader) -> FileResponse:
    item = items.get_for(session, item_id, principal, action="")
    custody.record_stream(session, item.id, actor=principal.username)
    return _video(ctx, item.ref)


@router.get(
    API + "/items/{item_id}/cameras",
    response_model=NearbyOut,
    summary="The fixed cameras that saw the same place at the same time (in the custody log)",
)
def nearby_cameras(
    item_id: str,
    session: DbSession,
    ctx: Ctx,
    principal: Reader,
    _: FootageReader,
    within_m: Annotated[float | None, Query(gt=0, le=5000, description="Metres from the track")] = None,
    recorded_only: bool = True,
) -> NearbyOut:
    """Cameras within `within_m` (default `bodyworn_nearby_m`) of the officer's track during the clip,
    nearest first, with their recorded spans in the clip's time; `recorded_only=false` lists those that
    recorded nothing of the moments the officer was near too. Play one with `/api/recordings/cameras/…`."""
    item = items.get_for(session, item_id, principal, action="")
    distance = within_m or ctx.settings.bodyworn_nearby_m
    found = nearby.nearby_cameras(session, item, within_m=distance, recorded_only=recorded_only)
    custody.record(
        session,
        item.id,
        actor=principal.username,
        action="nearby_cameras",
        within_m=distance,
        cameras=[c.camera_id for c in found.cameras][:50],
    )
    return found


@router.get(API + "/items/{item_id}/download", summary="Download the original (with a reason, in custody)")
def download(
    item_id: str, session: DbSession, ctx: Ctx, principal: Sharer, reason: Annotated[str, Query(min_length=3)]
) -> FileResponse:
    item = items.get_for(session, item_id, principal, action="download", reason=reason[:500])
    if item.do_not_disclose:
        raise InvalidInput(f"item {item_id} is marked do not disclose", hint="it is watched here, not copied")
    return _video(ctx, item.ref, filename=f"{item.id}_{Path(item.filename).name}")


@router.get(API + "/items/{item_id}/custody", response_model=list[CustodyEntry], summary="The custody log")
def custody_log(item_id: str, session: DbSession, _: CustodyReader) -> list[CustodyEntry]:
    items.get(session, item_id)
    return custody.entries_of(session, item_id)


@router.get(API + "/items/{item_id}/custody.pdf", summary="The custody report (PDF)", response_class=Response)
def custody_report(item_id: str, session: DbSession, principal: CustodyReader) -> Response:
    item = items.get(session, item_id)
    custody.record(session, item.id, actor=principal.username, action="report", reason="custody report (PDF)")
    cases_in = [n for n, _ in items.cases_of(session, [item.id]).get(item.id, [])]
    pdf = custody.report_pdf(
        item,
        custody.entries_of(session, item.id),
        holds=items.holds_of(session, item),
        cases=cases_in,
        generated_by=principal.username,
    )
    headers = {
        "Content-Disposition": f'inline; filename="custody-{item.id}.pdf"',
        "Cache-Control": "no-store",
    }
    return Response(pdf, media_type="application/pdf", headers=headers)


@router.post(API + "/items/{item_id}/verify", summary="Hash the original again now (a mismatch alerts)")
def verify(item_id: str, ctx: Ctx, principal: CustodyReader) -> dict[str, str]:
    return {"item_id": item_id, "outcome": integrity.verify_item(ctx, item_id, actor=principal.username)}


@router.post(
    API + "/items/{item_id}/classify", response_model=ItemDetail, summary="Categories, access, retention"
)
def classify(item_id: str, body: ClassifyIn, session: DbSession, ctx: Ctx, principal: Manager) -> ItemDetail:
    item = items.classify(session, ctx.settings, item_id, body, actor=principal.username)
    return items.detail(session, ctx.settings, item)


@router.post(API + "/items/{item_id}/holds", response_model=HoldOut, status_code=201, summary="Legal hold")
def hold(item_id: str, body: HoldItemIn, session: DbSession, principal: Holder) -> HoldOut:
    placed = items.hold(
        session, item_id, reference=body.reference, reason=body.reason, actor=principal.username
    )
    return HoldOut.model_validate(placed)


@router.post(
    API + "/items/{item_id}/holds/{hold_id}/release", response_model=HoldOut, summary="Release a hold"
)
def release(item_id: str, hold_id: str, body: ReasonIn, session: DbSession, principal: Holder) -> HoldOut:
    released = items.release_hold(session, item_id, hold_id, reason=body.reason, actor=principal.username)
    return HoldOut.model_validate(released)


@router.post(
    API + "/items/{item_id}/delete", response_model=ItemOut, summary="Delete (restorable for a while)"
)
def delete(item_id: str, body: ReasonIn, session: DbSession, ctx: Ctx, principal: Manager) -> ItemOut:
    item = items.delete(session, ctx.settings, item_id, reason=body.reason, actor=principal.username)
    return items.out(session, ctx.settings, [item])[0]


@router.post(API + "/items/{item_id}/restore", response_model=ItemOut, summary="Restore a deleted item")
def restore(item_id: str, body: ReasonIn, session: DbSession, ctx: Ctx, principal: Manager) -> ItemOut:
    item = items.restore(session, item_id, reason=body.reason, actor=principal.username)
    return items.out(session, ctx.settings, [item])[0]


@router.post(API + "/retention/run", response_model=RetentionOut, summary="Apply body-worn retention now")
def run_retention(ctx: Ctx, _: Manager) -> RetentionOut:
    return retention.apply(ctx)


# --- redaction -----------------------------------------------------------------------------------------


@router.post(
    API + "/items/{item_id}/redactions",
    response_model=RedactionOut,
    status_code=202,
    summary="Ask for a redacted copy (a background job; the result is a new item)",
)
def request_redaction(
    item_id: str, body: RedactionIn, session: DbSession, principal: Redactor
) -> RedactionOut:
    """Faces, plates, drawn boxes (following their object), muted sound; poll the redaction for progress."""
    item = items.get_for(session, item_id, principal, action="")
    return RedactionOut.model_validate(redaction.request(session, item.id, body, actor=principal.username))


@router.get(
    API + "/items/{item_id}/redactions", response_model=list[RedactionOut], summary="An item's redactions"
)
def item_redactions(item_id: str, session: DbSession, principal: Reader) -> list[RedactionOut]:
    item = items.get_for(session, item_id, principal, action="")
    return [RedactionOut.model_validate(r) for r in redaction.of_item(session, item.id)]


@router.get(API + "/redactions/{job_id}", response_model=RedactionOut, summary="Where a redaction stands")
def get_redaction(job_id: str, session: DbSession, principal: Reader) -> RedactionOut:
    job = redaction.get(session, job_id)
    items.get_for(session, job.item_id, principal, action="")
    return RedactionOut.model_validate(job)


# --- shares --------------------------------------------------------------------------------------------


@router.post(
    API + "/items/{item_id}/shares",
    response_model=ShareOut,
    status_code=201,
    summary="Share with one recipient",
)
def share(item_id: str, body: ShareIn, request: Request, session: DbSession, principal: Sharer) -> ShareOut:
    """Returns the link and the access code once: give the code to the recipient separately."""
    item = items.get_for(session, item_id, principal, action="")
    made, token, code = sharing.create(session, item.id, body, actor=principal.username)
    shown = ShareOut.model_validate(made)
    shown.url, shown.code = str(request.base_url).rstrip("/") + f"/share/{token}", code
    return shown


@router.post(API + "/shares/{share_id}/revoke", response_model=ShareOut, summary="End a share now")
def revoke(share_id: str, body: ReasonIn, session: DbSession, principal: Sharer) -> ShareOut:
    return ShareOut.model_validate(
        sharing.revoke(session, share_id, reason=body.reason, actor=principal.username)
    )


class CodeIn(BaseModel):
    """The access code given with the link."""

    code: str = Field(default="", max_length=20)


def _binding(request: Request, token: str, session: DbSession) -> str | None:
    share = sharing.by_token(session, token)
    return request.cookies.get(sharing.cookie_name(share))


@router.post("/api/share/{token}/open", summary="Open a shared recording (recipient: the link and its code)")
def open_share(
    token: str, body: CodeIn, request: Request, response: Response, session: DbSession
) -> dict[str, Any]:
    binding = _binding(request, token, session)
    found, secret = sharing.open_share(session, token, code=body.code or None, binding=binding)
    if secret is not None:
        response.set_cookie(
            sharing.cookie_name(found),
            secret,
            httponly=True,
            samesite="strict",
            secure=is_https(request),
            max_age=int((found.expires_at - datetime.now(found.expires_at.tzinfo)).total_seconds()),
        )
    item = items.get(session, found.item_id)
    return {
        "recipient": found.recipient,
        "recipient_role": found.recipient_role,
        "mode": found.mode,
        "expires_at": found.expires_at,
        "item": {
            "id": item.id,
            "recorded_at": item.recorded_at,
            "duration_s": item.duration_s,
            "officer": item.officer,
            "sha256": item.sha256,
        },
        "video": f"/api/share/{token}/video",
        "download": f"/api/share/{token}/download" if found.mode == "download" else None,
        "copy_ready": found.copy_ref is not None,
    }


@router.get("/api/share/{token}/video", summary="Play a shared recording (recipient)")
def share_video(token: str, request: Request, session: DbSession, ctx: Ctx) -> FileResponse:
    found, item = sharing.admitted(session, token, _binding(request, token, session))
    ref = found.copy_ref if found.mode == "download" and found.copy_ref else item.ref
    custody.record_stream(session, item.id, actor=f"share:{found.id} ({found.recipient})")
    return _video(ctx, ref)


@router.get("/api/share/{token}/download", summary="Download the recipient's watermarked copy")
def share_download(token: str, request: Request, session: DbSession, ctx: Ctx) -> FileResponse:
    found, item = sharing.admitted(session, token, _binding(request, token, session))
    if found.mode != "download":
        raise InvalidInput("this link is for viewing only", hint="ask the sender for a download link")
    if found.copy_ref is None:
        raise InvalidInput("your copy is still being prepared", hint="try again in a few minutes")
    custody.record(
        session,
        item.id,
        actor=f"share:{found.id} ({found.recipient})",
        action="share_download",
        reason=found.reason,
        sha256=found.copy_sha256,
    )
    return _video(ctx, found.copy_ref, filename=f"{item.id}_for_{found.recipient_role}.mp4")


@router.get("/share/{token}", response_class=HTMLResponse, include_in_schema=False)
def share_page(token: str, request: Request) -> Response:
    from safecity.web.pages import templates

    return templates.TemplateResponse(request, "bodyworn_share.html", {"token": token})


# --- uploads -------------------------------------------------------------------------------------------

TUS = {"Tus-Resumable": "1.0.0", "Cache-Control": "no-store"}


def _upload_headers(status: UploadOut) -> dict[str, str]:
    return {**TUS, "Upload-Offset": str(status.offset), "Upload-Length": str(status.length)}


@router.post(API + "/uploads", response_model=UploadOut, status_code=201, summary="Open a resumable upload")
def open_upload(
    body: UploadIn, response: Response, session: DbSession, ctx: Ctx, principal: Uploader
) -> UploadOut:
    """Then PATCH chunks to its url with Upload-Offset; HEAD (or GET) it after a dropped connection."""
    made = uploads.create(ctx, session, body, actor=principal.username)
    status = uploads.out(ctx, made)
    response.headers.update({**_upload_headers(status), "Location": status.url})
    return status


@router.get(API + "/uploads/{upload_id}", response_model=UploadOut, summary="Where an upload stands")
def upload_status(
    upload_id: str, response: Response, session: DbSession, ctx: Ctx, principal: Uploader
) -> UploadOut:
    status = uploads.out(ctx, uploads.get(session, upload_id, actor=principal.username))
    response.headers.update(_upload_headers(status))
    return status


@router.head(API + "/uploads/{upload_id}", include_in_schema=False)
def upload_offset(upload_id: str, session: DbSession, ctx: Ctx, principal: Uploader) -> Response:
    status = uploads.out(ctx, uploads.get(session, upload_id, actor=principal.username))
    return Response(status_code=200, headers=_upload_headers(status))


@router.patch(
    API + "/uploads/{upload_id}",
    response_model=UploadOut,
    summary="Send a chunk at Upload-Offset (the last one registers the item)",
    openapi_extra={
        "requestBody": {
            "content": {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}
        }
    },
)
async def upload_chunk(
    upload_id: str,
    request: Request,
    response: Response,
    ctx: Ctx,
    principal: Uploader,
    upload_offset: Annotated[int, Header(alias="Upload-Offset", ge=0)],
) -> UploadOut:
    status, _ = await uploads.append(
        ctx, upload_id, upload_offset, request.stream(), actor=principal.username
    )
    response.headers.update(_upload_headers(status))
    return status


@router.delete(API + "/uploads/{upload_id}", response_model=UploadOut, summary="Abandon an unfinished upload")
def abandon_upload(upload_id: str, session: DbSession, ctx: Ctx, principal: Uploader) -> UploadOut:
    upload = uploads.get(session, upload_id, actor=principal.username)
    uploads.abandon(ctx, session, upload, actor=principal.username, reason="abandoned by its sender")
    return uploads.out(ctx, upload)


# --- cases ---------------------------------------------------------------------------------------------


@router.get(API + "/cases", response_model=list[CaseOut], summary="Cases")
def list_cases(session: DbSession, _: Reader, status: str | None = None) -> list[CaseOut]:
    return [cases.out(session, c) for c in cases.list_cases(session, status=status)]


@router.post(API + "/cases", response_model=CaseOut, status_code=201, summary="Open a case")
def open_case(body: CaseIn, session: DbSession, principal: Manager) -> CaseOut:
    return cases.out(session, cases.create(session, body, actor=principal.username))


@router.get(API + "/cases/{number}", response_model=CaseOut, summary="A case and its evidence")
def get_case(number: str, session: DbSession, _: Reader) -> CaseOut:
    return cases.out(session, cases.get(session, number))


@router.post(API + "/cases/{number}/items", response_model=CaseOut, summary="Add evidence to an open case")
def add_to_case(number: str, body: CaseItemIn, session: DbSession, principal: Manager) -> CaseOut:
    cases.add_item(
        session, number, kind=body.kind, ref_id=body.ref_id, actor=principal.username, note=body.note
    )
    return cases.out(session, cases.get(session, number))


@router.post(
    API + "/cases/{number}/items/{kind}/{ref_id}/remove", response_model=CaseOut, summary="Take evidence out"
)
def remove_from_case(
    number: str, kind: str, ref_id: str, body: ReasonIn, session: DbSession, principal: Manager
) -> CaseOut:
    cases.remove_item(session, number, kind=kind, ref_id=ref_id, reason=body.reason, actor=principal.username)
    return cases.out(session, cases.get(session, number))


@router.post(API + "/cases/{number}/close", response_model=CaseOut, summary="Close a case (its hold ends)")
def close_case(number: str, body: ReasonIn, session: DbSession, principal: Manager) -> CaseOut:
    return cases.out(session, cases.close(session, number, reason=body.reason, actor=principal.username))


@router.post(API + "/cases/{number}/reopen", response_model=CaseOut, summary="Reopen a closed case")
def reopen_case(number: str, body: ReasonIn, session: DbSession, principal: Manager) -> CaseOut:
    return cases.out(session, cases.reopen(session, number, reason=body.reason, actor=principal.username))


# --- pages ---------------------------------------------------------------------------------------------


@router.get("/evidence", response_class=HTMLResponse, include_in_schema=False)
def items_page(request: Request, ctx: Ctx) -> Response:
    from safecity.web.pages import render_page

    return render_page(request, ctx, "bodyworn_items.html", ("bodycam:read", "bodycam:upload"))


@router.get("/evidence/items/{item_id}", response_class=HTMLResponse, include_in_schema=False)
def item_page(item_id: str, request: Request, ctx: Ctx) -> Response:
    from safecity.web.pages import render_page

    return render_page(request, ctx, "bodyworn_item.html", ITEM_PAGE)


@router.get("/evidence/cases/{number}", response_class=HTMLResponse, include_in_schema=False)
def case_page(number: str, request: Request, ctx: Ctx) -> Response:
    from safecity.web.pages import render_page

    return render_page(request, ctx, "bodyworn_case.html", CASE_PAGE)


@router.get("/evidence/items/{item_id}/redact", response_class=HTMLResponse, include_in_schema=False)
def redact_page(item_id: str, request: Request, ctx: Ctx) -> Response:
    from safecity.web.pages import render_page

    return render_page(request, ctx, "bodyworn_redact.html", REDACT_PAGE)
