"""The account pages: users (admins), your account, and the pages that put a pending step right.

A user who must change a one-time password or set up a second factor can open only the page that
does it; every other page sends them there (here, and `web.pages.render_page` for the others).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from safecity.accounts.auth import PENDING_PAGES, SESSION_COOKIE, pending_for, principal_for
from safecity.accounts.models import SECOND_FACTOR_ROLES, Role
from safecity.accounts.service import Pending
from safecity.core.errors import SafeCityError
from safecity.core.http import Ctx

router = APIRouter(include_in_schema=False)


def _render(
    request: Request,
    ctx: Ctx,
    name: str,
    *allowed: Pending,
    permission: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """Renders an account page to a signed-in user holding `permission` (any, when None) whose pending
    step, if any, is in `allowed`; strangers go to /login, a pending step to its page."""
    from safecity.web.pages import nav_links, permissions_of, templates

    token = request.cookies.get(SESSION_COOKIE)
    try:
        principal = principal_for(ctx, token or "")
    except SafeCityError:
        return RedirectResponse("/login", status_code=303)
    pending = pending_for(ctx, principal)
    if pending is not None and pending not in allowed:
        return RedirectResponse(PENDING_PAGES[pending], status_code=303)
    permissions = permissions_of(principal.role)
    context: dict[str, Any] = {
        "bus": ctx.settings.bus,
        "me": {"username": principal.username, "role": principal.role, "permissions": permissions},
        "nav": nav_links(permissions),
        "path": request.url.path,
        "pending": pending or "",
        "second_factor_required": ctx.settings.totp_required and principal.role in SECOND_FACTOR_ROLES,
        **(extra or {}),
    }
    if permission is not None and not principal.can(permission):
        context["needed"] = permission
        return templates.TemplateResponse(request, "forbidden.html", context, status_code=403)
    return templates.TemplateResponse(request, name, context)


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, ctx: Ctx) -> Response:
    """Admins: every user, creating them, disabling, enabling, one-time passwords, their tokens."""
    roles = [role.value for role in Role]
    return _render(request, ctx, "accounts_users.html", permission="users:admin", extra={"roles": roles})


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, ctx: Ctx) -> Response:
    """Your password, second factor, sessions and API tokens."""
    hours = ctx.settings.session_token_max_hours
    return _render(request, ctx, "accounts_profile.html", extra={"token_hours": f"{hours:g}"})


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, ctx: Ctx) -> Response:
    """Choosing a new password (the first page after signing in with a one-time password)."""
    return _render(request, ctx, "accounts_password.html", "password", "second_factor")


@router.get("/account/second-factor", response_class=HTMLResponse)
def second_factor_page(request: Request, ctx: Ctx) -> Response:
    """Setting up an authenticator app (the first page for a role that must have one)."""
    return _render(request, ctx, "accounts_second_factor.html", "second_factor")
