"""Every route answers every role as the permission map says, and every permission guards something.

The expected answers are not written here: they come from the guard each route depends on (recorded
by `require`/`require_any`), the pages' navigation map and the short list of public routes. Any route
that checks a permission its declaration does not show, or that is open when it should not be, is a
difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from safecity.accounts.api import current_principal
from safecity.accounts.permissions import MEDIA, every_permission
from safecity.accounts.service import Principal
from safecity.core.context import Context
from safecity.core.errors import Forbidden
from safecity.server import create_app
from safecity.settings import Settings
from safecity.web import live
from safecity.web.access import inventory, page_guards, websocket_paths
from safecity.web.pages import NAV
from tests.security import matrix

# The matrix is built once per process (about 30 s): keep its tests on one xdist worker, not two.
pytestmark = pytest.mark.xdist_group("permission-matrix")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Context, FastAPI, TestClient]]:
    ctx = Context.create(Settings(data_dir=Path(tmp_path_factory.mktemp("matrix")) / "data"))
    app = create_app(ctx)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield ctx, app, client
    ctx.db.dispose()


@pytest.fixture(scope="module")
def result(world: tuple[Context, FastAPI, TestClient]) -> matrix.Matrix:
    ctx, app, client = world
    return matrix.run(ctx, app, client)


def test_every_route_answers_every_role_and_strangers_as_the_map_says(result: matrix.Matrix) -> None:
    assert len(result.routes) > 100
    assert result.cells == len(result.routes) * len(matrix.ROLES)
    assert [str(d) for d in result.differences] == []


def test_every_permission_of_the_map_is_checked_by_a_route_the_media_or_the_live_socket(
    world: tuple[Context, FastAPI, TestClient],
) -> None:
    _, app, _ = world
    on_routes = frozenset().union(*(r.permissions for r in inventory(app, page_guards(NAV))))
    by_media = frozenset().union(*MEDIA.values())
    socket = getattr(live, "LIVE_PERMISSIONS", None) or getattr(live, "NEEDS_PERMISSION", {})
    by_socket = frozenset(socket.values())
    # Each socket checks its own admission: tests/security/test_live_socket.py, tests/live/ (the
    # wall's one video socket for all its tiles: tests/live/test_video_link.py).
    assert sorted(websocket_paths(app)) == ["/ws/live", "/ws/video", "/ws/video/{camera_id}"]
    assert sorted(every_permission() - on_routes - by_media - by_socket) == []


def test_every_permission_a_route_or_medium_asks_for_is_held_by_some_role(
    world: tuple[Context, FastAPI, TestClient],
) -> None:
    _, app, _ = world
    asked = frozenset().union(*(r.permissions for r in inventory(app, page_guards(NAV))), *MEDIA.values())
    assert sorted(asked - every_permission()) == []


def test_the_matrix_covers_every_documented_operation_and_every_page(
    world: tuple[Context, FastAPI, TestClient], result: matrix.Matrix
) -> None:
    _, _, client = world
    seen = {(r.method, r.path) for r in result.routes}
    documented = {
        (method.upper(), path)
        for path, ops in client.get("/openapi.json").json()["paths"].items()
        for method in ops
    }
    assert documented - seen == set()
    assert {path for path, _, _ in NAV} <= {path for _, path in seen}


def _probe_app(ctx: Context, route: APIRouter) -> tuple[FastAPI, TestClient]:
    app = create_app(ctx, consumers=False)
    app.include_router(route)
    return app, TestClient(app, raise_server_exceptions=False)


def test_a_route_nobody_declared_is_private_and_an_open_one_is_found(tmp_path: Path) -> None:
    ctx = Context.create(Settings(data_dir=tmp_path / "data"))
    careless = APIRouter()

    @careless.get("/api/careless/plates")
    def plates() -> list[str]:
        return ["LEA-4521"]

    app, client = _probe_app(ctx, careless)
    with client:
        found = matrix.run(ctx, app, client, only="/api/careless")
    assert [str(d) for d in found.differences] == [
        "GET /api/careless/plates as anonymous: expected signed_out, got 200"
    ]


def test_a_permission_checked_inside_a_route_instead_of_declared_is_found(tmp_path: Path) -> None:
    ctx = Context.create(Settings(data_dir=tmp_path / "data"))
    hidden = APIRouter()

    @hidden.get("/api/hidden/watchlist")
    def watchlist(principal: Principal = Depends(current_principal)) -> list[str]:
        if not principal.can("watchlist:approve"):
            raise Forbidden("no")
        return []

    app, client = _probe_app(ctx, hidden)
    with client:
        found = matrix.run(ctx, app, client, only="/api/hidden")
    refused = sorted(d.role or "" for d in found.differences)
    assert refused == [
        "auditor",
        "cashier",
        "device",
        "investigator",
        "operator",
        "patrol_officer",
        "traffic_officer",
    ]
