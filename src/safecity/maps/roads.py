"""The operator's roads: a street graph from a GeoJSON file of OpenStreetMap ways, for routing offline.

`load_roads(path)` reads a FeatureCollection of LineString/MultiLineString roads with their OSM tags
(`highway`, `oneway`, `maxspeed`, `junction`), as `osmium export` or `ogr2ogr` write them, and returns a
`RoadGraph`: nodes are the ways' coordinates (ways that share a point at a junction meet there), edges
are weighted by the time to drive them. `route` finds the quickest way between two points.

    graph = load_roads(Path("karachi-roads.geojson"))
    graph.route((24.8720, 67.0120), (24.8607, 67.0299))  # Route(points, distance_m, eta_s) or NoRoute
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from safecity.core.errors import InvalidInput
from safecity.core.geo import EARTH_RADIUS_M, distance_m
from safecity.maps.files import OperatorFile

log = logging.getLogger(__name__)

# km/h by OSM highway class where a way gives no maxspeed; a class not listed (footway, path, steps,
# cycleway, pedestrian, construction, proposed, …) is not driven.
SPEED_KMH = {
    "motorway": 80.0,
    "motorway_link": 50.0,
    "trunk": 60.0,
    "trunk_link": 40.0,
    "primary": 50.0,
    "primary_link": 40.0,
    "secondary": 40.0,
    "secondary_link": 35.0,
    "tertiary": 35.0,
    "tertiary_link": 30.0,
    "unclassified": 30.0,
    "road": 25.0,
    "residential": 25.0,
    "living_street": 10.0,
    "service": 15.0,
}
# From a point off the graph to its nearest node: further than this and the point is not on these roads.
SNAP_M = 300.0
# Getting from the point to the road (a yard, a car park) is slow.
ACCESS_SPEED_KMH = 15.0
# Long straight segments get a node every this many metres, so a point beside one snaps to it.
SEGMENT_M = 50.0
# OSM nodes are given to 7 decimals (~1 cm): rounding there joins ways that meet at one node.
DECIMALS = 7
ROUTES_KEPT = 256
HINT = (
    "give a GeoJSON FeatureCollection of the city's roads made from an OpenStreetMap extract, e.g. "
    "`osmium tags-filter city.osm.pbf w/highway -o roads.osm.pbf && osmium export roads.osm.pbf "
    "-o city-roads.geojson --geometry-types=linestring`: README, 'The officer's phone'"
)
_OTHER_TAG = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')

Point = tuple[float, float]


@dataclass(frozen=True)
class Route:
    """The quickest way by road: [lat, lon] points from the start to the end, metres and seconds."""

    points: list[list[float]]
    distance_m: float
    eta_s: float


@dataclass(frozen=True)
class NoRoute:
    """Why the roads give no way between two points."""

    reason: str


class RoadsInfo(BaseModel):
    """What a road file holds, as the graph sees it."""

    path: str = Field(title="File", description="The road file, as configured.")
    features: int = Field(title="Features", description="Features in the file.")
    roads: int = Field(title="Roads", description="Features that are drivable roads (the rest are ignored).")
    nodes: int = Field(title="Nodes", description="Junctions and points along the roads.")
    edges: int = Field(title="Edges", description="Drivable directed segments between nodes.")
    km_by_class: dict[str, float] = Field(title="Road length", description="Kilometres by highway class.")
    components: int = Field(title="Components", description="Parts of the network not joined by any road.")
    largest_share: float = Field(
        title="Largest part", description="Share of the nodes in the largest connected part (0 to 1)."
    )
    bounds: tuple[float, float, float, float] = Field(
        title="Bounds", description="West, south, east, north in degrees (WGS 84)."
    )


class RoadGraph:
    """The drivable street graph of a road file; `route` finds the quickest way between two points."""

    def __init__(
        self,
        info: RoadsInfo,
        coords: npt.NDArray[np.float64],
        graph: csr_matrix,
        lengths: csr_matrix,
    ) -> None:
        self.info = info
        self._coords = coords  # (n, 2) lat, lon
        self._graph = graph  # seconds
        self._lengths = lengths  # metres, same shape
        self._lat0 = float(np.radians(coords[:, 0].mean()))
        self._tree = cKDTree(self._project(coords))
        self._routes: OrderedDict[tuple[Point, Point, tuple[str, str]], Route | NoRoute] = OrderedDict()
        self._lock = threading.Lock()

    def _project(self, latlon: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Returns x, y metres on a plane fitted to the city (equirectangular: fine over tens of km)."""
        rad = np.radians(latlon)
        return np.column_stack((rad[:, 1] * math.cos(self._lat0), rad[:, 0])) * EARTH_RADIUS_M

    def route(
        self, start: Point, end: Point, *, names: tuple[str, str] = ("the start", "the end")
    ) -> Route | NoRoute:
        """Returns the quickest way by road from start to end ([lat, lon]), or why there is none (in
        which the points are called by `names`).

        The answer for the same two points is kept, so a page polling an unchanged position costs nothing.
        """
        key = (start, end, names)
        with self._lock:
            if key in self._routes:
                self._routes.move_to_end(key)
                return self._routes[key]
        found = self._find(start, end, names)
        with self._lock:
            self._routes[key] = found
            while len(self._routes) > ROUTES_KEPT:
                self._routes.popitem(last=False)
        return found

    def _find(self, start: Point, end: Point, names: tuple[str, str]) -> Route | NoRoute:
        gaps, nodes = self._tree.query(self._project(np.array([start, end], dtype=np.float64)))
        for what, gap in zip(names, gaps, strict=True):
            if gap > SNAP_M:
                return NoRoute(f"{what} is {gap:,.0f} m from the nearest road in the road file")
        source, target = int(nodes[0]), int(nodes[1])
        seconds, previous = dijkstra(self._graph, indices=source, return_predecessors=True)
        if not np.isfinite(seconds[target]):
            return NoRoute(f"no road in the road file leads from {names[0]} to {names[1]}")
        path = [target]
        while path[-1] != source:
            path.append(int(previous[path[-1]]))
        path.reverse()
        on_road = float(np.asarray(self._lengths[path[:-1], path[1:]]).sum()) if len(path) > 1 else 0.0
        off_road = float(gaps[0] + gaps[1])
        points = [[round(lat, DECIMALS), round(lon, DECIMALS)] for lat, lon in (start, end)]
        on_graph = self._coords[path].tolist()
        points = (
            [p for p in points[:1] if p != on_graph[0]]
            + on_graph
            + [p for p in points[1:] if p != on_graph[-1]]
        )
        return Route(
            points=points,
            distance_m=round(on_road + off_road, 1),
            eta_s=round(float(seconds[target]) + off_road / (ACCESS_SPEED_KMH / 3.6), 1),
        )


