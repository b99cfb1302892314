"""One source of time, and one policy for it: stored in UTC, shown to people in the display time zone.

Every date or time a person reads (pages, notices, SMS, e-mail, CLI tables, error messages) goes
through `format_moment` / `format_day` here, or `when()` in web/static/lib.js, both in the zone
`display_timezone` names (Asia/Karachi unless configured). A day boundary anyone reckons with (a
deadline "until 19 Dec") is the end of that day in the display zone: `end_of_day`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

#: The years a moment given to SafeCity may fall in; windows and margins around them stay representable.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)

#: The zone people read times in unless `display_timezone` says otherwise.
DEFAULT_DISPLAY_ZONE = "Asia/Karachi"

Style = Literal["datetime", "seconds", "date", "time"]
_FORMATS: dict[str, str] = {
    "datetime": "%d %b %Y, %H:%M",
    "seconds": "%d %b %Y, %H:%M:%S",
    "date": "%d %b %Y",
    "time": "%H:%M:%S",
}


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


# --- the display time zone ---------------------------------------------------------------------------


def zone_named(name: str) -> ZoneInfo:
    """Returns the IANA time zone called `name`, or raises ValueError saying what a name looks like."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Asia/Karachi, Asia/Dubai or UTC"
        ) from None


_display: ZoneInfo = ZoneInfo(DEFAULT_DISPLAY_ZONE)


def use_display_zone(name: str) -> ZoneInfo:
    """Makes `name` the zone this process shows times in (set once at start-up from the settings)."""
    global _display
    _display = zone_named(name)
    return _display


def display_zone() -> ZoneInfo:
    """Returns the zone this process shows times in."""
    return _display


def local(moment: datetime, zone: ZoneInfo | None = None) -> datetime:
    """Returns `moment` as wall-clock time in the display zone (or `zone`)."""
    return as_utc(moment).astimezone(zone or _display)


def local_day(moment: datetime, zone: ZoneInfo | None = None) -> date:
    """Returns the calendar day `moment` falls on in the display zone (or `zone`)."""
    return local(moment, zone).date()


def start_of_day(day: date, zone: ZoneInfo | None = None) -> datetime:
    """Returns the first moment of `day` in the display zone (or `zone`), in UTC."""
    return datetime.combine(day, time(), tzinfo=zone or _display).astimezone(UTC)


def end_of_day(day: date, zone: ZoneInfo | None = None) -> datetime:
    """Returns the last moment (its last microsecond) of `day` in the display zone, in UTC.

    A deadline "until 19 Dec" is this moment: `at <= end_of_day(19 Dec)` holds all of 19 Dec local time.
    """
    return start_of_day(day + timedelta(days=1), zone) - timedelta(microseconds=1)


def format_moment(moment: datetime | None, style: Style = "datetime", *, zone: ZoneInfo | None = None) -> str:
    """Returns `moment` as people read it: "19 Dec 2025, 14:05 PKT" in the display zone ("–" for none)."""
    if moment is None:
        return "–"
    shown = local(moment, zone)
    text = shown.strftime(_FORMATS[style])
    return text if style == "date" else f"{text} {shown.tzname()}"


def format_day(day: date | datetime | None, *, zone: ZoneInfo | None = None) -> str:
    """Returns a calendar day as people read it ("19 Dec 2025"); a datetime gives its local day."""
    if day is None:
        return "–"
    if isinstance(day, datetime):
        day = local_day(day, zone)
    return day.strftime(_FORMATS["date"])
