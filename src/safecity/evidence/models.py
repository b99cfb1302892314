"""Which row owns each stored object (who may see it at /media/{ref}, how long it is kept), and holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base


class MediaOwner(Base):
    """One row's claim on one stored object, by kind (the kinds and who may see them: `permissions.MEDIA`).

    Content-addressed storage keeps identical bytes once, so one object may have several owners (a
    plate crop belongs to its read, to the violation it proves and to the alert it raised).
    """

    __tablename__ = "media_owners"
    __table_args__ = (Index("ix_media_owners_kind_at", "kind", "at"),)

    ref: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    # When the owning row was made, so a purge of those rows forgets their claims in one statement.
    at: Mapped[datetime] = mapped_column(default=utcnow)


class MediaHold(Base):
    """A hold on stored evidence: a legal hold, an open appeal or a case keeps its objects from the sweep.

    The hold claims each object it keeps (`media_owners` kind "hold", owner the hold's id), so the
    sweep needs no second rule: an object is removable only when no live claim is left.
    """

    __tablename__ = "media_holds"
    __table_args__ = (Index("ix_media_holds_reference", "kind", "reference"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    # The case number, court order or challan number the hold answers.
    reference: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500))
    placed_by: Mapped[str] = mapped_column(String(100))
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What was asked for, as given: refs and "kind:owner" names.
    targets: Mapped[list[str]] = mapped_column(JSON, default=list)
    objects: Mapped[int] = mapped_column(default=0)
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(100))
    release_reason: Mapped[str | None] = mapped_column(String(500))


class MediaUnclaimed(Base):
    """An object a sweep found with no claim, and since when: the next sweep after the grace removes it.

    Two sightings a grace apart, not one: a row that copies a ref from another row being purged at the
    same moment has the whole grace to commit its claim before the object may go.
    """

    __tablename__ = "media_unclaimed"

    ref: Mapped[str] = mapped_column(String(120), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class MediaSweep(Base):
    """One run of the media sweep: what it examined and removed, and the store's size by class after it."""

    __tablename__ = "media_sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    dry_run: Mapped[bool] = mapped_column(default=False)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- schemas ---------------------------------------------------------------------------------------

HOLD_KINDS = ("legal", "case", "appeal")


class HoldIn(BaseModel):
    """A hold to place on stored evidence, by ref or by the row that owns it."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["legal", "case"] = Field(
        default="legal",
        title="Kind",
        description="legal: a legal hold (court order, preservation request); case: evidence of an open "
        "case. Appeals hold their challan's evidence by themselves.",
    )
    reference: str = Field(
        min_length=3, max_length=100, title="Reference", description="Case number, court order or request."
    )
    reason: str = Field(min_length=5, max_length=500, title="Reason", description="Why the evidence is held.")
    refs: list[str] = Field(
        default_factory=list, max_length=1000, title="Refs", description="Stored objects, sha256:<hex>.<ext>."
    )
    owners: list[str] = Field(
        default_factory=list,
        max_length=200,
        title="Owners",
        description='Rows whose stored objects are held, as "kind:id", e.g. "violation:01HX…".',
    )


class ReleaseIn(BaseModel):
    """Why a hold ends."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=5, max_length=500, title="Reason", description="Why the hold ends.")


class HoldOut(BaseModel):
    """A hold and what it keeps."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    reference: str
    reason: str
    placed_by: str
    placed_at: datetime
    targets: list[str]
    objects: int
    released_at: datetime | None
    released_by: str | None
    release_reason: str | None


class ClassFigure(BaseModel):
    """The objects of one retention class: how many, how large, kept how long."""

    name: str
    retention_days: int | None = Field(
        description="Days a claim of this class keeps its object; None: while "
        "its row lives (or until the hold is released)."
    )
    objects: int = 0
    bytes: int = 0


class StoreReport(BaseModel):
    """The media store's size by retention class, as one walk of the store found it."""

    at: datetime
    objects: int = 0
    bytes: int = 0
    classes: list[ClassFigure] = Field(default_factory=list)
    unclaimed_objects: int = Field(0, description="Objects no row claims (removed once past the grace).")
    unclaimed_bytes: int = 0
    open_holds: int = 0


class SweepReport(BaseModel):
    """What one sweep did (or, dry, would do)."""

    dry_run: bool
    started_at: datetime
    seconds: float = 0.0
    examined: int = 0
    examined_bytes: int = 0
    claims_expired: dict[str, int] = Field(
        default_factory=dict, description="Claims past their class's retention, by class."
    )
    removed: int = Field(0, description="Objects removed (dry: that would be).")
    removed_bytes: int = 0
    waiting: int = Field(0, description="Unclaimed objects still inside the grace.")
    kept_reclaimed: int = Field(
        0, description="Objects set aside and put back: claimed or stored again meanwhile."
    )
    store: StoreReport | None = Field(None, description="The store by class after the sweep.")
