"""Accounts: users and their passwords (Argon2), and the sessions and tokens they sign in with."""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from safecity.accounts.models import SECOND_FACTOR_ROLES, AuthToken, RecoveryCode, Role, User, UserIn
from safecity.accounts.permissions import allows
from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.db import get_by
from safecity.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized

PASSWORD_HASHER = PasswordHasher()
# Each Argon2 check holds 64 MiB and a core for a fifth of a second: a burst of sign-ins queues here
# instead of taking the server's memory. Browsers that signed in before have slots of their own, so
# a flood of guesses from strangers cannot keep the owner waiting in that queue.
_ARGON2_SLOTS = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
_KNOWN_BROWSER_SLOTS = threading.BoundedSemaphore(max(1, (os.cpu_count() or 2) // 2))
# A hash to verify against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = PASSWORD_HASHER.hash("not-a-real-password")

TOKEN_KINDS = frozenset({"session", "api"})
# A token's last use is written at most this often (one write per request would be a write per request).
LAST_USED_EVERY = timedelta(minutes=5)

Pending = Literal["password", "second_factor"]


class PasswordChangeRequired(Forbidden):
    """The user signed in with a one-time password and must choose their own before anything else."""

    code = "password_change_required"

    def __init__(self) -> None:
        super().__init__(
            "change your password first",
            hint="you signed in with a one-time password: choose your own at /account/password "
            "(POST /api/account/password)",
        )


class SecondFactorSetupRequired(Forbidden):
    """The user's role must use a second factor, and this user has not set one up yet."""

    code = "second_factor_setup_required"

    def __init__(self) -> None:
        super().__init__(
            "set up your authenticator app first",
            hint="your role signs in with a second factor: set it up at /account/second-factor",
        )


@dataclass(frozen=True)
class Principal:
    """Who is calling: the signed-in user, their role, and the token they called with."""

    user_id: int
    username: str
    role: str
    token_id: int | None = None
    # The kind of that token: "session" (a browser) or "api".
    via: str = "api"
    must_change_password: bool = False
    second_factor: bool = False

    def can(self, permission: str) -> bool:
        """Returns whether the role holds `permission` (nothing until a one-time password is changed)."""
        return not self.must_change_password and allows(self.role, permission)


SYSTEM = Principal(user_id=0, username="system", role=Role.admin)


def pending_step(principal: Principal, *, second_factor_required: bool) -> Pending | None:
    """Returns what the principal must do before anything else: a new password, TOTP, or nothing."""
    if principal.must_change_password:
        return "password"
    if second_factor_required and principal.role in SECOND_FACTOR_ROLES and not principal.second_factor:
        return "second_factor"
    return None


# --- passwords -----------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """Returns the Argon2 hash of `password`."""
    with _ARGON2_SLOTS:
        return PASSWORD_HASHER.hash(password)


def verify_password(password_hash: str | None, password: str, *, known_browser: bool = False) -> bool:
    """Returns whether `password` matches `password_hash`; a missing hash takes as long and fails.

    `known_browser`: the attempt comes from a browser that signed in to the account before (it skips
    the queue the strangers wait in).
    """
    with _KNOWN_BROWSER_SLOTS if known_browser else _ARGON2_SLOTS:
        try:
            matched = PASSWORD_HASHER.verify(password_hash or _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return False
    return matched and password_hash is not None


def generate_password() -> str:
    """Returns a random one-time password that is easy to type once (16 characters)."""
    return secrets.token_urlsafe(12)


def _check_new_password(user: User, new_password: str) -> None:
    if len(new_password) < 10:
        raise InvalidInput("the new password is too short", hint="use at least 10 characters")
    if new_password.lower() == user.username.lower():
        raise InvalidInput("the new password is your user name", hint="choose something else")


# --- users ---------------------------------------------------------------------------------------


def create_user(session: Session, data: UserIn, *, actor: str, must_change_password: bool = False) -> User:
    """Creates a user with an Argon2-hashed password (a one-time password: `must_change_password`)."""
    user = User(
        username=data.username,
        full_name=data.full_name,
        role=data.role.value,
        password_hash=hash_password(data.password),
        must_change_password=must_change_password,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"user {data.username!r} already exists", hint="choose another user name") from None
    audit.record(
        session,
        actor=actor,
        action="user.create",
        target=data.username,
        detail={"role": data.role, "one_time_password": must_change_password},
    )
    return user


def list_users(session: Session) -> list[User]:
    """Returns every user, by name."""
    return list(session.scalars(select(User).order_by(User.username)))


def get_by_username(session: Session, username: str) -> User:
    """Returns the user called `username`, or raises NotFound."""
    user = get_by(session, User, username=username)
    if user is None:
        raise NotFound(f"user {username!r} does not exist", hint="check the user name (safecity users list)")
    return user


def change_password(
    session: Session, user_id: int, *, new_password: str, keep_token_id: int | None = None
) -> None:
    """Sets the user's own new password (the old one already checked); ends their other browser sessions."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None or not user.active:
        raise Unauthorized("this account is disabled", hint="ask an admin")
    _check_new_password(user, new_password)
    if verify_password(user.password_hash, new_password):
        raise InvalidInput("the new password is the one you have", hint="choose a different one")
    user.password_hash = hash_password(new_password)
    user.must_change_password = False
    user.password_changed_at = utcnow()
    ended = revoke_all(session, user.id, kinds={"session"}, except_id=keep_token_id)
    audit.record(
        session, actor=user.username, action="user.password_change", target=user.username,
        detail={"sessions_ended": ended},
    )  # fmt: skip


def reset_password(session: Session, username: str, *, actor: str, clear_second_factor: bool = False) -> str:
    """Gives the user a one-time password (returned, shown once) and ends every session and token."""
    user = get_by_username(session, username)
    secret = generate_password()
    user.password_hash = hash_password(secret)
    user.must_change_password = True
    user.failed_logins = 0
    user.next_login_at = None
    if clear_second_factor:
        user.totp_secret = None
        user.totp_enabled_at = None
        user.totp_last_step = None
        session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    ended = revoke_all(session, user.id)
    audit.record(
        session,
        actor=actor,
        action="user.password_reset",
        target=username,
        detail={"tokens_ended": ended, "second_factor_cleared": clear_second_factor},
    )
    return secret


def set_active(session: Session, username: str, *, active: bool, actor: str) -> User:
    """Enables or disables a user; disabling ends every session and token at once."""
    user = get_by_username(session, username)
    if not active and user.active and user.role == Role.admin:
        admins = session.scalar(
            select(func.count()).where(
                User.role == Role.admin.value, User.active.is_(True), User.id != user.id
            )
        )
        if not admins:
            raise Conflict(
                f"{username!r} is the last active admin",
                hint="enable or create another admin first, or nobody could manage users",
            )
    user.active = active
    ended = 0 if active else revoke_all(session, user.id)
    audit.record(
        session,
        actor=actor,
        action="user.enable" if active else "user.disable",
        target=username,
        detail={"tokens_ended": ended} if not active else {},
    )
    return user


# --- sessions and tokens -------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session, user: User, *, kind: str, hours: float, name: str = "", origin: str = "login"
) -> tuple[str, AuthToken]:
    """Issues a session or API token; returns the secret (shown once) and its record."""
    if kind not in TOKEN_KINDS:
        raise InvalidInput(f"unknown token kind {kind!r}", hint="use 'session' or 'api'")
    secret = secrets.token_urlsafe(32)
    row = AuthToken(
        user_id=user.id,
        kind=kind,
        token_hash=_token_hash(secret),
        name=name,
        origin=origin,
        expires_at=utcnow() + timedelta(hours=hours),
    )
    session.add(row)
    session.flush()
    return secret, row


def mint_api_token(
    session: Session, user: User, *, hours: float, name: str, origin: str, actor: str
) -> tuple[str, AuthToken]:
    """Issues a named API token (audited); returns the secret (shown once) and its record."""
    secret, row = issue_token(session, user, kind="api", hours=hours, name=name, origin=origin)
    audit.record(
        session,
        actor=actor,
        action="token.create",
        target=user.username,
        detail={"token_id": row.id, "name": name, "origin": origin, "expires_at": row.expires_at},
    )
    return secret, row


def principal_for_token(session: Session, token: str, *, max_lifetime: timedelta | None = None) -> Principal:
    """Returns who holds `token`, or raises Unauthorized when it is unknown, expired, revoked or too old.

    `max_lifetime` refuses a token minted longer ago than that, whatever its own expiry says (tokens
    minted before the limit existed, or before it was lowered).
    """
    row = get_by(session, AuthToken, token_hash=_token_hash(token))
    now = utcnow()
    if row is None or row.revoked or row.kind not in TOKEN_KINDS or row.expires_at < now:
        raise Unauthorized("your session has expired or is not valid", hint="sign in again")
    if max_lifetime is not None and row.created_at + max_lifetime < now:
        raise Unauthorized(
            "this token is older than the longest lifetime allowed",
            hint="mint a new one (POST /api/tokens) and revoke this one",
        )
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise Unauthorized("this account is disabled", hint="ask an admin")
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        row.last_used_at = now
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        token_id=row.id,
        via=row.kind,
        must_change_password=user.must_change_password,
        second_factor=user.second_factor,
    )


def revoke_token(session: Session, token: str) -> int | None:
    """Revokes a session or token by its secret (sign-out); returns its id (None: no such token)."""
    row = get_by(session, AuthToken, token_hash=_token_hash(token))
    if row is None:
        return None
    row.revoked = True
    return row.id


def revoke_all(
    session: Session, user_id: int, *, kinds: set[str] | None = None, except_id: int | None = None
) -> int:
    """Revokes the user's live sessions and tokens (of `kinds`, all when None); returns how many."""
    stmt = update(AuthToken).where(
        AuthToken.user_id == user_id, AuthToken.revoked.is_(False), AuthToken.expires_at > utcnow()
    )
    if kinds is not None:
        stmt = stmt.where(AuthToken.kind.in_(kinds))
    if except_id is not None:
        stmt = stmt.where(AuthToken.id != except_id)
    result = session.execute(stmt.values(revoked=True).execution_options(synchronize_session=False))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def live_tokens(session: Session, user_id: int | None = None) -> list[tuple[AuthToken, str]]:
    """Returns the valid sessions and tokens (of one user, or everyone's) with user names, newest first."""
    stmt = (
        select(AuthToken, User.username)
        .join(User, User.id == AuthToken.user_id)
        .where(AuthToken.revoked.is_(False), AuthToken.expires_at > utcnow())
        .order_by(AuthToken.created_at.desc(), AuthToken.id.desc())
    )
    if user_id is not None:
        stmt = stmt.where(AuthToken.user_id == user_id)
    return [(row, name) for row, name in session.execute(stmt).tuples()]


def revoke_token_id(session: Session, token_id: int, *, principal: Principal) -> AuthToken:
    """Revokes one session or token by id: the owner's own, or anyone's for an admin of users."""
    row = session.get(AuthToken, token_id)
    if row is None or (row.user_id != principal.user_id and not principal.can("users:admin")):
        raise NotFound(f"token {token_id} does not exist", hint="list yours with GET /api/tokens")
    if not row.revoked:
        row.revoked = True
        owner = session.get(User, row.user_id)
        audit.record(
            session,
            actor=principal.username,
            action="token.revoke",
            target=owner.username if owner else str(row.user_id),
            detail={"token_id": row.id, "name": row.name, "kind": row.kind},
        )
    return row


def purge_tokens(session: Session, *, older_than: timedelta) -> int:
    """Deletes sessions and tokens that expired or were revoked more than `older_than` ago."""
    cut = utcnow() - older_than
    stmt = delete(AuthToken).where(
        (AuthToken.expires_at < cut) | (AuthToken.revoked.is_(True) & (AuthToken.created_at < cut))
    )
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]
