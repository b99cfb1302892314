"""Which row owns each stored picture, clip or document: what decides who may see it at /media/{ref}."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
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
