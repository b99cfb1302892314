"""Signing in: hard limits per client address, a soft per-account delay the real user can beat, the attempt.

Guessing is slowed in two ways that never lock the account's owner out:
- per client address, at most `login_attempts_per_minute` attempts a minute (one row per address,
  IPv6 by /64; never a row per user name typed);
- per account, after `login_free_failures` failures each next attempt waits a delay that doubles up
  to `login_delay_max_s`, and only one attempt at a time is judged. Browsers that signed in to the
  account before carry a device cookie and skip both (they have a failure budget of their own), so
  an attacker's failures elsewhere cannot keep the owner out.

An attempt is counted as a failure before the password is checked and cleared when it succeeds, so a
burst of concurrent guesses cannot slip past the count. Argon2 runs outside any transaction.
Failures under names that do not exist write no state of their own: one audit row per address and
minute says that unknown names were tried.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from safecity.accounts import service as accounts
from safecity.accounts.models import LoginClient, LoginDevice, TokenOut, User
from safecity.accounts.totp import service as totp
from safecity.audit import service as audit
from safecity.core.clock import utcnow
from safecity.core.db import Database, get_by
from safecity.core.errors import SafeCityError, TooManyRequests, Unauthorized
from safecity.settings import Settings

WINDOW = timedelta(minutes=1)
# A known browser that fails this many times in a row is known no longer.
DEVICE_MAX_FAILURES = 5
DEVICES_PER_USER = 20
DEVICE_DAYS = 180


class SecondFactorRequired(Unauthorized):
    """The password was right; the account also needs a code from the authenticator app."""

    code = "second_factor_required"

    def __init__(self) -> None:
        super().__init__(
            "enter the code from your authenticator app",
            hint="the 6 digits the app shows now, or one of your recovery codes",
        )


@dataclass(frozen=True)
class Limits:
    """How hard guessing is made, from the settings."""

    per_address_per_minute: int
    free_failures: int
    max_delay_s: float

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        """Returns the limits the settings ask for."""
        return cls(
            settings.login_attempts_per_minute, settings.login_free_failures, settings.login_delay_max_s
        )

    def delay_after(self, failures: int) -> timedelta:
        """Returns how long the next attempt waits after `failures` failures in a row (0 while few)."""
        if failures < self.free_failures:
            return timedelta(0)
        return timedelta(seconds=min(2.0 ** (failures - self.free_failures), self.max_delay_s))


@dataclass(frozen=True)
class Attempt:
    """A sign-in attempt let past the limits (and counted as failed until it succeeds)."""

    username: str
    address: str
    user_id: int | None
    password_hash: str | None
    device_id: int | None
    failures_before: int
    next_at_before: datetime | None


@dataclass(frozen=True)
class SignedIn:
    """A successful sign-in: the session token and the device cookie to set."""

    token: TokenOut
    device_secret: str


def address_key(address: str) -> str:
    """Returns the key an address is limited under: IPv6 by its /64 (one subscriber holds a whole /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip)


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _wait_text(until: datetime, now: datetime) -> str:
    seconds = max(1, int((until - now).total_seconds() + 0.999))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min {seconds % 60} s"


def _count_address(session: Session, address: str, now: datetime, limits: Limits) -> TooManyRequests | None:
    """Counts an attempt from `address` in its current minute; returns the refusal when over the limit."""
    key = address_key(address)
    expired = LoginClient.window_start < now - WINDOW
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    row = insert(LoginClient).values(address=key, attempts=1, unknown_names=0, window_start=now)
    stmt = row.on_conflict_do_update(
        index_elements=["address"],
        set_={
            "attempts": case((expired, 1), else_=LoginClient.attempts + 1),
            "unknown_names": case((expired, 0), else_=LoginClient.unknown_names),
            "window_start": case((expired, now), else_=LoginClient.window_start),
        },
    ).returning(LoginClient.attempts, LoginClient.window_start)
    attempts, window_start = session.execute(stmt).one()
    if attempts <= limits.per_address_per_minute:
        return None
    if attempts == limits.per_address_per_minute + 1:
        audit.record(
            session,
            actor=f"anonymous@{address}",
            action="login.address_limited",
            target=key,
            detail={"client": address, "attempts": attempts - 1, "window_s": WINDOW.total_seconds()},
        )
    return TooManyRequests(
        "too many sign-in attempts from your address",
        hint=f"try again in {_wait_text(window_start + WINDOW, now)}; a browser that signed in to the "
        "account before is not held back",
    )


