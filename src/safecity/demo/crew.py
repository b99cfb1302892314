"""The demo's people: a duty dispatcher and an officer on every patrol unit, acting through the API.

The duty dispatcher sends the nearest available unit to a face alert that no operator has acted on
within `dispatch_after_s` (in the served demo a person at the console may click first). Each officer
is signed in to a unit for a shift and does what the officer's phone page does (`/api/field/…`):
polls the unit's assignment, drives there sending position fixes, reports arrival, and, on a face
match or hot-list incident, answers "suspect confirmed" (an arrest), which closes the incident. The
requests go through the app itself (`httpx.ASGITransport`), so the console sees every step live, from
the same events a real phone and a real dispatcher cause.

Between calls the officers patrol: each drives a beat — its base and the named places of the city
within `BEAT_RADIUS_M` of it (or a small square round the base where there are none) — posting a
position every few seconds as the car's device would, so the command centre's map is alive. After a
call an officer stays on the scene a while (`patrol_pause_s`) before going back on the beat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy.orm import Session

from safecity.accounts import service as accounts
from safecity.accounts.models import Role, UserIn
from safecity.core.bus import Subscription
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import AlertChanged, Event
from safecity.core.geo import distance_m
from safecity.dispatch import service as dispatch

log = logging.getLogger(__name__)

DISPATCHER = "demo.dispatcher"
#: Incidents the officers close themselves: the person or vehicle is there, as the demo planned it.
CONFIRMED_KINDS = frozenset({"face_match", "hotlist"})
TOKEN_HOURS = 48.0
BEAT_RADIUS_M = 2500.0
"""How far from its base a unit's beat reaches: it stays the nearest unit to what happens there."""
SQUARE_M = 400.0
"""The side of the square a unit with no named place near its base patrols."""

Point = tuple[float, float]


def beat_for(base: Point, places: Sequence[Point]) -> list[Point]:
    """Returns a unit's beat: its base, then the places within `BEAT_RADIUS_M` of it, nearest first (a
    square round the base where there are none); the car drives it round and round."""
    near = sorted(
        (p for p in places if 30.0 < distance_m(*base, *p) <= BEAT_RADIUS_M),
        key=lambda p: distance_m(*base, *p),
    )
    if near:
        return [base, *near]
    lat, lon = base
    d_lat = SQUARE_M / 111_320.0
    d_lon = d_lat / max(0.1, math.cos(math.radians(lat)))
    return [base, (lat + d_lat, lon), (lat + d_lat, lon + d_lon), (lat, lon + d_lon)]


@dataclass
class Officer:
    """One simulated officer: the account, the unit signed in to, and where the car is."""

    username: str
    password: str
    unit_id: str
    callsign: str
    token: str
    latitude: float
    longitude: float
    arrived_at: float | None = None  # monotonic time of arrival on the current incident
    last_fix: float | None = None  # monotonic time of the last position sent on the way there
    next_poll: float = 0.0
    beat: list[Point] = field(default_factory=list)
    waypoint: int = 0  # the beat's point the car drives to next
    patrolled_at: float | None = None  # monotonic time of the last patrol step
    patrol_fix_at: float = 0.0  # monotonic time of the last patrol position sent
    on_call: bool = False
    patrol_after: float = 0.0  # monotonic time the officer goes back on the beat after a call


@dataclass
class Crew:
    """The demo's duty dispatcher and officers, with the API tokens they act with."""

    dispatcher_token: str
    officers: list[Officer] = field(default_factory=list)

    def officer_of(self, unit_id: str) -> Officer | None:
        """Returns the officer signed in to a unit, if the crew has one."""
        return next((o for o in self.officers if o.unit_id == unit_id), None)


def enlist(session: Session, *, places: Sequence[Point] = ()) -> Crew:
    """Creates the duty dispatcher and one patrol officer per unit, with API tokens to act with; each
    officer's beat runs through the `places` near the unit's base (see `beat_for`)."""
    dispatcher = accounts.create_user(
        session,
        UserIn(
            username=DISPATCHER,
            full_name="Duty dispatcher (demo)",
            role=Role.operator,
            password=accounts.generate_password(),
        ),
        actor="demo",
    )
    token, _ = accounts.issue_token(session, dispatcher, kind="api", hours=TOKEN_HOURS, name="demo crew")
    crew = Crew(dispatcher_token=token)
    for unit in dispatch.list_units(session):
        username = "pc." + unit.callsign.lower().replace(" ", "-")
        password = accounts.generate_password()
        user = accounts.create_user(
            session,
            UserIn(
                username=username,
                full_name=f"Officer of {unit.callsign} (demo)",
                role=Role.patrol_officer,
                password=password,
            ),
            actor="demo",
        )
        secret, _ = accounts.issue_token(session, user, kind="api", hours=TOKEN_HOURS, name="demo crew")
        crew.officers.append(
            Officer(
                username=username,
                password=password,
                unit_id=unit.id,
                callsign=unit.callsign,
                token=secret,
                latitude=float(unit.latitude or 0.0),
                longitude=float(unit.longitude or 0.0),
                beat=beat_for((float(unit.latitude or 0.0), float(unit.longitude or 0.0)), places),
            )
        )
    return crew


