"""PTZ: who is moving which camera (a short control lease), and what the PTZ routes take and answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.camera_config import PtzControl
from safecity.core.db import Base

LEASE_S = 30.0
"""How long an operator counts as controlling a camera after their last command."""


class PtzLease(Base):
    """Who last moved a camera, since when and when last: one row per camera that was ever moved.

    Last one wins: a command from anyone takes the lease. A lease renewed within `LEASE_S` is someone
    controlling the camera now, which the single view shows to everyone else watching it.
    """

    __tablename__ = "camera_ptz_leases"

    camera_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    since: Mapped[datetime]
    renewed_at: Mapped[datetime]


class MoveIn(BaseModel):
    """A continuous move: velocities in ONVIF's generic space, until `timeout_s` or a stop."""

    model_config = ConfigDict(extra="forbid")

    pan: float = Field(
        default=0.0, ge=-1, le=1, allow_inf_nan=False, title="Pan", description="-1 (left) to 1 (right)."
    )
    tilt: float = Field(
        default=0.0, ge=-1, le=1, allow_inf_nan=False, title="Tilt", description="-1 (down) to 1 (up)."
    )
    zoom: float = Field(
        default=0.0, ge=-1, le=1, allow_inf_nan=False, title="Zoom", description="-1 (out) to 1 (in)."
    )
    timeout_s: float = Field(
        default=5.0,
        ge=0.5,
        le=60,
        allow_inf_nan=False,
        title="Timeout",
        description="Seconds after which the camera stops by itself if no stop comes (a closed tab).",
    )

    @model_validator(mode="after")
    def _moves(self) -> MoveIn:
        if self.pan == 0 and self.tilt == 0 and self.zoom == 0:
            raise ValueError("nothing to move: pan, tilt and zoom are all 0 (to stop the camera, send stop)")
        return self


class AbsoluteMoveIn(BaseModel):
    """A position to send the camera to, in its absolute spaces (the ranges GET …/ptz/position gives)."""

    model_config = ConfigDict(extra="forbid")

    pan: float | None = Field(
        default=None, allow_inf_nan=False, title="Pan", description="Across; with tilt, or neither."
    )
    tilt: float | None = Field(
        default=None, allow_inf_nan=False, title="Tilt", description="Up and down; with pan, or neither."
    )
    zoom: float | None = Field(
        default=None, allow_inf_nan=False, title="Zoom", description="Empty: the zoom stays as it is."
    )

    @model_validator(mode="after")
    def _somewhere(self) -> AbsoluteMoveIn:
        if self.pan is None and self.tilt is None and self.zoom is None:
            raise ValueError("nothing to move to: give pan and tilt, zoom, or all three")
        if (self.pan is None) != (self.tilt is None):
            raise ValueError("pan and tilt go together: give both, or neither to move the zoom only")
        return self


class CentreIn(BaseModel):
    """A point of the live picture to turn the camera to, as fractions of the picture from its top left."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(
        ge=0, le=1, allow_inf_nan=False, title="Across", description="0 (left edge) to 1 (right)."
    )
    y: float = Field(ge=0, le=1, allow_inf_nan=False, title="Down", description="0 (top edge) to 1 (bottom).")
    aspect: float = Field(
        default=16 / 9,
        ge=0.2,
        le=5,
        allow_inf_nan=False,
        title="Aspect",
        description="The picture's width over its height (the page sends the stream's own).",
    )


class AxisRange(BaseModel):
    """The values one axis may take in the camera's absolute space, both ends included."""

    min: float
    max: float


class PositionOut(BaseModel):
    """Where a camera points and where it can be sent (absolute moves)."""

    camera_id: str
    absolute: bool = Field(description="Whether the camera can be sent to a position at all.")
    detail: str = Field(description="Why not, in words; empty when it can.")
    pan: float | None = Field(description="Where it points now, as it says (null: it does not say).")
    tilt: float | None
    zoom: float | None
    pan_range: AxisRange | None = Field(description="Null: it cannot be sent to a pan and tilt.")
    tilt_range: AxisRange | None
    zoom_range: AxisRange | None = Field(description="Null: it cannot be sent to a zoom.")
    pan_tilt_space: str | None = Field(description="The ONVIF space URI the pan and tilt are in.")
    zoom_space: str | None


class PresetIn(BaseModel):
    """A preset to keep where the camera points now."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, title="Name", description="What people call the view.")

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str) -> str:
        value = value.strip()
        if not value or not value.isprintable():
            raise ValueError("a preset's name is printable text (no line breaks or control characters)")
        return value


class PresetOut(BaseModel):
    """A preset as the camera keeps it."""

    token: str = Field(description="The camera's own token for it (what goto and remove take).")
    name: str


class ControllerOut(BaseModel):
    """Who is controlling the camera now (their lease is under 30 s old)."""

    username: str
    since: datetime = Field(description="When they took control.")
    renewed_at: datetime = Field(description="Their last command.")
    you: bool = Field(description="Whether that is the caller.")


class PtzStateOut(BaseModel):
    """Whether a camera can be moved, and who is moving it."""

    camera_id: str
    ptz: str = Field(description="yes, no or unknown (the camera could not be asked).")
    setting: PtzControl = Field(description="The camera's PTZ setting (analysis.ptz).")
    detail: str = Field(description="Why, in words.")
    checked_at: datetime | None = Field(description="When the camera was last asked.")
    controller: ControllerOut | None = Field(description="Who moved it in the last 30 s; null: nobody.")
    lease_s: float = Field(default=LEASE_S, description="How long a command keeps its sender in control.")
