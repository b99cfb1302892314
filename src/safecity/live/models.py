"""Live video: the wall layouts operators save (their own, or shared with a control room)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base


class Grid(StrEnum):
    """How a wall page is cut into tiles."""

    one = "1"
    two = "2x2"
    three = "3x3"
    four = "4x4"
    one_plus_five = "1+5"


TILES: dict[Grid, int] = {Grid.one: 1, Grid.two: 4, Grid.three: 9, Grid.four: 16, Grid.one_plus_five: 6}
MAX_PAGES = 50


class WallLayout(Base):
    """One saved wall: its grid, its pages of cameras, its tour; its owner's, or shared with a room."""

    __tablename__ = "wall_layouts"
    __table_args__ = (UniqueConstraint("owner", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(100))
    grid: Mapped[str] = mapped_column(String(8))
    # One list of camera ids (or null for an empty tile) per page, each as long as the grid has tiles.
    pages: Mapped[list[list[str | None]]] = mapped_column(JSON, default=list)
    tour_seconds: Mapped[int | None]
    room: Mapped[str | None] = mapped_column(String(100), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LayoutIn(BaseModel):
    """A wall layout as saved from the wall page."""

    model_config = ConfigDict(extra="forbid")

    grid: Grid = Field(title="Grid", description="1, 2x2, 3x3, 4x4 or 1+5 (one large tile and five small).")
    pages: list[list[str | None]] = Field(
        min_length=1,
        max_length=MAX_PAGES,
        title="Pages",
        description="Per page, the camera id of each tile in order (null: an empty tile).",
    )
    tour_seconds: int | None = Field(
        default=None, ge=5, le=3600, title="Tour", description="Seconds per page when touring; null: no tour."
    )
    room: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        title="Room",
        description="A control room to share the layout with (everyone there sees it); null: yours only.",
    )

    @field_validator("pages")
    @classmethod
    def _ids(cls, pages: list[list[str | None]]) -> list[list[str | None]]:
        for page in pages:
            for camera in page:
                if camera is not None and not 0 < len(camera) <= 64:
                    raise ValueError("a camera id is 1 to 64 characters")
        return pages

    @model_validator(mode="after")
    def _fits_the_grid(self) -> LayoutIn:
        tiles = TILES[self.grid]
        for number, page in enumerate(self.pages, 1):
            if len(page) > tiles:
                raise ValueError(
                    f"page {number} has {len(page)} cameras; a {self.grid.value} page holds {tiles}"
                )
        # Short pages are padded with empty tiles, so a stored page always has the grid's length.
        self.pages = [page + [None] * (tiles - len(page)) for page in self.pages]
        return self


class LayoutOut(LayoutIn):
    """A saved wall layout."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")

    id: int
    name: str = Field(description="Its name, unique per owner.")
    owner: str = Field(description="Who saved it; only they may change or remove it.")
    updated_at: datetime
