"""Accounts: creating users, checking passwords (Argon2), issuing and checking sessions and tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from safecity.accounts.models import AuthToken, LoginFailure, Role, User, UserIn
from safecity.accounts.permissions import allows
from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.db import get_by
from safecity.core.errors import Conflict, InvalidInput, NotFound, TooManyRequests, Unauthorized

_hasher = PasswordHasher()
# A hash to verify against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the signed-in user and their role."""

    user_id: int
    username: str
    role: str

    def can(self, permission: str) -> bool:
        """Returns whether this principal's role holds `permission`."""
        return allows(self.role, permission)


SYSTEM = Principal(user_id=0, username="system", role=Role.admin)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(session: Session, data: UserIn, *, actor: str, must_change_password: bool = False) -> User:
    """Creates a user with an Argon2-hashed password."""
    user = User(
        username=data.username,
        full_name=data.full_name,
        role=data.role.value,
        password_hash=_hasher.hash(data.password),
        must_change_password=must_change_password,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"user {data.username!r} already exists", hint="choose another user name") from None
    audit.record(session, actor=actor, action="user.create", target=data.username, detail={"role": data.role})
    return user


def generate_password() -> str:
    """Returns a random password that is easy to type once (for the first admin)."""
    return secrets.token_urlsafe(12)


def check_rate_limit(session: Session, *, username: str, client: str, per_minute: int) -> None:
    """Raises TooManyRequests when this user name or client failed too often in the last minute."""
    since = utcnow() - timedelta(minutes=1)
    session.execute(delete(LoginFailure).where(LoginFailure.at < utcnow() - timedelta(hours=1)))
    by_user = session.scalar(
        select(func.count()).where(LoginFailure.username == username, LoginFailure.at >= since)
    )
    by_client = session.scalar(
        select(func.count()).where(LoginFailure.client == client, LoginFailure.at >= since)
    )
    if (by_user or 0) >= per_minute or (by_client or 0) >= per_minute * 4:
        raise TooManyRequests(
            "too many failed sign-ins", hint="wait a minute before trying again, or ask an admin to reset it"
        )


def authenticate(
    session: Session, *, username: str, password: str, client: str, per_minute: int
) -> User | None:
    """Returns the user for correct credentials, None for wrong ones; raises when rate-limited.

    A failure must be recorded with `record_login_failure` in a transaction of its own, since the
    caller's transaction is rolled back when it reports the failure.
    """
    check_rate_limit(session, username=username, client=client, per_minute=per_minute)
    user = get_by(session, User, username=username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    user.last_login_at = utcnow()
    audit.record(session, actor=username, action="login", detail={"client": client})
    return user


def record_login_failure(session: Session, *, username: str, client: str) -> None:
    """Records a failed sign-in (for rate limiting and the audit log)."""
    session.add(LoginFailure(username=username, client=client))
    audit.record(session, actor=username, action="login.failed", detail={"client": client})


def issue_token(
    session: Session, user: User, *, kind: str, hours: float, name: str = ""
) -> tuple[str, AuthToken]:
    """Issues a session or API token; returns the secret (shown once) and its record."""
    if kind not in {"session", "api"}:
        raise InvalidInput(f"unknown token kind {kind!r}", hint="use 'session' or 'api'")
    secret = secrets.token_urlsafe(32)
    row = AuthToken(
        user_id=user.id,
        kind=kind,
        token_hash=_token_hash(secret),
        name=name,
        expires_at=utcnow() + timedelta(hours=hours),
    )
    session.add(row)
    session.flush()
    return secret, row


def token_fingerprint(token: str) -> str:
    """Returns the fingerprint a token is stored under: it names a session without being able to open it."""
    return _token_hash(token)


def principal_for_token(session: Session, token: str) -> Principal:
    """Returns who holds `token`, or raises Unauthorized when it is unknown, expired or revoked."""
    return principal_for_fingerprint(session, _token_hash(token))


def principal_for_fingerprint(session: Session, fingerprint: str) -> Principal:
    """Returns who holds the token with `fingerprint` (the live socket re-checks its session so)."""
    row = get_by(session, AuthToken, token_hash=fingerprint)
    if row is None or row.revoked or row.expires_at < utcnow():
        raise Unauthorized("your session has expired or is not valid", hint="sign in again")
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise Unauthorized("this account is disabled", hint="ask an admin")
    return Principal(user_id=user.id, username=user.username, role=user.role)


def revoke_token(session: Session, token: str) -> None:
    """Revokes a session or token (sign-out)."""
    row = get_by(session, AuthToken, token_hash=_token_hash(token))
    if row is not None:
        row.revoked = True


def list_users(session: Session) -> list[User]:
    """Returns every user, by name."""
    return list(session.scalars(select(User).order_by(User.username)))


def get_by_username(session: Session, username: str) -> User:
    """Returns the user called `username`, or raises NotFound."""
    user = get_by(session, User, username=username)
    if user is None:
        raise NotFound(f"user {username!r} does not exist", hint="check the user name")
    return user
