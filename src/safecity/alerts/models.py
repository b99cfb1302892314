"""Alerts: the one queue of things that need a human, with their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import MAX_BIGINT, Base

OPEN_STATES = ("new", "acknowledged", "confirmed")
STATES = (*OPEN_STATES, "dismissed", "closed")

# Why an operator dismissed an alert. The first two mean the system was wrong (a false alarm) and feed
# the false-alarm figures per camera and rule; the others are dismissals of a true but unneeded alert.
FALSE_ALARM_REASONS = ("false_match", "misread")
DISMISS_REASONS = (*FALSE_ALARM_REASONS, "duplicate", "no_action_needed", "test", "other")


class Alert(Base):
    """Something that needs a human: kind, priority, triage state, evidence, and how often it recurred."""

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
    # When a priority-1 alert nobody acknowledged in time was escalated to the supervisors.
    escalated_at: Mapped[datetime | None]


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
    reason_code: Mapped[str | None] = mapped_column(String(32), index=True)


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
    escalated_at: datetime | None = None


class AlertActionIn(BaseModel):
    """An operator's decision on an alert."""

    action: str = Field(pattern="^(acknowledge|confirm|dismiss|close)$", description="What to do.")
    reason: str = Field(default="", max_length=500, description="Why (required to dismiss).")
    reason_code: str | None = Field(
        default=None,
        pattern="^(" + "|".join(DISMISS_REASONS) + ")$",
        title="Dismissal reason",
        description="false_match, misread (false alarms), duplicate, no_action_needed, test, other",
    )
    version: int | None = Field(
        default=None, ge=1, le=MAX_BIGINT, description="The version you saw; a stale one is refused."
    )


class AlertActionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    from_status: str
    to_status: str
    reason: str
    reason_code: str | None


class FalseAlarmRow(BaseModel):
    """Alerts raised and dismissed for one camera or one rule over a period."""

    key: str = Field(
        title="Camera or rule", description="Camera id, or the rule (alert kind or detail.rule)."
    )
    raised: int = Field(title="Raised", description="Alerts raised in the period.")
    dismissed: int = Field(title="Dismissed", description="Of those, dismissed by an operator.")
    false_alarms: int = Field(title="False alarms", description="Dismissed as false_match or misread.")
    false_alarm_rate: float = Field(title="False-alarm rate", description="false_alarms / raised, 0..1.")
    reasons: dict[str, int] = Field(title="Reasons", description="Dismissals by reason code.")


class FalseAlarmReport(BaseModel):
    """False-alarm figures per camera and per rule, worst first."""

    since: datetime = Field(title="Since", description="Start of the period.")
    by_camera: list[FalseAlarmRow] = Field(title="By camera")
    by_rule: list[FalseAlarmRow] = Field(title="By rule")


class HourlyCounts(BaseModel):
    """Alerts raised per hour, by kind (for the dashboard chart)."""

    hours: list[datetime] = Field(title="Hours", description="Start of each hour, oldest first (UTC).")
    counts: dict[str, list[int]] = Field(title="Counts", description="Per kind, one count per hour.")


class ResponseTimes(BaseModel):
    """How fast operators act on alerts: seconds from raised to the first decision."""

    since: datetime = Field(title="Since", description="Start of the period.")
    decided: int = Field(title="Decided", description="Alerts with at least one decision in the period.")
    p50_s: float | None = Field(title="Median", description="Median seconds to first decision.")
    p90_s: float | None = Field(
        title="90th percentile", description="90th percentile seconds to first decision."
    )
    by_priority: dict[int, float] = Field(
        title="Median by priority", description="Median seconds per priority."
    )
