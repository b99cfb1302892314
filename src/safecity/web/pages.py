"""The command centre's pages: sign-in, live operations, dispatch, video wall, dashboard and audit.

Pages are served by the app itself (no CDN: command centres are air-gapped). Each page checks the
signed-in user's role on the server; the navigation and buttons a role may not use are hidden, and
the API refuses them anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from safecity.accounts.api import SESSION_COOKIE, current_principal
from safecity.accounts.auth import PENDING_PAGES, pending_for, principal_for
from safecity.accounts.models import Role
from safecity.accounts.permissions import PERMISSIONS, SERVED_ELSEWHERE, media_allows
from safecity.accounts.service import Principal
from safecity.audit import service as audit
from safecity.core.clock import display_zone, format_moment
from safecity.core.errors import Forbidden, SafeCityError
from safecity.core.http import Ctx
from safecity.dispatch.field import service as field
from safecity.evidence import service as media_owners

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
templates = Jinja2Templates(directory=WEB_DIR / "templates")
# One time policy on the server's pages too: the zone for lib.js, and a filter for any time a template prints.
templates.env.globals["display_timezone"] = lambda: display_zone().key
templates.env.filters["local_time"] = format_moment

router = APIRouter(include_in_schema=False)

# The navigation bar: path, label, and the permissions any one of which shows the link (None: public).
NAV: list[tuple[str, str, str | None]] = [
    ("/", "Command centre", "alerts:read"),
    ("/dispatch", "Dispatch", "map:read"),
    ("/wall", "Video wall", "cameras:read"),
    ("/cameras", "Cameras", "cameras:read"),
    ("/dashboard", "Dashboard", "alerts:read"),
    ("/plates", "Plates", "plates:search|hotlist:write"),
    ("/watchlists", "Watch lists", "faces:search|watchlist:write|watchlist:approve"),
    ("/violations", "Violations", "challans:review"),
    ("/challans", "Challans", "challans:review|challans:admin"),
    ("/recordings", "Recordings", "recordings:read"),
    ("/evidence", "Body-worn", "bodycam:read|bodycam:upload"),
    ("/field", "Officer's phone", "field:respond"),
    ("/maintenance", "Maintenance", "maintenance:write"),
    ("/audit", "Audit", "audit:read"),
    ("/users", "Users", "users:admin"),
    ("/portal", "Citizen portal", None),
]


def permissions_of(role: str) -> list[str]:
    """Returns the permissions a role holds, sorted (empty for an unknown role)."""
    try:
        return sorted(PERMISSIONS[Role(role)])
    except ValueError:
        return []


def nav_links(permissions: list[str] | None) -> list[dict[str, str]]:
    """Returns the navigation links a user with `permissions` may follow (all when unknown)."""
    links = []
    for path, label, need in NAV:
        if permissions is None or need is None or any(p in permissions for p in need.split("|")):
            links.append({"path": path, "label": label, "perm": need or ""})
    return links


@router.get("/api/ui/me")
def ui_me(principal: Annotated[Principal, Depends(current_principal)]) -> JSONResponse:
    """The signed-in user, their role and permissions, for the pages to hide what the role cannot do."""
    return JSONResponse(
        {
            "username": principal.username,
            "role": principal.role,
            "permissions": permissions_of(principal.role),
        }
    )


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {})


@router.get("/", response_class=HTMLResponse)
def command_centre(request: Request, ctx: Ctx) -> Response:
    return render_page(request, ctx, "index.html", "alerts:read")


@router.get("/dispatch", response_class=HTMLResponse)
def dispatch_board(request: Request, ctx: Ctx) -> Response:
    return render_page(request, ctx, "dispatch.html", "map:read")


@router.get("/wall", response_class=HTMLResponse)
def video_wall(request: Request, ctx: Ctx) -> Response:
    return render_page(request, ctx, "wall.html", "cameras:read")


@router.get("/cameras", response_class=HTMLResponse)
def cameras_page(request: Request, ctx: Ctx) -> Response:
    """The registry and one camera's configuration: a form from its schema, saved as versions."""
    return render_page(request, ctx, "cameras.html", "cameras:read")


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, ctx: Ctx) -> Response:
    return render_page(request, ctx, "dashboard.html", "alerts:read")


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, ctx: Ctx) -> Response:
    return render_page(request, ctx, "audit.html", "audit:read")


