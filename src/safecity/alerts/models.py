"""Alerts: the one queue of things that need a human, with their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base

OPEN_STATES = ("new", "acknowledged", "confirmed")
STATES = (*OPEN_STATES, "dismissed", "closed")


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    priority: Mapped[int] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    title: Mapped[str] = mapped_column(String(300))
    camera_id: Mapped[str | None] = mapped_column(String(64), index=True)
    dedup_key: Mapped[str] = mapped_column(String(200), index=True)
    source_key: Mapped[str] = mapped_column(String(200), unique=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurrences: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    assigned_to: Mapped[str | None] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(default=1)


class AlertAction(Base):
    """Every change to an alert: who, when, from which state to which, and why."""

    __tablename__ = "alert_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500), default="")


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    priority: int
    status: str
    title: str
    camera_id: str | None
    evidence: dict[str, Any]
    detail: dict[str, Any]
    occurrences: int
    created_at: datetime
    last_seen_at: datetime
    updated_at: datetime
    assigned_to: str | None
    version: int


class AlertActionIn(BaseModel):
    """An operator's decision on an alert."""

    action: str = Field(pattern="^(acknowledge|confirm|dismiss|close)$", description="What to do.")
    reason: str = Field(default="", max_length=500, description="Why (required to dismiss).")
    version: int | None = Field(default=None, description="The version you saw; a stale one is refused.")


class AlertActionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    from_status: str
    to_status: str
    reason: str