def _device(session: Session, user: User | None, secret: str | None) -> LoginDevice | None:
    if user is None or not secret:
        return None
    return get_by(session, LoginDevice, user_id=user.id, secret_hash=_secret_hash(secret))


def admit(
    session: Session, *, username: str, address: str, device_secret: str | None, limits: Limits
) -> Attempt | TooManyRequests:
    """Lets an attempt past the address limit and the account delay, counting it; or returns the refusal.

    The refusal is returned, not raised, so that the count it made is committed.
    """
    now = utcnow()
    user = get_by(session, User, username=username)
    device = _device(session, user, device_secret)
    if device is None:
        refused = _count_address(session, address, now, limits)
        if refused is not None:
            return refused
    failures, next_at = 0, None
    if device is not None:
        failures = device.failures
        claimed = session.execute(
            update(LoginDevice)
            .where(LoginDevice.id == device.id, LoginDevice.failures == failures)
            .values(failures=failures + 1)
        ).rowcount  # type: ignore[attr-defined]
        if not claimed:
            return TooManyRequests("another sign-in from this browser is under way", hint="try again")
    elif user is not None:
        failures, next_at = user.failed_logins, user.next_login_at
        if next_at is not None and now < next_at:
            return TooManyRequests(
                f"this account has had {failures} failed sign-ins; the next attempt must wait",
                hint=f"try again in {_wait_text(next_at, now)} (from a browser that signed in to it "
                "before there is no wait)",
            )
        claimed = session.execute(
            update(User)
            .where(User.id == user.id, User.failed_logins == failures)
            .values(failed_logins=failures + 1, next_login_at=now + limits.delay_after(failures + 1))
        ).rowcount  # type: ignore[attr-defined]
        if not claimed:
            return TooManyRequests(
                "another sign-in to this account is under way", hint="try again in a moment"
            )
    return Attempt(
        username=username,
        address=address,
        user_id=user.id if user else None,
        password_hash=user.password_hash if user else None,
        device_id=device.id if device else None,
        failures_before=failures,
        next_at_before=next_at,
    )


def _withdraw(session: Session, attempt: Attempt) -> None:
    """Uncounts an attempt whose password was right but which still lacks the second factor."""
    if attempt.device_id is not None:
        session.execute(
            update(LoginDevice)
            .where(LoginDevice.id == attempt.device_id, LoginDevice.failures == attempt.failures_before + 1)
            .values(failures=attempt.failures_before)
        )
    elif attempt.user_id is not None:
        session.execute(
            update(User)
            .where(User.id == attempt.user_id, User.failed_logins == attempt.failures_before + 1)
            .values(failed_logins=attempt.failures_before, next_login_at=attempt.next_at_before)
        )
    if attempt.device_id is None:
        _uncount_address(session, attempt.address)


def _uncount_address(session: Session, address: str) -> None:
    session.execute(
        update(LoginClient)
        .where(LoginClient.address == address_key(address), LoginClient.attempts > 0)
        .values(attempts=LoginClient.attempts - 1)
    )


def _fail(session: Session, attempt: Attempt, user: User | None, reason: str) -> None:
    """Records a failed attempt: under the account's name when it exists, else once per address and minute."""
    if attempt.device_id is not None and attempt.failures_before + 1 >= DEVICE_MAX_FAILURES:
        session.execute(delete(LoginDevice).where(LoginDevice.id == attempt.device_id))
    if user is not None:
        audit.record(
            session,
            actor=user.username,
            action="login.failed",
            target=user.username,
            detail={"client": attempt.address, "reason": reason, "failures": user.failed_logins},
        )
        return
    unknown = session.execute(
        update(LoginClient)
        .where(LoginClient.address == address_key(attempt.address))
        .values(unknown_names=LoginClient.unknown_names + 1)
        .returning(LoginClient.unknown_names)
    ).scalar()
    if unknown == 1:
        audit.record(
            session,
            actor=f"anonymous@{attempt.address}",
            action="login.unknown_user",
            target=address_key(attempt.address),
            detail={
                "client": attempt.address,
                "note": "names that do not exist; further ones from this address this minute are not "
                "recorded one by one",
            },
        )