def load_roads(path: Path) -> RoadGraph:
    """Reads a road file into a graph; InvalidInput saying what to fix when it is not one."""
    try:
        with path.open("rb") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise InvalidInput(f"road file {path} does not exist", hint=HINT) from None
    except IsADirectoryError:
        raise InvalidInput(f"road file {path} is a folder, not a file", hint=HINT) from None
    except OSError as exc:
        raise InvalidInput(f"road file {path} cannot be read: {exc.strerror}", hint=HINT) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"road file {path} is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", hint=HINT
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput(f"road file {path} is not JSON text (UTF-8)", hint=HINT) from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        found = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise InvalidInput(
            f"road file {path} is a {found or 'JSON value'}, not a FeatureCollection", hint=HINT
        )
    features = data.get("features")
    if not isinstance(features, list):
        raise InvalidInput(f"road file {path} has no 'features' list", hint=HINT)
    return _Builder(path).build(features)


class _Builder:
    """Turns road features into nodes (by rounded coordinate) and the quickest edge between each pair."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.node_of: dict[Point, int] = {}
        self.edges: dict[tuple[int, int], tuple[float, float]] = {}  # (a, b) -> (seconds, metres)
        self.km: dict[str, float] = {}
        self.roads = 0

    def build(self, features: list[Any]) -> RoadGraph:
        for index, feature in enumerate(features):
            self._add(index, feature)
        if not self.edges:
            raise InvalidInput(
                f"road file {self.path} holds no drivable roads: none of its {len(features)} features is a "
                f"line with a highway tag of {', '.join(SPEED_KMH)}",
                hint=HINT,
            )
        n = len(self.node_of)
        pairs = np.array(list(self.edges), dtype=np.int64)
        weights = np.array(list(self.edges.values()), dtype=np.float64)
        graph = csr_matrix((weights[:, 0], (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        lengths = csr_matrix((weights[:, 1], (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        count, labels = connected_components(graph, directed=True, connection="weak")
        coords = np.array(list(self.node_of), dtype=np.float64)
        info = RoadsInfo(
            path=str(self.path),
            features=len(features),
            roads=self.roads,
            nodes=n,
            edges=len(self.edges),
            km_by_class={k: round(v / 1000, 2) for k, v in sorted(self.km.items(), key=lambda kv: -kv[1])},
            components=int(count),
            largest_share=round(float(np.bincount(labels).max()) / n, 4),
            bounds=(
                float(coords[:, 1].min()),
                float(coords[:, 0].min()),
                float(coords[:, 1].max()),
                float(coords[:, 0].max()),
            ),
        )
        return RoadGraph(info, coords, graph, lengths)

    def _add(self, index: int, feature: Any) -> None:
        where = f"road file {self.path}, feature {index}"
        if not isinstance(feature, dict):
            raise InvalidInput(f"{where} is not a GeoJSON Feature object", hint=HINT)
        if feature.get("id") is not None:
            where += f" (id {feature['id']})"
        tags = _tags(feature.get("properties"))
        highway = tags.get("highway", "")
        geometry = feature.get("geometry")
        if highway not in SPEED_KMH or not isinstance(geometry, dict):
            return
        kind = geometry.get("type")
        lines: Any
        if kind == "LineString":
            lines = [geometry.get("coordinates")]
        elif kind == "MultiLineString":
            lines = geometry.get("coordinates")
            if not isinstance(lines, list):
                raise InvalidInput(
                    f"{where}: a MultiLineString's coordinates must be a list of lines", hint=HINT
                )
        else:
            return  # an area or a point with a highway tag (a square, a turning circle): not driven along
        speed = _speed(tags.get("maxspeed", "")) or SPEED_KMH[highway]
        direction = _direction(tags, highway)
        self.roads += 1
        for line in lines:
            points = _line(line, where)
            for a, b in pairwise(points):
                metres = self._segment(a, b, speed, direction)
                self.km[highway] = self.km.get(highway, 0.0) + metres

    def _segment(self, a: Point, b: Point, speed_kmh: float, direction: int) -> float:
        """Adds the edges from a to b (split every SEGMENT_M) in `direction`; returns its length."""
        metres = distance_m(a[0], a[1], b[0], b[1])
        pieces = max(1, math.ceil(metres / SEGMENT_M))
        stops = [
            (
                round(a[0] + (b[0] - a[0]) * i / pieces, DECIMALS),
                round(a[1] + (b[1] - a[1]) * i / pieces, DECIMALS),
            )
            for i in range(pieces + 1)
        ]
        for p, q in pairwise(stops):
            u, v = self._node(p), self._node(q)
            if u == v:
                continue
            length = distance_m(p[0], p[1], q[0], q[1])
            seconds = max(length / (speed_kmh / 3.6), 1e-3)
            if direction >= 0:
                self._edge(u, v, seconds, length)
            if direction <= 0:
                self._edge(v, u, seconds, length)
        return metres

    def _node(self, point: Point) -> int:
        return self.node_of.setdefault(point, len(self.node_of))

    def _edge(self, u: int, v: int, seconds: float, metres: float) -> None:
        known = self.edges.get((u, v))
        if known is None or seconds < known[0]:  # two ways over the same nodes: the quicker counts
            self.edges[(u, v)] = (seconds, metres)


def _tags(properties: Any) -> dict[str, str]:
    """Returns a feature's OSM tags: osmium puts them in `properties`, ogr2ogr some in `other_tags`."""
    if not isinstance(properties, dict):
        return {}
    tags = {str(k): str(v) for k, v in properties.items() if v is not None and k != "other_tags"}
    other = properties.get("other_tags")
    if isinstance(other, str):
        tags.update({k: v for k, v in _OTHER_TAG.findall(other) if k not in tags})
    return tags


