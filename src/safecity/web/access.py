"""Who may call which route, read from the app itself: the guard each route depends on, or the page map.

Every HTTP route of the app is one of: guarded (the permissions of its `require`/`require_any`
dependencies, recorded in `accounts.permissions`), a page (the permission its navigation link
declares in `web.pages.NAV`), public (named in `PUBLIC`), one with a credential of its own (the
portal's look-up token, the metrics token: a staff sign-in adds nothing), or else signed-in (any
role). So a new route is private until someone says otherwise. `expected(route, role)` says how it
must answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute, Route

from safecity.accounts.permissions import Guard, declared_pages, guard_of

Access = Literal["public", "signed_in", "guarded", "page", "own_credential"]

# What a stranger may call: signing in and out, the citizens' portal, liveness, the API's description.
PUBLIC = frozenset(
    {
        "/api/login",
        "/api/logout",
        "/api/portal/lookup",
        "/api/portal/verify/{code}",
        "/portal",
        "/login",
        "/healthz",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/favicon.ico",
        "/field/manifest.webmanifest",  # the officer's phone: installing and caching hold no data
        "/field/sw.js",
    }
)
# Answered by a credential that is not a staff sign-in: Prometheus's metrics token or address, a payment
# gateway's signature, a shared recording's link (its token, access code and the browser it is bound to).
OWN_CREDENTIAL = frozenset(
    {
        "/metrics",
        "/api/payments/{gateway}/callback",
        "/share/{token}",
        "/api/share/{token}/open",
        "/api/share/{token}/video",
        "/api/share/{token}/download",
    }
)
Answer = Literal["allowed", "forbidden", "signed_out", "as_anonymous"]


@dataclass(frozen=True)
class RouteAccess:
    """One method of one route and who may call it."""

    method: str
    path: str
    access: Access
    guards: tuple[Guard, ...] = ()
    in_schema: bool = True
    endpoint: Callable[..., Any] | None = None

    def admits(self, role: str) -> bool:
        """Returns whether a signed-in `role` passes every guard of the route."""
        return all(g.admits(role) for g in self.guards)

    def expected(self, role: str | None) -> Answer:
        """Returns how the route must answer `role` (None: a caller without credentials)."""
        if self.access == "public":
            return "allowed"
        if self.access == "own_credential":
            return "as_anonymous"
        if role is None:
            return "signed_out"
        return "allowed" if self.admits(role) else "forbidden"

    @property
    def permissions(self) -> frozenset[str]:
        """Returns every permission the route's guards name."""
        return frozenset().union(*(g.permissions for g in self.guards))


def page_guards(nav: Sequence[tuple[str, str, str | None]]) -> dict[str, Guard | None]:
    """Returns each page's guard: its own declaration, else its navigation link ("a|b": either)."""
    guards: dict[str, Guard | None] = {
        path: Guard(frozenset(need.split("|")), any_of=True) if need else None for path, _label, need in nav
    }
    return {**guards, **declared_pages()}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _routes(app: FastAPI) -> Iterator[tuple[str, BaseRoute]]:
    """Yields (full path, route) for every route, whether the app keeps them flat or per router."""
    try:
        from fastapi.routing import iter_route_contexts  # FastAPI ≥ 0.16x keeps included routers whole
    except ImportError:
        for route in app.routes:
            yield getattr(route, "path", ""), route
        return
    for context in iter_route_contexts(app.routes):
        yield context.path or "", context.original_route


def inventory(app: FastAPI, pages: Mapping[str, Guard | None]) -> list[RouteAccess]:
    """Returns every HTTP route and method of `app` with who may call it."""
    from safecity.challans.api import portal_token

    found: list[RouteAccess] = []
    for path, route in _routes(app):
        if isinstance(route, APIWebSocketRoute) or not isinstance(route, Route):
            continue  # the live socket and the static files are checked on their own
        calls = list(_calls(route.dependant)) if isinstance(route, APIRoute) else []
        guards = tuple(g for g in (guard_of(c) for c in calls) if g is not None)
        in_schema = bool(getattr(route, "include_in_schema", True))
        if guards:
            access: Access = "guarded"
        elif path in OWN_CREDENTIAL or any(c is portal_token for c in calls):
            access = "own_credential"
        elif (page := pages.get(path)) is not None:
            access, guards = "page", (page,)
        elif path in PUBLIC:
            access = "public"
        else:
            access = "signed_in"
        for method in sorted((route.methods or set()) - {"HEAD"}):
            found.append(RouteAccess(method, path, access, guards, in_schema, route.endpoint))
    return found


def websocket_paths(app: FastAPI) -> list[str]:
    """Returns the paths of the app's WebSocket routes."""
    return [path for path, route in _routes(app) if isinstance(route, APIWebSocketRoute)]
