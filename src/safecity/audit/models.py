"""The audit log: append-only rows, each carrying a keyed hash (HMAC) over itself and the row before it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import utcnow
from safecity.core.db import Base


class AuditEntry(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[str] = mapped_column(String(300), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The id of the key whose HMAC `hash` is (never the key); empty on rows from before keyed hashes.
    key_id: Mapped[str | None] = mapped_column(String(32))


class AuditHead(Base):
    """The newest entry's sequence, hash and key, where appends take their turn.

    It is a convenience inside the database, not a proof: the signed checkpoints outside it are.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32))


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    hash: str


class VerifyReport(BaseModel):
    """Result of checking the chain and its checkpoints: ok, or the first rows that are wrong and why."""

    ok: bool
    checked: int
    problems: list[str]
    notes: list[str] = Field(
        default_factory=list,
        description="What is true but worth knowing (legacy rows, rows not yet anchored by a checkpoint).",
    )
    first_bad_seq: int | None = Field(default=None, description="The first row that fails, if one does.")
    legacy_until: int | None = Field(default=None, description="Rows up to here predate keyed hashes.")
    checkpoints: int = Field(default=0, description="Valid checkpoints read from the checkpoint file.")
    anchored_seq: int | None = Field(default=None, description="The last row the newest checkpoint covers.")
    keys: list[str] = Field(default_factory=list, description="Ids of the keys rows are signed with.")