def _line(line: Any, where: str) -> list[Point]:
    """Returns a line's points as rounded (lat, lon); InvalidInput unless it is [lon, lat] pairs."""
    if not isinstance(line, list) or len(line) < 2:
        raise InvalidInput(
            f"{where}: a line needs a list of at least two points, each longitude then latitude", hint=HINT
        )
    points: list[Point] = []
    for position in line:
        if (
            not isinstance(position, list | tuple)
            or len(position) < 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in position[:2])
            or not (-180 <= position[0] <= 180 and -90 <= position[1] <= 90)
        ):
            raise InvalidInput(
                f"{where}: the point {json.dumps(position)[:60]} is not longitude then latitude "
                "in degrees (within ±180 and ±90)",
                hint=HINT,
            )
        points.append((round(float(position[1]), DECIMALS), round(float(position[0]), DECIMALS)))
    return points


def _speed(maxspeed: str) -> float | None:
    """Returns the km/h an OSM maxspeed gives ("50", "50 km/h", "30 mph"), None for "none", "walk" and
    zone names (the class default applies)."""
    match = re.match(r"\s*(\d+(?:\.\d+)?)\s*(mph)?", maxspeed.split(";")[0])
    if not match or float(match.group(1)) <= 0:
        return None
    return float(match.group(1)) * (1.609344 if match.group(2) else 1.0)


def _direction(tags: dict[str, str], highway: str) -> int:
    """Returns 1 for one way along the line, -1 against it, 0 for both (OSM's oneway and its implied
    cases: roundabouts and motorways are one way unless tagged oneway=no)."""
    oneway = tags.get("oneway", "").strip().lower()
    if oneway in ("yes", "true", "1"):
        return 1
    if oneway in ("-1", "reverse"):
        return -1
    if oneway in ("no", "false", "0"):
        return 0
    implied = tags.get("junction") in ("roundabout", "circular") or highway == "motorway"
    return 1 if implied else 0


def _load_logged(path: Path) -> RoadGraph:
    graph = load_roads(path)
    log.info("road graph %s: %d nodes, %d edges", path, graph.info.nodes, graph.info.edges)
    return graph


_configured = OperatorFile(_load_logged, what="road graph (routing is off)")


def configured(path: Path | None) -> tuple[RoadGraph | None, str | None]:
    """Returns the configured road graph (loaded once; again when the file changes) and what is wrong.

    A bad file never stops the console: routing is off, the reason logged once and given with each route.
    """
    return _configured.get(path)