def _succeed(
    session: Session,
    attempt: Attempt,
    user: User,
    *,
    method: str,
    device_secret: str | None,
    settings: Settings,
) -> SignedIn:
    """Clears the counts the attempt went through, remembers the browser, records it, issues the session.

    A known browser's success leaves the account's count alone: the owner's routine sign-ins must
    not hand an attacker elsewhere a fresh set of free guesses.
    """
    now = utcnow()
    user.last_login_at = now
    if attempt.device_id is not None:
        session.execute(
            update(LoginDevice)
            .where(LoginDevice.id == attempt.device_id)
            .values(failures=0, last_used_at=now)
        )
        secret = device_secret or ""
    else:
        user.failed_logins = 0
        user.next_login_at = None
        _uncount_address(session, attempt.address)
        secret = device_secret or secrets.token_urlsafe(32)
        session.add(
            LoginDevice(user_id=user.id, secret_hash=_secret_hash(secret), created_at=now, last_used_at=now)
        )
        session.flush()
        stale = (
            select(LoginDevice.id)
            .where(LoginDevice.user_id == user.id)
            .order_by(LoginDevice.last_used_at.desc(), LoginDevice.id.desc())
            .offset(DEVICES_PER_USER)
        )
        session.execute(delete(LoginDevice).where(LoginDevice.id.in_(stale.scalar_subquery())))
    audit.record(
        session,
        actor=user.username,
        action="login",
        target=user.username,
        detail={"client": attempt.address, "method": method, "known_browser": attempt.device_id is not None},
    )
    token, row = accounts.issue_token(session, user, kind="session", hours=settings.session_hours)
    return SignedIn(
        TokenOut(
            token=token,
            expires_at=row.expires_at,
            role=user.role,
            username=user.username,
            must_change_password=user.must_change_password,
        ),
        secret,
    )


def sign_in(
    db: Database,
    settings: Settings,
    *,
    username: str,
    password: str,
    code: str | None,
    address: str,
    device_secret: str | None,
) -> SignedIn:
    """Signs a user in; raises Unauthorized (wrong credentials), SecondFactorRequired or TooManyRequests."""
    with db.session() as session:
        admitted = admit(
            session,
            username=username,
            address=address,
            device_secret=device_secret,
            limits=Limits.of(settings),
        )
    if isinstance(admitted, SafeCityError):
        raise admitted
    password_ok = accounts.verify_password(
        admitted.password_hash, password, known_browser=admitted.device_id is not None
    )
    outcome: SignedIn | SafeCityError
    with db.session() as session:
        user = session.get(User, admitted.user_id, with_for_update=True) if admitted.user_id else None
        if user is None or not password_ok or not user.active:
            _fail(session, admitted, user, "password" if user is None or not password_ok else "disabled")
            outcome = Unauthorized("wrong user name or password", hint="check both and try again")
        elif user.second_factor and not code:
            _withdraw(session, admitted)
            outcome = SecondFactorRequired()
        else:
            method = totp.check_code(session, user, code) if user.second_factor and code else "password"
            if method is None:
                _fail(session, admitted, user, "second factor")
                outcome = Unauthorized(
                    "that code is not right", hint="type the code the app shows now, or a recovery code"
                )
            else:
                outcome = _succeed(
                    session, admitted, user, method=method, device_secret=device_secret, settings=settings
                )
    if isinstance(outcome, SafeCityError):
        raise outcome
    return outcome


def purge(session: Session) -> int:
    """Deletes address windows long over and browsers unused for half a year; returns how many rows."""
    now = utcnow()
    windows = session.execute(delete(LoginClient).where(LoginClient.window_start < now - 60 * WINDOW))
    gone = windows.rowcount  # type: ignore[attr-defined]
    gone += session.execute(
        delete(LoginDevice).where(LoginDevice.last_used_at < now - timedelta(days=DEVICE_DAYS))
    ).rowcount  # type: ignore[attr-defined]
    return int(gone)
