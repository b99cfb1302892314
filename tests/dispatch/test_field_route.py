"""The officer's route to the incident: along the operator's roads where it can, else a straight line
that says why."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.geo import distance_m
from safecity.settings import Settings
from tests.dispatch.test_field import SADDAR, _on_shift, _sent, _update
from tests.maps.road_files import street, write_roads

LYARI = (24.8720, 67.0120)  # where unit PU-2 waits
CORNER = (24.8607, 67.0120)  # the junction south of it, on Saddar's street


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Two streets: south from the unit's base to the corner, then east to Empress Market.
    roads = write_roads(tmp_path / "karachi-roads.geojson", street(LYARI, CORNER), street(CORNER, SADDAR))
    return Settings(data_dir=tmp_path / "data", road_graph=roads)


def _incident(client: TestClient, headers: dict[str, str]) -> dict:
    got = client.get("/api/field/assignment", headers=headers)
    assert got.status_code == 200, got.text
    return dict(got.json()["incident"])


def test_the_route_follows_the_streets_and_gives_their_distance_and_time(
    ctx: Context, client: TestClient, alert_id: str
) -> None:
    rana = _on_shift(ctx, client, "pc.rana", "PU-2")
    _sent(ctx, client, alert_id)
    incident = _incident(client, rana)
    route = incident["route"]
    assert route["source"] == "roads" and route["note"] == ""
    assert route["points"][0] == list(LYARI) and route["points"][-1] == list(SADDAR)
    assert list(CORNER) in route["points"]
    by_road = distance_m(*LYARI, *CORNER) + distance_m(*CORNER, *SADDAR)
    assert route["distance_m"] == pytest.approx(by_road, rel=1e-3)
    assert route["distance_m"] > 1.3 * distance_m(*LYARI, *SADDAR)
    assert (incident["distance_m"], incident["eta_s"]) == (route["distance_m"], route["eta_s"])
    # The same position gives the same route, so the page's poll still costs a 304.
    got = client.get("/api/field/assignment", headers=rana)
    again = client.get("/api/field/assignment", headers={**rana, "If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304


def test_a_new_position_gives_a_new_route_and_off_the_roads_a_straight_line_saying_why(
    ctx: Context, client: TestClient, alert_id: str
) -> None:
    rana = _on_shift(ctx, client, "pc.rana", "PU-2")
    _sent(ctx, client, alert_id)
    halfway = (24.8660, 67.0120)
    sent = client.post(
        "/api/field/updates",
        json={"updates": [_update("fix-0001", "position", latitude=halfway[0], longitude=halfway[1])]},
        headers=rana,
    )
    assert sent.json()["results"][0]["status"] == "applied"
    route = _incident(client, rana)["route"]
    assert route["source"] == "roads" and route["points"][0] == list(halfway)
    assert route["distance_m"] == pytest.approx(
        distance_m(*halfway, *CORNER) + distance_m(*CORNER, *SADDAR), rel=1e-3
    )
    clifton = (24.8138, 67.0300)  # 5 km south, no road of the file near
    client.post(
        "/api/field/updates",
        json={
            "updates": [
                _update("fix-0002", "position", latitude=clifton[0], longitude=clifton[1], at=utcnow())
            ]
        },
        headers=rana,
    )
    incident = _incident(client, rana)
    route = incident["route"]
    assert route["source"] == "straight" and route["points"] == [list(clifton), list(SADDAR)]
    assert (
        route["note"].startswith("Straight line: your unit's last position is 5,")
        and "m from the nearest road" in route["note"]
    )
    assert incident["distance_m"] == route["distance_m"] == round(distance_m(*clifton, *SADDAR), 1)


def test_a_bad_road_file_leaves_the_straight_line_and_says_so(
    ctx: Context, client: TestClient, alert_id: str
) -> None:
    assert ctx.settings.road_graph is not None
    ctx.settings.road_graph.write_text('{"type": "Feature"}')
    rana = _on_shift(ctx, client, "pc.rana", "PU-2")
    _sent(ctx, client, alert_id)
    route = _incident(client, rana)["route"]
    assert route["source"] == "straight" and "the road file could not be read" in route["note"]