class CrewAtWork:
    """Runs the crew against an app: `await work.sign_in()`, then `await work.run()` until cancelled.

    `dispatch_after_s`: how long a new face alert waits for a person at the console before the duty
    dispatcher sends the nearest unit. `speed_kmh`: how fast the officers drive (a drive never takes
    longer than `max_drive_s`: the demo speeds up long ones). `confirm_after_s`: how long an officer
    takes on the scene to stop and confirm the suspect. `patrol`: whether idle officers drive their beat
    at `patrol_kmh`, posting a position every `patrol_fix_s`, `patrol_pause_s` after their last call.
    """

    def __init__(
        self,
        ctx: Context,
        crew: Crew,
        app: Any,
        *,
        dispatch_after_s: float = 2.0,
        speed_kmh: float = 40.0,
        max_drive_s: float = 60.0,
        confirm_after_s: float = 4.0,
        tick_s: float = 1.0,
        patrol: bool = True,
        patrol_kmh: float = 25.0,
        patrol_fix_s: float = 5.0,
        patrol_pause_s: float = 30.0,
    ) -> None:
        self.ctx = ctx
        self.crew = crew
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 0)), base_url="http://demo"
        )
        self.dispatch_after_s = dispatch_after_s
        self.speed_kmh = speed_kmh
        self.max_drive_s = max_drive_s
        self.confirm_after_s = confirm_after_s
        self.tick_s = tick_s
        self.patrol, self.patrol_kmh = patrol, patrol_kmh
        self.patrol_fix_s, self.patrol_pause_s = patrol_fix_s, patrol_pause_s
        self.problems: list[str] = []
        self.waiting: dict[str, float] = {}  # new face alerts nobody acted on: id -> when seen
        self._following: Subscription | None = None

    async def sign_in(self) -> None:
        """Signs every officer in to their unit for a shift and reads the face alerts already waiting
        (the app's first requests: call it before the cameras start, since FastAPI builds its route
        table on the first request, on the loop)."""
        for officer in self.crew.officers:
            await self._call(officer.token, "POST", "/api/field/shift", json={"unit_id": officer.unit_id})
        # Follow the queue first, then read what waits already: no alert raised in between is missed.
        self._following = await self.ctx.bus.subscribe([AlertChanged.type], self._on_alert)
        params = {"kind": "face_match", "status": "new"}
        for alert in await self._call(self.crew.dispatcher_token, "GET", "/api/alerts", params=params) or []:
            self.waiting.setdefault(alert["id"], time.monotonic())

    async def run(self) -> None:
        """Acts every tick until cancelled: the dispatcher on waiting face alerts, the officers on calls."""
        try:
            while True:
                started = time.monotonic()
                await self._dispatch_waiting_alerts()
                for officer in self.crew.officers:
                    if time.monotonic() >= officer.next_poll:
                        await self._work(officer)
                await asyncio.sleep(max(0.05, self.tick_s - (time.monotonic() - started)))
        finally:
            if self._following is not None:
                with contextlib.suppress(Exception):  # the app is shutting down: the bus may be gone already
                    await self._following.close()
            await self.client.aclose()

    # -- the duty dispatcher ------------------------------------------------------------------------

    def _on_alert(self, event: Event) -> None:
        """Notes a new face alert (on the bus's loop); one that someone acted on no longer waits."""
        if not isinstance(event, AlertChanged) or event.kind != "face_match":
            return
        if event.status == "new":
            self.waiting.setdefault(event.alert_id, time.monotonic())
        else:
            self.waiting.pop(event.alert_id, None)

    async def _dispatch_waiting_alerts(self) -> None:
        token = self.crew.dispatcher_token
        for alert_id, seen in list(self.waiting.items()):
            if time.monotonic() - seen < self.dispatch_after_s:
                continue
            del self.waiting[alert_id]
            nearest = await self._call(
                token, "GET", "/api/dispatch/candidates", params={"alert_id": alert_id, "limit": 1}
            )
            if nearest:
                body = {"unit_id": nearest[0]["unit"]["id"], "alert_id": alert_id}
                await self._call(token, "POST", "/api/dispatch", json=body)

    # -- the officers -------------------------------------------------------------------------------

    async def _work(self, officer: Officer) -> None:
        found = await self._call(officer.token, "GET", "/api/field/assignment")
        incident = (found or {}).get("incident")
        if not incident or incident["status"] != "open":
            officer.arrived_at, officer.next_poll = None, time.monotonic() + 3 * self.tick_s
            if officer.on_call:  # the call just ended: the officer stays on the scene a while
                officer.on_call, officer.patrolled_at = False, None
                officer.patrol_after = time.monotonic() + self.patrol_pause_s
            if self.patrol and found and found.get("unit_status") == "available":
                await self._patrol(officer)
            return
        officer.on_call, officer.patrolled_at = True, None
        officer.next_poll = time.monotonic() + self.tick_s
        if found["unit_status"] == "en_route":
            await self._drive(officer, incident)
        elif found["unit_status"] == "on_scene":
            officer.arrived_at = officer.arrived_at or time.monotonic()
            waited = time.monotonic() - officer.arrived_at >= self.confirm_after_s
            if waited and await asyncio.to_thread(self._confirmable, incident["id"]):
                update = _update(
                    "outcome",
                    incident_id=incident["id"],
                    outcome="suspect_confirmed",
                    note="stopped at the scene, identity confirmed against his CNIC; arrested",
                )
                await self._send(officer, [update])

    async def _patrol(self, officer: Officer) -> None:
        """Drives the officer's beat by the time since the last step; posts a fix every `patrol_fix_s`."""
        now = time.monotonic()
        if now < officer.patrol_after or len(officer.beat) < 2:
            return
        travel = (
            self.patrol_kmh / 3.6 * (now - officer.patrolled_at if officer.patrolled_at is not None else 0.0)
        )
        officer.patrolled_at = now
        for _ in range(len(officer.beat)):  # a long pause covers at most one round of the beat
            if travel <= 0:
                break
            lat, lon = officer.beat[officer.waypoint % len(officer.beat)]
            left = distance_m(officer.latitude, officer.longitude, lat, lon)
            if left <= travel:
                officer.latitude, officer.longitude = lat, lon
                officer.waypoint = (officer.waypoint + 1) % len(officer.beat)
                travel -= left
            else:
                officer.latitude += (lat - officer.latitude) * travel / left
                officer.longitude += (lon - officer.longitude) * travel / left
                travel = 0.0
        if now - officer.patrol_fix_at >= self.patrol_fix_s:
            officer.patrol_fix_at = now
            await self._send(
                officer, [_update("position", latitude=officer.latitude, longitude=officer.longitude)]
            )

    async def _drive(self, officer: Officer, incident: dict[str, Any]) -> None:
        lat, lon = incident.get("latitude"), incident.get("longitude")
        if lat is None or lon is None:
            return
        now = time.monotonic()
        # Driven by the clock, not by ticks: a busy machine sends fewer fixes, not a slower car.
        elapsed = now - officer.last_fix if officer.last_fix is not None else self.tick_s
        officer.last_fix = now
        left = distance_m(officer.latitude, officer.longitude, lat, lon)
        speed = max(self.speed_kmh / 3.6, (incident.get("distance_m") or left) / self.max_drive_s)
        step = min(1.0, speed * elapsed / left) if left > 0 else 1.0
        officer.latitude += (lat - officer.latitude) * step
        officer.longitude += (lon - officer.longitude) * step
        updates = [_update("position", latitude=officer.latitude, longitude=officer.longitude)]
        if step >= 1.0:
            updates.append(_update("arrived", incident_id=incident["id"]))
            officer.last_fix = None
        await self._send(officer, updates)

    async def _send(self, officer: Officer, updates: list[dict[str, Any]]) -> None:
        """Sends updates as the phone does; one the server rejects is a problem (it says why)."""
        answer = await self._call(officer.token, "POST", "/api/field/updates", json={"updates": updates})
        for result in (answer or {}).get("results", []):
            if result["status"] == "rejected":
                self._problem(f"{officer.callsign}: {result['detail']}", serious=True)

    def _confirmable(self, incident_id: str) -> bool:
        with self.ctx.db.session() as session:
            return any(a.kind in CONFIRMED_KINDS for a in dispatch.alerts_of(session, incident_id))

    async def _call(self, token: str, method: str, path: str, **kwargs: Any) -> Any:
        """Makes one API request; a refusal is noted (the next tick tries again), never raised."""
        try:
            response = await self.client.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
            )
        except httpx.HTTPError as exc:
            self._problem(f"{method} {path}: {exc}", serious=True)
            return None
        if response.status_code >= 400:
            # A conflict is the city moving on (an operator sent that unit first); anything else means the
            # crew cannot act (its token expired, the server fails) and the story stops: say so.
            text = f"{method} {path}: {response.status_code} {response.text[:200]}"
            self._problem(text, serious=response.status_code != 409)
            return None
        return response.json()

    def _problem(self, text: str, *, serious: bool) -> None:
        log.log(logging.WARNING if serious else logging.INFO, "demo crew: %s", text)
        self.problems = [*self.problems[-19:], text]


def _update(kind: str, **fields: Any) -> dict[str, Any]:
    """Returns one field update as the phone makes it: its own key, the moment it happened."""
    return {"key": f"demo-{uuid.uuid4().hex[:16]}", "kind": kind, "at": utcnow().isoformat(), **fields}
