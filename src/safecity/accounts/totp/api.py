"""Your second factor over HTTP: set up by QR code, confirm, renew recovery codes, turn off."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from safecity.accounts import service as accounts
from safecity.accounts.auth import current_principal, signed_in
from safecity.accounts.models import CodeIn, PasswordIn, RecoveryCodesOut, SecondFactorSetupOut, User
from safecity.accounts.service import Principal
from safecity.accounts.totp import service
from safecity.core.db import get_or_raise
from safecity.core.errors import Forbidden, NotFound
from safecity.core.http import Ctx, DbSession

router = APIRouter(prefix="/account/second-factor")

# Setting up the second factor is what a role that must have one is sent to do first.
Enrolling = Annotated[Principal, Depends(signed_in("second_factor"))]
SignedIn = Annotated[Principal, Depends(current_principal)]
QR_PATH = "/api/account/second-factor/qr.svg"


def _me(session: Session, principal: Principal) -> User:
    user = session.get(User, principal.user_id, with_for_update=True)
    if user is None:
        raise NotFound("your account no longer exists", hint="sign in again")
    return user


def _check_password(ctx: Ctx, principal: Principal, password: str) -> None:
    with ctx.db.session() as session:
        password_hash = get_or_raise(session, User, principal.user_id, what="user").password_hash
    if not accounts.verify_password(password_hash, password):
        raise Forbidden("the password is not right", hint="type the password you signed in with")


@router.post("/setup", response_model=SecondFactorSetupOut, summary="Start setting up an authenticator app")
def setup(principal: Enrolling, session: DbSession, ctx: Ctx) -> SecondFactorSetupOut:
    """Makes a new secret; scan the QR code (or type the secret), then confirm with the app's code."""
    user = _me(session, principal)
    secret = service.begin_setup(session, user)
    return SecondFactorSetupOut(
        secret=secret, uri=service.provisioning_uri(user, issuer=ctx.settings.totp_issuer), qr=QR_PATH
    )


@router.get(
    "/qr.svg",
    response_class=Response,
    summary="The QR code of the setup under way (SVG)",
    responses={200: {"content": {"image/svg+xml": {}}}},
)
def qr(principal: Enrolling, session: DbSession, ctx: Ctx) -> Response:
    user = get_or_raise(session, User, principal.user_id, what="user")
    svg = service.qr_svg(service.provisioning_uri(user, issuer=ctx.settings.totp_issuer))
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.post("/confirm", response_model=RecoveryCodesOut, summary="Turn the second factor on")
def confirm(body: CodeIn, principal: Enrolling, session: DbSession) -> RecoveryCodesOut:
    """Checks the app's first code; returns ten recovery codes, shown this once."""
    return RecoveryCodesOut(codes=service.confirm_setup(session, _me(session, principal), body.code))


@router.post("/recovery-codes", response_model=RecoveryCodesOut, summary="Replace your recovery codes")
def recovery_codes(body: PasswordIn, principal: SignedIn, ctx: Ctx) -> RecoveryCodesOut:
    _check_password(ctx, principal, body.password)
    with ctx.db.session() as session:
        return RecoveryCodesOut(codes=service.new_recovery_codes(session, _me(session, principal)))


@router.post("/disable", status_code=204, summary="Turn your second factor off")
def disable(body: PasswordIn, principal: SignedIn, ctx: Ctx) -> Response:
    _check_password(ctx, principal, body.password)
    with ctx.db.session() as session:
        service.turn_off(session, _me(session, principal), required=ctx.settings.totp_required)
    return Response(status_code=204)
