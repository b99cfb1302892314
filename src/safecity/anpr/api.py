"""ANPR over HTTP: plate-history search, hot lists, sensitive areas, settings, and the `/plates` page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from safecity.accounts.api import require, require_any
from safecity.accounts.service import Principal
from safecity.anpr import areas, service
from safecity.anpr.models import (
    AnprConfig,
    AreaIn,
    AreaOut,
    AreaVisitOut,
    HotlistEntryIn,
    HotlistEntryOut,
    HotlistEntryPatch,
    HotlistImportReport,
    HotlistMatchOut,
    PlateReadOut,
    SearchQuery,
    SearchResult,
    normalise_plate,
)
from safecity.audit import service as audit
from safecity.core.errors import InvalidInput
from safecity.core.http import Ctx, DbSession
from safecity.core.importer import ImportLimits
from safecity.core.params import Offset

api = APIRouter(prefix="/api/plates", tags=["anpr"])
pages = APIRouter(include_in_schema=False)


Searcher = Annotated[Principal, Depends(require("plates:search"))]
ListReader = Annotated[Principal, Depends(require_any("hotlist:write", "plates:search"))]
ListWriter = Annotated[Principal, Depends(require("hotlist:write"))]
AreaReader = Annotated[Principal, Depends(require("cameras:read"))]
Admin = Annotated[Principal, Depends(require("settings:write"))]


# --- plate reads ----------------------------------------------------------------------------------


@api.get("/reads", response_model=SearchResult, summary="Search a plate's history (exact, partial, wildcard)")
def search_reads(
    query: Annotated[SearchQuery, Query()], session: DbSession, principal: Searcher
) -> SearchResult:
    return service.search_reads(session, query, actor=principal.username)


@api.get("/reads/{read_id}", response_model=PlateReadOut, summary="One stored plate read")
def get_read(read_id: str, session: DbSession, principal: Searcher) -> PlateReadOut:
    return PlateReadOut.model_validate(service.get_read(session, read_id, actor=principal.username))


# --- hot lists ------------------------------------------------------------------------------------


@api.get("/hotlist", response_model=list[HotlistEntryOut], summary="Hot-list entries, newest first")
def list_hotlist(
    session: DbSession,
    principal: ListReader,
    list_name: Annotated[str | None, Query(pattern="^(stolen|wanted|bolo)$")] = None,
    plate: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Offset = 0,
) -> list[HotlistEntryOut]:
    rows = service.list_hotlist(session, list_name=list_name, plate=plate, limit=limit, offset=offset)
    audit.record(
        session,
        actor=principal.username,
        action="anpr.hotlist_list",
        detail={"list": list_name, "plate": plate, "offset": offset, "entries": len(rows)},
    )
    return [HotlistEntryOut.model_validate(r) for r in rows]


@api.get("/hotlist/summary", summary="How many entries each hot list holds")
def hotlist_summary(session: DbSession, _: ListReader) -> dict[str, int]:
    return service.count_hotlist(session)


@api.get("/hotlist/check", response_model=list[HotlistMatchOut], summary="Which entries a plate matches")
def check_plate(
    plate: Annotated[str, Query(min_length=1, max_length=20)], session: DbSession, principal: ListReader
) -> list[HotlistMatchOut]:
    return service.check_plate(session, plate, actor=principal.username)


@api.post("/hotlist", response_model=HotlistEntryOut, status_code=201, summary="Put a vehicle on a hot list")
def add_hotlist_entry(body: HotlistEntryIn, session: DbSession, principal: ListWriter) -> HotlistEntryOut:
    entry = service.add_hotlist_entry(session, actor=principal.username, **body.model_dump())
    return HotlistEntryOut.model_validate(entry)


@api.patch(
    "/hotlist/{entry_id}", response_model=HotlistEntryOut, summary="Change a hot-list entry (with why)"
)
def update_hotlist_entry(
    entry_id: str, body: HotlistEntryPatch, session: DbSession, principal: ListWriter
) -> HotlistEntryOut:
    return HotlistEntryOut.model_validate(
        service.update_hotlist_entry(session, entry_id, body, actor=principal.username)
    )


@api.delete("/hotlist/{entry_id}", status_code=204, summary="Take a vehicle off a hot list (with why)")
def remove_hotlist_entry(
    entry_id: str,
    why: Annotated[str, Query(min_length=3, max_length=300)],
    session: DbSession,
    principal: ListWriter,
) -> None:
    service.remove_hotlist_entry(session, entry_id, actor=principal.username, why=why)


@api.post("/hotlist/import", response_model=HotlistImportReport, summary="Import a CSV (all or nothing)")
def import_hotlist(
    file: UploadFile, session: DbSession, ctx: Ctx, principal: ListWriter, upsert: bool = False
) -> HotlistImportReport:
    report = service.import_hotlist_csv(
        session,
        file.file,
        actor=principal.username,
        upsert=upsert,
        limits=ImportLimits.from_settings(ctx.settings),
    )
    if report.errors:
        raise InvalidInput(
            f"{len(report.errors)} problem(s); nothing was imported: " + "; ".join(report.errors[:50]),
            hint="fix the lines named and import the file again",
        )
    return report


# --- sensitive areas ------------------------------------------------------------------------------


@api.get("/areas", response_model=list[AreaOut], summary="Sensitive areas and their rules")
def list_areas(session: DbSession, principal: AreaReader) -> list[AreaOut]:
    rows = areas.list_areas(session)
    # An area lists the plates it watches for.
    audit.record(session, actor=principal.username, action="anpr.areas_list", detail={"areas": len(rows)})
    return [AreaOut.model_validate(a) for a in rows]


@api.post("/areas", response_model=AreaOut, status_code=201, summary="Define a sensitive area")
def create_area(body: AreaIn, session: DbSession, principal: ListWriter) -> AreaOut:
    return AreaOut.model_validate(areas.create_area(session, body, actor=principal.username))


@api.put("/areas/{area_id}", response_model=AreaOut, summary="Replace an area's cameras, list and rules")
def update_area(area_id: str, body: AreaIn, session: DbSession, principal: ListWriter) -> AreaOut:
    return AreaOut.model_validate(areas.update_area(session, area_id, body, actor=principal.username))


@api.delete("/areas/{area_id}", status_code=204, summary="Remove a sensitive area")
def delete_area(area_id: str, session: DbSession, principal: ListWriter) -> None:
    areas.delete_area(session, area_id, actor=principal.username)


@api.get("/visits", response_model=list[AreaVisitOut], summary="Entries and exits logged in sensitive areas")
def list_visits(
    session: DbSession,
    principal: ListReader,
    area_id: str | None = None,
    plate: Annotated[str | None, Query(max_length=20)] = None,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[AreaVisitOut]:
    rows = areas.list_visits(
        session,
        actor=principal.username,
        area_id=area_id,
        plate=normalise_plate(plate) if plate else None,
        open_only=open_only,
        limit=limit,
    )
    return [AreaVisitOut.model_validate(v) for v in rows]


# --- settings -------------------------------------------------------------------------------------


@api.get("/config", response_model=AnprConfig, summary="Hot-list matching and cloned-plate settings")
def get_config(session: DbSession, _: ListReader) -> AnprConfig:
    return service.get_config(session)


@api.put("/config", response_model=AnprConfig, summary="Change the ANPR settings (admins)")
def set_config(body: AnprConfig, session: DbSession, principal: Admin) -> AnprConfig:
    return service.set_config(session, body, actor=principal.username)


# --- page -----------------------------------------------------------------------------------------


@pages.get("/plates", response_class=HTMLResponse)
def plates_page(request: Request, principal: ListReader) -> Response:
    from safecity.web.pages import templates

    return templates.TemplateResponse(
        request,
        "anpr_plates.html",
        {
            "can_search": principal.can("plates:search"),
            "can_write": principal.can("hotlist:write"),
            "can_configure": principal.can("settings:write"),
        },
    )


# Mounted by the server: the JSON API under /api/plates and the page at /plates.
router = APIRouter()
router.include_router(api)
router.include_router(pages)
