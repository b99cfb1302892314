"""What each role may do. Routes ask for a permission, never for a role, so the map lives here only.

Three things read this map: the guards routes depend on (`require`, `require_any`; each is recorded
here, as is a page that checks its own permissions, so a test can ask any route what it needs), the
pages' navigation, and `/media/{ref}`, which admits a viewer by what the stored object is (`MEDIA`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from safecity.accounts.models import Role

READ_LIVE = {"cameras:read", "alerts:read", "events:read", "map:read"}

PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.admin: frozenset(
        READ_LIVE
        | {
            "cameras:write",
            "cameras:ptz",
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
            "evidence:hold",
            "bodycam:read",
        }
    ),
    Role.supervisor: frozenset(
        READ_LIVE
        | {
            "cameras:ptz",
            "alerts:act",
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
            "bodycam:read",
            "bodycam:upload",
            "bodycam:share",
            "bodycam:manage",
            "bodycam:redact",
        }
    ),
    Role.operator: frozenset(
        READ_LIVE
        | {"cameras:ptz", "alerts:act", "dispatch:act", "maintenance:write", "recordings:read", "system:read"}
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
            "bodycam:upload",
        }
    ),
    # Speaks only for the unit signed in to for the shift (`dispatch.field`), and sees the pictures of
    # the alerts that unit is sent to, nothing else: no map, no queue, no other unit's incident.
    Role.patrol_officer: frozenset({"field:respond", "bodycam:upload"}),
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
            "evidence:hold",
            "bodycam:read",
            "bodycam:upload",
            "bodycam:share",
            "bodycam:manage",
            "bodycam:redact",
        }
    ),
    Role.auditor: frozenset({"audit:read", "cameras:read", "alerts:read", "events:read", "map:read"}),
    # A bank or police counter's cashier: records the payments it takes, by receipt number.
    Role.cashier: frozenset({"challans:cash"}),
    # Machines, not people: patrol units' devices report positions, signal controllers their phases,
    # body-camera docking stations upload what officers dock.
    Role.device: frozenset({"units:position", "signals:write", "bodycam:upload"}),
}

# Who may see a stored picture, clip or document, by what it is (any one permission admits). An
# object may belong to several rows (a plate crop to its read, a violation and an alert); any owner
# that admits the viewer is enough.
MEDIA: dict[str, frozenset[str]] = {
    # The crop and frame of a stored plate read: those who search plates, act on its alerts, or hold evidence.
    "plate_read": frozenset({"plates:search", "alerts:act", "evidence:read"}),
    # A violation's frames and crops, which its challan shows too.
    "violation": frozenset({"challans:review", "challans:admin", "challans:appeals", "evidence:read"}),
    # A speed camera's calibration certificate: evidence behind every speed it measured.
    "calibration_certificate": frozenset(
        {"challans:review", "challans:admin", "challans:appeals", "evidence:read"}
    ),
    # A challan's notice: the owner's name, CNIC and address.
    "challan_notice": frozenset({"challans:review", "challans:admin", "challans:appeals"}),
    # A watch-list enrolment photo.
    "watchlist_photo": frozenset({"watchlist:write", "watchlist:approve", "faces:search"}),
    # The crop and frame of a face that matched a watch list.
    "face_match": frozenset({"alerts:act", "watchlist:approve", "faces:search", "evidence:read"}),
    # What an alert shows its handlers: the crop, the frame, and for a face match the enrolment photos
    # the operator compares it with.
    "alert": frozenset({"alerts:act", "evidence:read"}),
    # The frame a camera sent when it reported a fault.
    "camera_fault": frozenset({"maintenance:write", "cameras:write"}),
    # A clip cut from recordings around an alert.
    "clip": frozenset({"recordings:read", "evidence:read"}),
    # A still an operator took from live video into evidence.
    "live_snapshot": frozenset({"recordings:read", "evidence:read"}),
    # The files and manifest of an evidence export.
    "evidence_export": frozenset({"evidence:export", "recordings:export"}),
    # An object under a legal hold, an appeal or a case: those who hold evidence (a hold placed on an
    # object by its ref outlives the row that first claimed it; one placed on a row keeps the row too).
    "hold": frozenset({"evidence:read", "evidence:hold"}),
    # A body-worn camera's original, a watermarked copy made for a share, the GPS sidecar: never served
    # here (a body-worn item has access classes and a custody log of its own), see `SERVED_ELSEWHERE`.
    "bodyworn": frozenset(),
    "bodyworn_copy": frozenset(),
}

# Kinds of stored object that `/media/{ref}` never serves, whatever else claims them (a hold, a case):
# the page that does, which checks the item's access class and writes its custody log.
SERVED_ELSEWHERE: dict[str, str] = {
    "bodyworn": "/evidence/items/{owner}",
    "bodyworn_copy": "the share link it was made for",
}


def allows(role: str, permission: str) -> bool:
    """Returns whether `role` holds `permission`."""
    try:
        return permission in PERMISSIONS[Role(role)]
    except ValueError:
        return False


def media_allows(role: str, kind: str) -> bool:
    """Returns whether `role` may see a stored object of `kind` (an unknown kind admits nobody)."""
    return any(allows(role, permission) for permission in MEDIA.get(kind, ()))


def every_permission() -> frozenset[str]:
    """Returns every permission some role holds."""
    return frozenset().union(*PERMISSIONS.values())


@dataclass(frozen=True)
class Guard:
    """What a route's dependency demands: all of `permissions`, or (`any_of`) at least one."""

    permissions: frozenset[str]
    any_of: bool = False

    def admits(self, role: str) -> bool:
        """Returns whether `role` passes this guard."""
        held = [allows(role, p) for p in sorted(self.permissions)]
        return any(held) if self.any_of else all(held)


Fn = TypeVar("Fn", bound=Callable[..., object])
_guards: dict[Callable[..., object], Guard] = {}
_pages: dict[str, Guard] = {}


def guards(fn: Fn, *permissions: str, any_of: bool = False) -> Fn:
    """Records that the dependency `fn` admits only holders of `permissions`; returns `fn`."""
    unknown = set(permissions) - every_permission()
    if unknown:
        raise ValueError(f"no role holds {sorted(unknown)}: a route would admit nobody")
    _guards[fn] = Guard(frozenset(permissions), any_of)
    return fn


def guard_of(fn: Callable[..., object]) -> Guard | None:
    """Returns what the dependency `fn` demands, if it is a recorded guard."""
    return _guards.get(fn)


def page(path: str, *permissions: str) -> tuple[str, ...]:
    """Records the permissions (any one admits) of a page that checks them itself; returns them."""
    _pages[path] = Guard(frozenset(permissions), any_of=True)
    return permissions


def declared_pages() -> dict[str, Guard]:
    """Returns the pages that declared their own permissions, by path."""
    return dict(_pages)
