"""Sign-in, sign-out, tokens and users over HTTP; `require(permission)` guards every other route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from safecity.accounts import permissions as permissions_map
from safecity.accounts import service
from safecity.accounts.models import LoginIn, TokenOut, User, UserIn, UserOut
from safecity.accounts.service import Principal
from safecity.audit import service as audit
from safecity.core.db import get_or_raise
from safecity.core.errors import Forbidden, Unauthorized
from safecity.core.http import Ctx, DbSession

SESSION_COOKIE = "safecity_session"
_bearer = HTTPBearer(auto_error=False)

router = APIRouter(prefix="/api", tags=["accounts"])


def client_address(request: Request) -> str:
    """Returns the caller's address for rate limiting."""
    return request.client.host if request.client else "unknown"


def current_principal(
    request: Request,
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Returns the signed-in caller from a bearer token or the session cookie."""
    token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized(
            "sign-in required", hint="sign in at /login or send 'Authorization: Bearer <token>'"
        )
    # A short session of its own: on SQLite a transaction holds the write lock, and the route's
    # session must not wait behind the check that let it in.
    with ctx.db.session() as session:
        principal = service.principal_for_token(session, token)
    request.state.principal = principal
    return principal


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


@router.post(
    "/login", response_model=TokenOut, summary="Sign in; sets the session cookie and returns a token"
)
def login(body: LoginIn, request: Request, response: Response, ctx: Ctx) -> TokenOut:
    client = client_address(request)
    with ctx.db.session() as session:
        user = service.authenticate(
            session,
            username=body.username,
            password=body.password,
            client=client,
            per_minute=ctx.settings.login_attempts_per_minute,
        )
        if user is not None:
            secret, row = service.issue_token(session, user, kind="session", hours=ctx.settings.session_hours)
            token = TokenOut(token=secret, expires_at=row.expires_at, role=user.role, username=user.username)
    if user is None:
        with ctx.db.session() as session:
            service.record_login_failure(session, username=body.username, client=client)
        raise Unauthorized("wrong user name or password", hint="check both and try again")
    response.set_cookie(
        SESSION_COOKIE,
        token.token,
        httponly=True,
        samesite="strict",
        max_age=int(ctx.settings.session_hours * 3600),
        secure=request.url.scheme == "https",
    )
    return token


@router.post("/logout", status_code=204, summary="Sign out (revokes the session)")
def logout(request: Request, response: Response, session: DbSession) -> Response:
    token = request.cookies.get(SESSION_COOKIE) or request.headers.get("authorization", "").removeprefix(
        "Bearer "
    )
    if token:
        service.revoke_token(session, token)
    response.delete_cookie(SESSION_COOKIE)
    response.status_code = 204
    return response


@router.get("/me", response_model=UserOut, summary="The signed-in user")
def me(principal: Annotated[Principal, Depends(current_principal)], session: DbSession) -> UserOut:
    return UserOut.model_validate(get_or_raise(session, User, principal.user_id, what="user"))


@router.get("/users", response_model=list[UserOut], summary="Every user (admins)")
def users(
    session: DbSession, principal: Annotated[Principal, Depends(require("users:admin"))]
) -> list[UserOut]:
    rows = service.list_users(session)
    audit.record(session, actor=principal.username, action="users.list", detail={"users": len(rows)})
    return [UserOut.model_validate(u) for u in rows]


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user (admins)")
def create_user(
    body: UserIn, session: DbSession, principal: Annotated[Principal, Depends(require("users:admin"))]
) -> UserOut:
    return UserOut.model_validate(service.create_user(session, body, actor=principal.username))


@router.post("/tokens", response_model=TokenOut, status_code=201, summary="Issue an API token for yourself")
def create_token(
    session: DbSession,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(current_principal)],
    name: str = "api",
) -> TokenOut:
    user = get_or_raise(session, User, principal.user_id, what="user")
    secret, row = service.issue_token(
        session, user, kind="api", hours=ctx.settings.session_hours * 60, name=name
    )
    return TokenOut(token=secret, expires_at=row.expires_at, role=user.role, username=user.username)
