"""The road graph: routes follow the streets and their rules (one way, speed), and a bad file says why."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from safecity.core.errors import InvalidInput
from safecity.core.geo import distance_m
from safecity.maps import roads
from safecity.maps.roads import NoRoute, Route, load_roads
from tests.maps.road_files import corner, street, write_roads

A, B, C, D = (
    corner(0, 0),
    corner(0, 1),
    corner(1, 1),
    corner(1, 0),
)  # a block: A south-west, then anticlockwise


def _route(path: Path, start: tuple[float, float], end: tuple[float, float]) -> Route:
    found = load_roads(path).route(start, end)
    assert isinstance(found, Route), found
    return found


def _passes(route: Route, point: tuple[float, float]) -> bool:
    return [point[0], point[1]] in route.points


def test_a_route_follows_the_streets_around_the_block_not_the_straight_line(tmp_path: Path) -> None:
    path = write_roads(tmp_path / "roads.geojson", street(A, B), street(B, C))
    route = _route(path, A, C)
    straight = distance_m(*A, *C)
    assert route.points[0] == list(A) and route.points[-1] == list(C) and _passes(route, B)
    assert route.distance_m == pytest.approx(distance_m(*A, *B) + distance_m(*B, *C), rel=1e-3)
    assert route.distance_m > 1.3 * straight
    assert route.eta_s == pytest.approx(route.distance_m / (25 / 3.6), rel=1e-3)  # residential: 25 km/h


def test_a_point_beside_the_road_joins_it_at_the_nearest_node(tmp_path: Path) -> None:
    path = write_roads(tmp_path / "roads.geojson", street(A, B))
    beside = (A[0] + 0.0003, (A[1] + B[1]) / 2)  # ~33 m north of the middle of a 200 m street
    route = _route(path, beside, B)
    assert route.points[0] == list(beside) and route.points[-1] == list(B)
    joined = route.points[1]
    assert distance_m(beside[0], beside[1], joined[0], joined[1]) < 45  # near the middle, not at A
    assert route.distance_m < distance_m(*A, *B)


def test_a_unit_already_at_the_place_has_a_route_of_a_few_metres(tmp_path: Path) -> None:
    graph = load_roads(write_roads(tmp_path / "roads.geojson", street(A, B)))
    here = graph.route(A, A)
    assert isinstance(here, Route) and here.points == [list(A)] and here.distance_m == 0
    beside = graph.route((A[0] + 0.0001, A[1]), A)  # 11 m off the street, at its end
    assert isinstance(beside, Route) and beside.distance_m == pytest.approx(11.1, abs=0.2)


@pytest.mark.parametrize(
    ("one_way", "tags"),
    [((A, B), {"oneway": "yes"}), ((B, A), {"oneway": "-1"}), ((A, B), {"junction": "roundabout"})],
)
def test_a_one_way_street_is_not_driven_against(
    tmp_path: Path, one_way: tuple[tuple[float, float], ...], tags: dict[str, str]
) -> None:
    # A to B is one way; the rest of the block is two-way, so B to A goes round by C and D.
    path = write_roads(tmp_path / "roads.geojson", street(*one_way, **tags), street(B, C, D, A))
    assert not _passes(_route(path, A, B), C)  # with the flow: straight along
    back = _route(path, B, A)
    assert _passes(back, C) and _passes(back, D)
    assert back.distance_m > 2.5 * distance_m(*A, *B)


def test_oneway_no_is_two_way_even_on_a_roundabout(tmp_path: Path) -> None:
    path = write_roads(
        tmp_path / "roads.geojson", street(A, B, junction="roundabout", oneway="no"), street(B, C, D, A)
    )
    assert not _passes(_route(path, B, A), C)


def test_a_maxspeed_beats_the_class_default_when_choosing_the_way(tmp_path: Path) -> None:
    # Two ways round the block, the same length: by B on residential streets (25 km/h), by D on
    # service roads (15 km/h) -- unless the service roads are signed for 60.
    slow = write_roads(tmp_path / "slow.geojson", street(A, B, C), street(A, D, C, highway="service"))
    assert _passes(_route(slow, A, C), B)
    fast = write_roads(
        tmp_path / "fast.geojson", street(A, B, C), street(A, D, C, highway="service", maxspeed="60")
    )
    route = _route(fast, A, C)
    assert _passes(route, D) and not _passes(route, B)
    assert route.eta_s == pytest.approx(route.distance_m / (60 / 3.6), abs=0.2)
    mph = write_roads(tmp_path / "mph.geojson", street(A, D, C, highway="service", maxspeed="30 mph"))
    by_mph = _route(mph, A, C)
    assert by_mph.eta_s == pytest.approx(by_mph.distance_m / (30 * 1.609344 / 3.6), abs=0.2)


def test_footways_and_roads_under_construction_are_not_driven(tmp_path: Path) -> None:
    path = write_roads(
        tmp_path / "roads.geojson",
        street(A, C, highway="footway"),
        street(A, C, highway="construction"),
        street(A, B, C),
    )
    assert _passes(_route(path, A, C), B)


def test_parts_of_the_network_no_road_joins_give_no_route_and_say_so(tmp_path: Path) -> None:
    far_east = corner(0, 6), corner(1, 6)
    path = write_roads(tmp_path / "roads.geojson", street(A, B), street(*far_east))
    found = load_roads(path).route(A, far_east[1])
    assert (
        isinstance(found, NoRoute)
        and "no road in the road file leads from the start to the end" in found.reason
    )


def test_a_point_far_from_every_road_gives_no_route_and_says_how_far(tmp_path: Path) -> None:
    path = write_roads(tmp_path / "roads.geojson", street(A, B))
    far = corner(5, 0)  # ~1.1 km north
    found = load_roads(path).route(far, B)
    assert isinstance(found, NoRoute)
    assert "the start is 1,1" in found.reason and "m from the nearest road" in found.reason


def test_the_summary_counts_nodes_edges_km_and_connected_parts(tmp_path: Path) -> None:
    path = write_roads(
        tmp_path / "roads.geojson",
        street(A, B, oneway="yes"),
        street(B, C, highway="primary"),
        street(corner(0, 6), corner(0, 7)),
        street(A, C, highway="footway"),
    )
    info = load_roads(path).info
    assert (info.features, info.roads, info.components) == (4, 3, 2)
    # Segments are split to 50 m at most: each 200-odd m street is 5 pieces, 6 nodes; A-B and B-C share B.
    assert info.nodes == 6 + 5 + 6 and info.edges == 5 + 2 * 5 + 2 * 5
    assert info.km_by_class == {"residential": 0.4, "primary": 0.22}
    assert info.largest_share == pytest.approx(11 / 17, abs=1e-4)
    assert info.bounds == (A[1], A[0], corner(0, 7)[1], C[0])


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("<html>404</html>", "is not JSON: Expecting value at line 1, column 1"),
        (json.dumps([1, 2]), "is a list, not a FeatureCollection"),
        (json.dumps(street(A, B)), "is a Feature, not a FeatureCollection"),
        (json.dumps({"type": "FeatureCollection"}), "has no 'features' list"),
        (
            json.dumps({"type": "FeatureCollection", "features": [street(A, B), street(A, (95.0, 67.0))]}),
            "feature 1: the point [67.0, 95.0] is not longitude then latitude in degrees",
        ),
        (
            json.dumps({"type": "FeatureCollection", "features": [street(A, B), "road"]}),
            "feature 1 is not a GeoJSON Feature object",
        ),
        (
            json.dumps({"type": "FeatureCollection", "features": [{**street(A), "id": "w42"}]}),
            "feature 0 (id w42): a line needs a list of at least two points, each longitude then latitude",
        ),
        (
            json.dumps({"type": "FeatureCollection", "features": [street(A, B, highway="footway")]}),
            "holds no drivable roads: none of its 1 features is a line with a highway tag",
        ),
    ],
)
def test_a_bad_road_file_says_what_to_fix(tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "roads.geojson"
    path.write_text(content)
    with pytest.raises(InvalidInput) as raised:
        load_roads(path)
    assert says in raised.value.message and "osmium export" in (raised.value.hint or "")


def test_ogr2ogr_other_tags_are_read_too(tmp_path: Path) -> None:
    feature = street(B, A, highway="residential")
    feature["properties"]["other_tags"] = '"oneway"=>"yes","maxspeed"=>"40"'
    path = write_roads(tmp_path / "roads.geojson", feature, street(B, C, D, A))
    assert _passes(_route(path, A, B), C)  # B to A only: A to B goes round


def test_a_configured_bad_file_turns_routing_off_and_says_why_and_a_good_one_loads_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "roads.geojson"
    path.write_text("not json")
    graph, problem = roads.configured(path)
    assert graph is None and problem is not None and "is not JSON" in problem
    write_roads(path, street(A, B))
    os.utime(path, (1, 1))  # a replaced file: another modification time
    graph, problem = roads.configured(path)
    assert graph is not None and problem is None
    assert roads.configured(path)[0] is graph
    assert roads.configured(None) == (None, None)
