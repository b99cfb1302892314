"""One source of time, so tests and the synthetic city can control it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

#: The years a moment given to SafeCity may fall in; windows and margins around them stay representable.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    """Returns the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Returns `moment` as aware UTC; naive datetimes (as SQLite returns them) are taken to be UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def within_years(moment: datetime) -> datetime:
    """Returns `moment` if it lies between 1970 and 9000, else refuses it (year 1 overflows arithmetic)."""
    if not EARLIEST <= as_utc(moment) < LATEST:
        raise ValueError(f"{moment.isoformat()} is outside the years 1970 to 9000")
    return moment


#: A date-time from a request, held to the years SafeCity can reckon with.
Moment = Annotated[datetime, AfterValidator(within_years)]
