"""Accounts over HTTP: yourself (password, tokens), users (admins), and the sign-in and TOTP routes.

`require(permission)` (from `accounts.auth`, re-exported here) guards every other domain's routes.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from safecity.accounts import service
from safecity.accounts.auth import (
    SESSION_COOKIE,
    client_address,
    current_principal,
    pending_for,
    require,
    require_any,
    signed_in,
)
from safecity.accounts.models import (
    AuthToken,
    MeOut,
    NewUserIn,
    NewUserOut,
    PasswordChangeIn,
    PasswordResetOut,
    TokenIn,
    TokenInfo,
    TokenOut,
    User,
    UserIn,
    UserOut,
)
from safecity.accounts.pages import router as pages_router
from safecity.accounts.service import Principal
from safecity.accounts.signin.api import router as signin_router
from safecity.accounts.totp.api import router as totp_router
from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.db import after_commit, get_or_raise
from safecity.core.errors import Forbidden, InvalidInput
from safecity.core.http import Ctx, DbSession
from safecity.core.params import RowId

__all__ = ["SESSION_COOKIE", "client_address", "current_principal", "require", "require_any", "router"]

api = APIRouter(prefix="/api", tags=["accounts"])
api.include_router(signin_router)
api.include_router(totp_router)

UsersAdmin = Annotated[Principal, Depends(require("users:admin"))]
# The routes that put a pending step right admit a caller who still has one.
Anyone = Annotated[Principal, Depends(signed_in("password", "second_factor"))]


@api.get("/me", response_model=MeOut, summary="The signed-in user, and what they must do first")
def me(principal: Anyone, session: DbSession, ctx: Ctx) -> MeOut:
    user = get_or_raise(session, User, principal.user_id, what="user")
    return MeOut.model_validate(user).model_copy(update={"pending": pending_for(ctx, principal)})


@api.post("/account/password", status_code=204, summary="Change your own password")
def change_password(body: PasswordChangeIn, principal: Anyone, ctx: Ctx) -> Response:
    """Checks the current password, sets the new one and ends your other browser sessions."""
    with ctx.db.session() as session:
        current_hash = get_or_raise(session, User, principal.user_id, what="user").password_hash
    # Argon2 outside any transaction: a check holds a core for a fifth of a second.
    if not service.verify_password(current_hash, body.current_password):
        raise Forbidden("the current password is not right", hint="type the password you signed in with")
    with ctx.db.session() as session:
        service.change_password(
            session, principal.user_id, new_password=body.new_password, keep_token_id=principal.token_id
        )
    return Response(status_code=204)


# --- users (admins) ------------------------------------------------------------------------------


@api.get("/users", response_model=list[UserOut], summary="Every user (admins)")
def users(session: DbSession, principal: UsersAdmin) -> list[UserOut]:
    rows = service.list_users(session)
    audit.record(session, actor=principal.username, action="users.list", detail={"users": len(rows)})
    return [UserOut.model_validate(u) for u in rows]


@api.post("/users", response_model=NewUserOut, status_code=201, summary="Create a user (admins)")
def create_user(body: NewUserIn, session: DbSession, principal: UsersAdmin) -> NewUserOut:
    """Without a password a one-time password is generated, returned this once, and must be changed."""
    one_time = body.password is None
    password = body.password or service.generate_password()
    user = service.create_user(
        session,
        UserIn(username=body.username, full_name=body.full_name, role=body.role, password=password),
        actor=principal.username,
        must_change_password=one_time or body.must_change_password,
    )
    return NewUserOut.model_validate(user).model_copy(
        update={"one_time_password": password if one_time else None}
    )


def close_live_sockets(ctx: Context, *, username: str | None = None, token_id: int | None = None) -> None:
    """Closes this process's live sockets of a user, or of one session or token (any thread)."""
    # LiveHub.close_for / close_session arrive with the live-socket work: until then, a socket ends at
    # its next check of the session.
    close_for = getattr(ctx.live, "close_for", None)
    close_session = getattr(ctx.live, "close_session", None)
    if username is not None and close_for is not None:
        close_for(username)
    if token_id is not None and close_session is not None:
        close_session(token_id)


