"""What the city fault tests hold to: each test's own events, counted in and out, nothing lost or doubled."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bench.city_harness import CityCluster, Phase


def new_phase(label: str) -> Phase:
    """A phase whose event keys no other test shares."""
    return Phase(f"{label}-{uuid.uuid4().hex[:6]}")


def explain(city: CityCluster, account: dict[str, Any]) -> str:
    """What a failed assertion shows: the phase's counts and the end of each serve's log."""
    return json.dumps(account, indent=1) + "\n" + city.logs_of_serves(15)


def verdict(account: dict[str, Any]) -> dict[str, int]:
    """The numbers a fault test holds to zero: events lost and effects doubled."""
    duplicates = account["duplicates"]
    return {
        "lost": account["lost_events"] + (account["lost_notices"] or 0),
        "duplicate_alerts": duplicates["alerts"],
        "duplicate_violations": duplicates["violations"],
        "duplicate_challans": duplicates["challans"],
        "duplicate_notices": duplicates["notices"],
    }


NOTHING_LOST_OR_DOUBLED = {
    "lost": 0,
    "duplicate_alerts": 0,
    "duplicate_violations": 0,
    "duplicate_challans": 0,
    "duplicate_notices": 0,
}