@router.get("/media/{ref}")
def media(ref: str, ctx: Ctx, principal: Annotated[Principal, Depends(current_principal)]) -> Response:
    """Serves a stored crop, frame, clip or document to those its kind admits; every view is audited.

    What an object is comes from the rows that own it (a watch-list photo, a challan notice, a plate
    read's crop…), never from who asks; a ref nothing owns is answered like one never stored.
    """
    gone = Response(status_code=404, content=b"not in the media store (it may have passed its retention)")
    with ctx.db.session() as session:
        owners = media_owners.owners_of(session, ref)
        elsewhere = next((o for o in owners if o.kind in SERVED_ELSEWHERE), None)
        admitted = next((o for o in owners if media_allows(principal.role, o.kind)), None)
        if admitted is None and principal.can("field:respond"):
            # An officer on shift sees the pictures of the alerts their unit is sent to, and no others.
            admitted = field.photo_owner(session, principal.username, owners)
        if elsewhere is not None:
            admitted = None  # a hold on it must not open a door its own page keeps shut
        kinds = sorted({o.kind for o in owners})
        if owners and admitted is None:
            # A look at what one may not see is on record too: that is how curiosity is found.
            audit.record(
                session, actor=principal.username, action="media.refused", target=ref, detail={"kinds": kinds}
            )
    if not owners:
        return gone
    if elsewhere is not None:
        raise Forbidden(
            f"this {elsewhere.kind.replace('_', ' ')} object is not served here",
            hint=f"open it from {SERVED_ELSEWHERE[elsewhere.kind].format(owner=elsewhere.owner)}",
        )
    if admitted is None:
        raise Forbidden(
            f"your role ({principal.role}) may not see this {' or '.join(kinds).replace('_', ' ')}",
            hint="ask someone whose role works with it",
        )
    path = ctx.media.path(ref)
    if not path.exists():
        return gone
    with ctx.db.session() as session:
        audit.record(
            session,
            actor=principal.username,
            action="media.view",
            target=ref,
            detail={"kind": admitted.kind, "owner": admitted.owner},
        )
    types = {"jpg": "image/jpeg", "png": "image/png", "mp4": "video/mp4", "pdf": "application/pdf"}
    media_type = types.get(path.suffix.lstrip("."), "application/octet-stream")
    headers = {"Cache-Control": "private, max-age=600"}
    if ctx.media.is_sealed(ref):  # pictures and documents are encrypted at rest; video streams from disk
        return Response(ctx.media.get(ref), media_type=media_type, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


def render_page(request: Request, ctx: Ctx, name: str, permission: str | tuple[str, ...]) -> Response:
    """Renders a signed-in page (any of the permissions admits); strangers go to /login, others get 403."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return RedirectResponse("/login", status_code=303)
    try:
        principal = principal_for(ctx, token)
    except SafeCityError:
        return RedirectResponse("/login", status_code=303)
    pending = pending_for(ctx, principal)
    if pending is not None:  # a one-time password to change, or a second factor to set up, first
        return RedirectResponse(PENDING_PAGES[pending], status_code=303)
    permissions = permissions_of(principal.role)
    context: dict[str, Any] = {
        "bus": ctx.settings.bus,
        "me": {"username": principal.username, "role": principal.role, "permissions": permissions},
        "nav": nav_links(permissions),
        "path": request.url.path,
    }
    wanted = (permission,) if isinstance(permission, str) else permission
    if not any(p in permissions for p in wanted):
        context["needed"] = " or ".join(wanted)
        return templates.TemplateResponse(request, "forbidden.html", context, status_code=403)
    return templates.TemplateResponse(request, name, context)