@api.post("/users/{username}/disable", response_model=UserOut, summary="Disable a user (admins)")
def disable_user(username: str, session: DbSession, ctx: Ctx, principal: UsersAdmin) -> UserOut:
    """Ends the user's sessions, tokens and live sockets at once; their data stays."""
    user = service.set_active(session, username, active=False, actor=principal.username)
    after_commit(session, partial(close_live_sockets, ctx, username=username))
    return UserOut.model_validate(user)


@api.post("/users/{username}/enable", response_model=UserOut, summary="Enable a disabled user (admins)")
def enable_user(username: str, session: DbSession, principal: UsersAdmin) -> UserOut:
    return UserOut.model_validate(
        service.set_active(session, username, active=True, actor=principal.username)
    )


@api.post(
    "/users/{username}/reset-password",
    response_model=PasswordResetOut,
    summary="Give a user a one-time password (admins)",
)
def reset_password(
    username: str,
    session: DbSession,
    ctx: Ctx,
    principal: UsersAdmin,
    clear_second_factor: Annotated[
        bool, Query(description="Also remove the user's authenticator (a lost phone)")
    ] = False,
) -> PasswordResetOut:
    """The user must change it at the next sign-in; their sessions, tokens and sockets end now."""
    secret = service.reset_password(
        session, username, actor=principal.username, clear_second_factor=clear_second_factor
    )
    after_commit(session, partial(close_live_sockets, ctx, username=username))
    return PasswordResetOut(username=username, one_time_password=secret)


# --- tokens --------------------------------------------------------------------------------------


@api.get("/tokens", response_model=list[TokenInfo], summary="Your valid sessions and API tokens")
def list_tokens(
    session: DbSession,
    principal: Annotated[Principal, Depends(current_principal)],
    username: Annotated[str | None, Query(description="Another user's (admins)")] = None,
) -> list[TokenInfo]:
    user_id = principal.user_id
    if username is not None and username != principal.username:
        if not principal.can("users:admin"):
            raise Forbidden("only admins see other users' tokens", hint="leave out ?username")
        user_id = service.get_by_username(session, username).id
    return [
        TokenInfo(
            id=row.id,
            username=name,
            name=row.name,
            kind=row.kind,
            origin=row.origin,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            current=row.id == principal.token_id,
        )
        for row, name in service.live_tokens(session, user_id)
    ]


@api.post("/tokens", response_model=TokenOut, status_code=201, summary="Mint an API token for yourself")
def create_token(
    body: TokenIn,
    session: DbSession,
    ctx: Ctx,
    principal: Annotated[Principal, Depends(current_principal)],
) -> TokenOut:
    """Lives at most `token_max_days`; minted from a web session, at most `session_token_max_hours`;
    minted with another token, no longer than that token."""
    hours = min(body.days or ctx.settings.token_max_days, ctx.settings.token_max_days) * 24
    if principal.via == "session":
        hours = min(hours, ctx.settings.session_token_max_hours)
        origin = "session"
    else:
        parent = get_or_raise(session, AuthToken, principal.token_id, what="token")
        hours = min(hours, (parent.expires_at - utcnow()) / timedelta(hours=1))
        origin = "token"
    if hours <= 0:
        raise InvalidInput("the token you called with is about to expire", hint="sign in again")
    user = get_or_raise(session, User, principal.user_id, what="user")
    secret, row = service.mint_api_token(
        session, user, hours=hours, name=body.name, origin=origin, actor=principal.username
    )
    return TokenOut(token=secret, expires_at=row.expires_at, role=user.role, username=user.username)


@api.delete("/tokens/{token_id}", status_code=204, summary="Revoke a session or token (yours; admins: any)")
def revoke_token(
    token_id: RowId, session: DbSession, ctx: Ctx, principal: Annotated[Principal, Depends(current_principal)]
) -> Response:
    service.revoke_token_id(session, token_id, principal=principal)
    after_commit(session, partial(close_live_sockets, ctx, token_id=token_id))
    return Response(status_code=204)


# The domain's one router: the API above and the account pages.
router = APIRouter()
router.include_router(api)
router.include_router(pages_router)
