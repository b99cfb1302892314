"""What each role may do. Routes ask for a permission, never for a role, so the map lives here only."""

from __future__ import annotations

from safecity.accounts.models import Role

READ_LIVE = {"cameras:read", "alerts:read", "events:read", "map:read"}

PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.admin: frozenset(
        READ_LIVE
        | {
            "cameras:write",
            "users:admin",
            "audit:read",
            "alerts:act",
            "hotlist:write",
            "watchlist:write",
            "watchlist:approve",
            "dispatch:act",
            "units:write",
            "units:position",
            "challans:review",
            "challans:admin",
            "challans:appeals",
            "signals:write",
            "maintenance:write",
            "recordings:read",
            "settings:write",
            "system:read",
        }
    ),
    Role.supervisor: frozenset(
        READ_LIVE
        | {
            "alerts:act",
            "alerts:supervise",
            "dispatch:act",
            "units:write",
            "units:position",
            "hotlist:write",
            "watchlist:approve",
            "maintenance:write",
            "recordings:read",
            "recordings:export",
            "plates:search",
            "challans:appeals",
            "system:read",
        }
    ),
    Role.operator: frozenset(
        READ_LIVE | {"alerts:act", "dispatch:act", "maintenance:write", "recordings:read", "system:read"}
    ),
    Role.traffic_officer: frozenset(
        {
            "cameras:read",
            "alerts:read",
            "map:read",
            "challans:review",
            "plates:search",
            "recordings:read",
            "units:position",
        }
    ),
    Role.investigator: frozenset(
        READ_LIVE
        | {
            "plates:search",
            "faces:search",
            "watchlist:write",
            "recordings:read",
            "recordings:export",
            "evidence:read",
            "evidence:export",
        }
    ),
    Role.auditor: frozenset({"audit:read", "cameras:read", "alerts:read", "events:read", "map:read"}),
    # Machines, not people: patrol units' devices report positions, signal controllers their phases.
    Role.device: frozenset({"units:position", "signals:write"}),
}


def allows(role: str, permission: str) -> bool:
    """Returns whether `role` holds `permission`."""
    try:
        return permission in PERMISSIONS[Role(role)]
    except ValueError:
        return False
