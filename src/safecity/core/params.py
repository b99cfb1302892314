"""Bounds many routes share, so that no number a client sends is larger than its column can hold.

An unbounded `offset=9223372036854775808` reached SQLite as a 500; these types refuse it with a 422:

    def list_cameras(offset: Offset = 0, ...) -> ...
    def acknowledge(notification_id: RowId, ...) -> ...
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from safecity.core.db import MAX_INT

#: Rows to skip in a listing.
Offset = Annotated[int, Query(ge=0, le=10**9, description="Rows to skip (at most a billion).")]

#: A numeric id in a path (ids are plain integer columns: 2**31 - 1 at most on PostgreSQL).
RowId = Annotated[int, Path(ge=1, le=MAX_INT, description="Numeric id.")]
