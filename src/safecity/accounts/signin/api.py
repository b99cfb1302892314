"""Sign-in and sign-out over HTTP: the session cookie, and the device cookie of a browser seen before."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from safecity.accounts import service as accounts
from safecity.accounts.auth import DEVICE_COOKIE, SESSION_COOKIE, client_address
from safecity.accounts.models import LoginIn, TokenOut
from safecity.accounts.signin import service
from safecity.core.db import after_commit
from safecity.core.http import Ctx, DbSession, is_https

router = APIRouter()


@router.post(
    "/login",
    response_model=TokenOut,
    summary="Sign in; sets the session cookie and returns a token",
    responses={
        401: {"description": "Wrong credentials, or `second_factor_required`: send `code` as well"},
        429: {"description": "Too many attempts from this address, or the account's delay is running"},
    },
)
def login(body: LoginIn, request: Request, response: Response, ctx: Ctx) -> TokenOut:
    """One attempt per request; after a few failures an account's attempts from new browsers wait a
    delay that doubles, while a browser that signed in to it before (device cookie) does not."""
    device = request.cookies.get(DEVICE_COOKIE)
    signed = service.sign_in(
        ctx.db,
        ctx.settings,
        username=body.username,
        password=body.password,
        code=body.code,
        address=client_address(request),
        device_secret=device if device and len(device) <= 100 else None,
    )
    secure = is_https(request)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token.token,
        httponly=True,
        samesite="strict",
        max_age=int(ctx.settings.session_hours * 3600),
        secure=secure,
    )
    response.set_cookie(
        DEVICE_COOKIE,
        signed.device_secret,
        httponly=True,
        samesite="strict",
        max_age=service.DEVICE_DAYS * 86400,
        secure=secure,
    )
    return signed.token


@router.post("/logout", status_code=204, summary="Sign out (revokes the session)")
def logout(request: Request, response: Response, session: DbSession, ctx: Ctx) -> Response:
    token = request.cookies.get(SESSION_COOKIE) or request.headers.get("authorization", "").removeprefix(
        "Bearer "
    )
    token_id = accounts.revoke_token(session, token) if token else None
    live = ctx.live
    if token_id is not None and live is not None:

        def close_sockets() -> None:
            # The live sockets this session opened close with it (other serves' at their next check).
            live.close_session(token_id)

        after_commit(session, close_sockets)
    response.delete_cookie(SESSION_COOKIE)
    response.status_code = 204
    return response
