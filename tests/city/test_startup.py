"""Two serve processes started together both start, and issue each waiting challan once.

Both run the start-up catch-up that issues challans for violations approved while the centre was
down. It runs last in this folder: the challans it issues queue their notices behind every later one.
"""

from __future__ import annotations

import time

import pytest
from bench.city_harness import CityCluster, EventMix, ServeProcess, StartupFailed

from safecity.enforcement import service as enforcement

pytestmark = pytest.mark.city

WAITING_VIOLATIONS = 2_000


def approve_violations_while_the_centre_is_down(city: CityCluster, mix: EventMix, count: int) -> list[str]:
    """Records `count` auto-approved speeding violations straight in the database; returns their plates."""
    plates = []
    with city.context() as ctx:
        for start in range(0, count, 500):
            with ctx.db.session() as session:
                for _ in range(min(500, count - start)):
                    candidate = mix.speeding("waiting")
                    violation, _ = enforcement.record_candidate(session, candidate, media=ctx.media)
                    assert violation.status == "approved"
                    plates.append(candidate.plate or "")
    return plates


def start_problem(serve: ServeProcess) -> str | None:
    """Why a serve did not come up (its log), or None once it answers /healthz."""
    try:
        serve.wait_healthy()
    except StartupFailed as exc:
        return str(exc)
    return None


def challans_per_plate(city: CityCluster, plates: list[str]) -> dict[str, int]:
    with city.pg.connect() as conn:
        return dict(
            conn.execute(
                "SELECT plate, count(*) FROM challans WHERE plate = ANY(%s) GROUP BY plate", [plates]
            ).fetchall()
        )


def test_two_serves_started_together_with_approved_violations_waiting_both_start(
    city: CityCluster, mix: EventMix, serves: list[ServeProcess]
) -> None:
    city.stop_serves()
    plates = approve_violations_while_the_centre_is_down(city, mix, WAITING_VIOLATIONS)
    for serve in serves:
        serve.start()
    failed = [problem for serve in serves if (problem := start_problem(serve))]
    time.sleep(3)
    assert not failed and not city.dead_serves(), "\n".join(failed or city.dead_serves())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        issued = challans_per_plate(city, plates)
        if len(issued) == len(plates):
            break
        time.sleep(1)
    assert len(issued) == len(plates), f"{len(plates) - len(issued)} approved violations got no challan"
    assert max(issued.values()) == 1, f"{sum(n - 1 for n in issued.values())} duplicate challans"
