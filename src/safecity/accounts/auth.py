"""Who is calling: the dependencies every route uses to admit a signed-in caller with a permission.

A user who signed in with a one-time password (or whose role must use a second factor and has none
yet) is admitted only by the few routes that let them put it right; every other route answers 403
"change your password first", and every page sends them to the page that does it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from safecity.accounts import permissions as permissions_map
from safecity.accounts import service
from safecity.accounts.service import (
    PasswordChangeRequired,
    Pending,
    Principal,
    SecondFactorSetupRequired,
)
from safecity.core.context import Context
from safecity.core.errors import Forbidden, Unauthorized
from safecity.core.http import Ctx, client_address

__all__ = [
    "DEVICE_COOKIE",
    "SESSION_COOKIE",
    "client_address",
    "current_principal",
    "pending_for",
    "principal_for",
    "require",
    "require_any",
    "signed_in",
]

SESSION_COOKIE = "safecity_session"
# A browser that has signed in to an account before: it is spared the account's sign-in delay.
DEVICE_COOKIE = "safecity_device"
_bearer = HTTPBearer(auto_error=False)

# Where each pending step is put right.
PENDING_PAGES: dict[str, str] = {"password": "/account/password", "second_factor": "/account/second-factor"}


def principal_for(ctx: Context, token: str) -> Principal:
    """Returns who holds `token` (a session or API token), in a short transaction of its own."""
    # On SQLite a transaction holds the write lock, and the route's session must not wait behind
    # the check that let it in.
    with ctx.db.session() as session:
        return service.principal_for_token(
            session, token, max_lifetime=timedelta(days=ctx.settings.token_max_days)
        )


def pending_for(ctx: Context, principal: Principal) -> Pending | None:
    """Returns what `principal` must do before anything else, under this process's settings."""
    return service.pending_step(principal, second_factor_required=ctx.settings.totp_required)


def _request_token(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str:
    token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized(
            "sign-in required", hint="sign in at /login or send 'Authorization: Bearer <token>'"
        )
    return token


def signed_in(*allowed: Pending) -> Callable[..., Principal]:
    """Returns a dependency admitting any signed-in caller whose pending step (if any) is in `allowed`."""

    def dependency(
        request: Request,
        ctx: Ctx,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = principal_for(ctx, _request_token(request, credentials))
        request.state.principal = principal
        pending = pending_for(ctx, principal)
        if pending == "password" and pending not in allowed:
            raise PasswordChangeRequired()
        if pending == "second_factor" and pending not in allowed:
            raise SecondFactorSetupRequired()
        return principal

    dependency.__name__ = "signed_in_" + "_".join(allowed) if allowed else "signed_in"
    return dependency


current_principal = signed_in()
current_principal.__doc__ = "Returns the signed-in caller from a bearer token or the session cookie."


def require(permission: str) -> Callable[..., Principal]:
    """Returns a dependency admitting only callers whose role holds `permission`."""

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(permission):
            raise Forbidden(
                f"your role ({principal.role}) may not do this (needs {permission})",
                hint="ask a supervisor or an admin",
            )
        return principal

    dependency.__name__ = f"require_{permission.replace(':', '_')}"
    return permissions_map.guards(dependency, permission)


def require_any(*permissions: str) -> Callable[..., Principal]:
    """Returns a dependency admitting callers whose role holds at least one of `permissions`."""

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not any(principal.can(p) for p in permissions):
            raise Forbidden(
                f"your role ({principal.role}) may not do this (needs one of {', '.join(permissions)})",
                hint="ask a supervisor or an admin",
            )
        return principal

    dependency.__name__ = "require_any_" + "_".join(p.replace(":", "_") for p in permissions)
    return permissions_map.guards(dependency, *permissions, any_of=True)
