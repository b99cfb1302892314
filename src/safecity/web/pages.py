"""The command centre's pages: sign-in and the live operations view (served by the app, no CDN)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from safecity.accounts.api import SESSION_COOKIE, current_principal
from safecity.accounts.service import Principal
from safecity.core.http import Ctx

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
templates = Jinja2Templates(directory=WEB_DIR / "templates")

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {})


@router.get("/", response_class=HTMLResponse)
def command_centre(request: Request, ctx: Ctx) -> Response:
    if not request.cookies.get(SESSION_COOKIE):
        return RedirectResponse("/login", status_code=303)
    return _page(request, "index.html", ctx)


@router.get("/media/{ref}")
def media(ref: str, ctx: Ctx, principal: Annotated[Principal, Depends(current_principal)]) -> Response:
    """Serves a crop, frame or clip from the media store to signed-in users."""
    path = ctx.media.path(ref)
    if not path.exists():
        return Response(status_code=404, content=b"not in the media store (it may have passed its retention)")
    types = {"jpg": "image/jpeg", "png": "image/png", "mp4": "video/mp4", "pdf": "application/pdf"}
    return Response(
        path.read_bytes(),
        media_type=types.get(path.suffix.lstrip("."), "application/octet-stream"),
        headers={"Cache-Control": "private, max-age=86400, immutable"},
    )


def _page(request: Request, name: str, ctx: Ctx) -> Response:
    return templates.TemplateResponse(request, name, {"bus": ctx.settings.bus})
