"""Users, roles and the sessions and tokens they sign in with; the state that slows down guessing."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.crypto import EncryptedString
from safecity.core.db import Base


class Role(StrEnum):
    admin = "admin"
    supervisor = "supervisor"
    operator = "operator"
    traffic_officer = "traffic_officer"
    investigator = "investigator"
    auditor = "auditor"
    cashier = "cashier"  # takes fines at a counter: records a payment by its receipt, nothing else
    # A police officer in the field: signs in to a unit on the phone, is sent, reports arrival and outcome.
    patrol_officer = "patrol_officer"
    device = "device"


# Roles that must use a second factor when `Settings.totp_required` is on: they change who is watched.
SECOND_FACTOR_ROLES = frozenset({Role.admin, Role.supervisor, Role.investigator})


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # Failed sign-ins since the last good one, from browsers this account has not signed in from;
    # past a few, each next attempt waits until `next_login_at` (a delay that doubles, never a lock).
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    next_login_at: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]
    # The TOTP secret (base32), sealed under the data key: set while enrolling, in force once
    # `totp_enabled_at` is set.
    totp_secret: Mapped[str | None] = mapped_column(EncryptedString("users.totp_secret"))
    totp_enabled_at: Mapped[datetime | None]
    # The last time step a code was accepted for, so one code never signs in twice.
    totp_last_step: Mapped[int | None]

    @property
    def second_factor(self) -> bool:
        """Whether sign-in asks this user for a TOTP code."""
        return self.totp_enabled_at is not None


class AuthToken(Base):
    """A web session or an API token; only its SHA-256 is stored."""

    __tablename__ = "auth_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked: Mapped[bool] = mapped_column(default=False)
    # How it was minted: "login", "session" (from a web session), "token" (from another token), "cli".
    origin: Mapped[str] = mapped_column(String(10), default="login", server_default="login")
    last_used_at: Mapped[datetime | None]


class LoginClient(Base):
    """Sign-in attempts from one client address in the current window: one row per address, never per name."""

    __tablename__ = "login_clients"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(default=0)
    unknown_names: Mapped[int] = mapped_column(default=0)
    window_start: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class LoginDevice(Base):
    """A browser that has signed in to an account before: it skips the account's delay, not the password."""

    __tablename__ = "login_devices"
    __table_args__ = (UniqueConstraint("user_id", "secret_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecoveryCode(Base):
    """A one-use code that stands in for a TOTP code when the phone is lost; only its SHA-256 is stored."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]


# --- API models ----------------------------------------------------------------------------------


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=100, pattern=r"^[a-zA-Z0-9_.@-]+$", title="User name")
    full_name: str = Field(default="", max_length=200, title="Full name")
    role: Role = Field(title="Role")
    password: str = Field(
        min_length=10, max_length=200, title="Password", description="At least 10 characters."
    )


class NewUserIn(BaseModel):
    """A user an admin creates: without a password, a one-time password is generated and shown once."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=100, pattern=r"^[a-zA-Z0-9_.@-]+$", title="User name")
    full_name: str = Field(default="", max_length=200, title="Full name")
    role: Role = Field(title="Role")
    password: str | None = Field(
        default=None,
        min_length=10,
        max_length=200,
        title="Password",
        description="At least 10 characters; empty: a one-time password is generated.",
    )
    must_change_password: bool = Field(
        default=True,
        title="Must change password",
        description="Whether the user must choose a new password at the first sign-in (the admin knows "
        "this one). Always true for a generated one-time password.",
    )


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    role: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None
    must_change_password: bool = False
    second_factor: bool = False
    failed_logins: int = Field(default=0, description="Failed sign-ins since the last good one.")


class NewUserOut(UserOut):
    one_time_password: str | None = Field(
        default=None, description="The generated one-time password, shown this once."
    )


class PasswordResetOut(BaseModel):
    username: str
    one_time_password: str = Field(description="Shown this once; the user must change it at sign-in.")


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=200, title="Current password")
    new_password: str = Field(
        min_length=10, max_length=200, title="New password", description="At least 10 characters."
    )


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=200)
    code: str | None = Field(
        default=None,
        max_length=40,
        title="Second-factor code",
        description="The 6-digit code of the authenticator app, or one recovery code.",
    )


class TokenOut(BaseModel):
    token: str
    expires_at: datetime
    role: str
    username: str
    must_change_password: bool = False


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, title="Name", description="What the token is for.")
    days: float | None = Field(
        default=None,
        gt=0,
        le=3650,
        title="Lifetime in days",
        description="Capped by the maximum token lifetime, and for a token minted from a web session by "
        "the session cap; empty: the longest allowed.",
    )


class TokenInfo(BaseModel):
    id: int
    username: str
    name: str
    kind: str
    origin: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    current: bool = Field(default=False, description="Whether this is the token of the request itself.")


class SecondFactorSetupOut(BaseModel):
    secret: str = Field(description="The base32 secret, for apps that cannot scan the QR code.")
    uri: str = Field(description="The otpauth:// URI the QR code holds.")
    qr: str = Field(description="Where the QR code is served as SVG.")


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=40, title="Code")


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=200, title="Current password")


class RecoveryCodesOut(BaseModel):
    codes: list[str] = Field(description="Each works once in place of a TOTP code; shown this once.")


class MeOut(UserOut):
    pending: str | None = Field(
        default=None,
        description="What must be done before anything else: 'password' (choose a new password) or "
        "'second_factor' (set up the authenticator app).",
    )
