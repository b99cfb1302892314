"""The optional second factor: TOTP codes (RFC 6238, pyotp) from an authenticator app, and recovery codes.

Enrolment is two steps: `begin_setup` keeps a new secret beside the user, the app scans its QR code,
and `confirm_setup` turns it on once the app's first code checks out. Each accepted code's time step
is remembered, so a code seen over someone's shoulder cannot be used a second time.
"""

from __future__ import annotations

import hashlib
import io
import secrets
import time

import pyotp
import qrcode
import qrcode.image.svg
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from safecity.accounts.models import SECOND_FACTOR_ROLES, RecoveryCode, User
from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.errors import Conflict, InvalidInput

RECOVERY_CODES = 10
# One 30-second step either side of now: phone clocks drift a little.
STEP_WINDOW = 1
# Recovery codes: 16 characters of base32 (80 bits), shown in groups of four.
_CODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def new_recovery_code() -> str:
    """Returns a random recovery code, e.g. `K7QM-2XRA-PL4D-ZW6N`."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def begin_setup(session: Session, user: User) -> str:
    """Keeps a new TOTP secret beside the user (not yet in force) and returns it."""
    if user.second_factor:
        raise Conflict(
            "a second factor is already set up", hint="turn it off first to move it to another phone"
        )
    user.totp_secret = pyotp.random_base32()
    return user.totp_secret


def provisioning_uri(user: User, *, issuer: str) -> str:
    """Returns the otpauth:// URI an authenticator app reads from the QR code."""
    if not user.totp_secret:
        raise InvalidInput("no second factor is being set up", hint="start the setup first")
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.username, issuer_name=issuer)


def qr_svg(uri: str) -> bytes:
    """Returns the QR code of `uri` as an SVG document (served by the app: no inline images under the CSP)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    out = io.BytesIO()
    image.save(out)
    return out.getvalue()


def _accepted_step(user: User, code: str, now: float) -> int | None:
    """Returns the time step `code` is valid for (and was not used at), or None."""
    digits = "".join(ch for ch in code if ch.isdigit())
    if not user.totp_secret or len(digits) != 6 or len(digits) != len(code.replace(" ", "")):
        return None
    totp = pyotp.TOTP(user.totp_secret)
    current = totp.timecode(now)
    for step in range(current - STEP_WINDOW, current + STEP_WINDOW + 1):
        if secrets.compare_digest(totp.generate_otp(step), digits):
            return step if user.totp_last_step is None or step > user.totp_last_step else None
    return None


def _replace_recovery_codes(session: Session, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(user_id=user.id, code_hash=_code_hash(_normalise(c))) for c in codes)
    return codes


def confirm_setup(session: Session, user: User, code: str) -> list[str]:
    """Turns the second factor on once `code` matches the new secret; returns recovery codes (shown once)."""
    if user.second_factor:
        raise Conflict("a second factor is already set up", hint="nothing to confirm")
    if not user.totp_secret:
        raise InvalidInput("no second factor is being set up", hint="start the setup first")
    step = _accepted_step(user, code, time.time())
    if step is None:
        raise InvalidInput(
            "that code does not match",
            hint="type the 6 digits the app shows now; check the phone's clock is set automatically",
        )
    user.totp_last_step = step
    user.totp_enabled_at = utcnow()
    codes = _replace_recovery_codes(session, user)
    audit.record(session, actor=user.username, action="totp.enable", target=user.username)
    return codes


def check_code(session: Session, user: User, code: str) -> str | None:
    """Returns how `code` proved the second factor ("totp" or "recovery_code"), or None when it does not.

    The caller holds the user's row locked, so two requests cannot both spend one code.
    """
    step = _accepted_step(user, code.strip(), time.time())
    if step is not None:
        user.totp_last_step = step
        return "totp"
    normalised = _normalise(code)
    if len(normalised) != 16:
        return None
    row = session.scalars(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _code_hash(normalised),
            RecoveryCode.used_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    row.used_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=user.username,
        action="totp.recovery_code_used",
        target=user.username,
        detail={"left": recovery_codes_left(session, user)},
    )
    return "recovery_code"


def recovery_codes_left(session: Session, user: User) -> int:
    """Returns how many unused recovery codes the user has."""
    stmt = select(func.count()).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    return session.scalar(stmt) or 0


def new_recovery_codes(session: Session, user: User) -> list[str]:
    """Replaces the user's recovery codes with a new set (returned, shown once)."""
    if not user.second_factor:
        raise Conflict("no second factor is set up", hint="set one up first")
    codes = _replace_recovery_codes(session, user)
    audit.record(session, actor=user.username, action="totp.recovery_codes_renewed", target=user.username)
    return codes


def turn_off(session: Session, user: User, *, required: bool) -> None:
    """Turns the user's second factor off (a role that must use one cannot)."""
    if required and user.role in SECOND_FACTOR_ROLES:
        raise Conflict(
            f"your role ({user.role}) must use a second factor",
            hint="to move it to another phone, ask an admin to reset it, then set it up again",
        )
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit.record(session, actor=user.username, action="totp.disable", target=user.username)
