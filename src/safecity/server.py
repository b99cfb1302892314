"""The FastAPI app: mounts every domain's routes, starts the bus consumers, serves the pages.

`create_app(ctx)` builds the app for a context; the lifespan starts the bus, subscribes each
domain's consumers (`consumer.register(ctx)`), and connects the live hub that feeds the browsers.
The perimeter (`core/security.py`) wraps it: security headers, CSRF, body limits; /metrics answers
its token or its addresses only; /ws/live opens with a one-use ticket.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import fastapi_offline
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.params import File
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import generate_latest
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.routing import compile_path
from starlette.types import Scope

from safecity import __version__
from safecity.accounts import service as accounts
from safecity.accounts.api import SESSION_COOKIE, require
from safecity.challans import notice
from safecity.core import pipeline, security
from safecity.core.context import Context
from safecity.core.db import claim_event
from safecity.core.errors import Forbidden, SafeCityError, Unauthorized
from safecity.core.events import Event
from safecity.core.http import address_in, client_address
from safecity.core.ids import new_id
from safecity.core.metrics import EVENTS, LIVE_CLIENTS, REGISTRY
from safecity.domains import domain_modules
from safecity.maps import roads
from safecity.web import alert_context, pages, recent
from safecity.web.live import LiveHub
from safecity.worker.watchdog import report_unheld_cameras

log = logging.getLogger(__name__)

Startup = Callable[[Context], Awaitable[None]]

UNHELD_WATCH_S = 5.0
LIVE_TICKET_S = 30


def create_app(ctx: Context, *, consumers: bool = True, on_started: list[Startup] | None = None) -> FastAPI:
    """Returns the SafeCity app for `ctx`; `on_started` hooks run after the bus and consumers are up."""
    ctx.live = ctx.live or LiveHub()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        security.redact_access_log()
        # The road graph loads here, once, not on an officer's first poll; a bad file is logged, not fatal.
        await asyncio.to_thread(roads.configured, ctx.settings.road_graph)
        await ctx.bus.start()
        await ctx.outbox.start()
        if ctx.settings.bus == "nats":  # city mode: settings read by every batch kept in memory
            ctx.db.memo.start()
        if consumers:
            await start_consumers(ctx)
            await ctx.jobs.start()
        for hook in on_started or []:
            await hook(ctx)
        yield
        if ctx.video is not None:
            await ctx.video.close()
        if ctx.runtime is not None:
            await asyncio.to_thread(ctx.runtime.stop)
        await ctx.jobs.stop()
        await ctx.outbox.stop()
        await asyncio.to_thread(ctx.db.memo.stop)
        await ctx.bus.close()
        for close in ctx.on_close:
            try:
                await asyncio.to_thread(close)
            except Exception:  # shutting down: say so, close the rest
                log.exception("closing %r failed", close)

    key = security.secret_key(ctx.settings)
    security.metrics_token(ctx.settings)  # refuses an example value at start-up, not at the first scrape
    if consumers and ctx.settings.notices_in_serve:
        notice.check_portal_address(ctx.settings)  # a city without public_base_url stops here, not per notice
    app = FastAPI(
        title="SafeCity",
        version=__version__,
        description="Command centre of a city's cameras: alerts, plates, faces, challans, dispatch.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.secret_key = key
    _install_error_handlers(app)
    for module in domain_modules("api"):
        app.include_router(module.router)
    app.include_router(pages.router)
    app.include_router(alert_context.router)
    app.include_router(recent.router)
    # The API documentation's scripts and styles come from the fastapi-offline package, served here:
    # a command centre without internet gets working /docs and /redoc (FastAPI's default is a CDN).
    app.mount("/static/apidocs", StaticFiles(directory=API_DOCS_ASSETS), name="apidocs")
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    pages.templates.env.globals["csrf_token"] = page_csrf_token
    _install_perimeter(app, ctx, key)

    @app.get("/docs", include_in_schema=False)
    def swagger_docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="SafeCity API",
            swagger_js_url="/static/apidocs/swagger-ui-bundle.js",
            swagger_css_url="/static/apidocs/swagger-ui.css",
            swagger_favicon_url=FAVICON_URL,
        )
        return _docs_page(page)

    @app.get("/redoc", include_in_schema=False)
    def redoc_docs() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url="/openapi.json",
            title="SafeCity API",
            redoc_js_url="/static/apidocs/redoc.standalone.js",
            redoc_favicon_url=FAVICON_URL,
            with_google_fonts=False,
        )
        return _docs_page(page)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(pages.STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    @app.get("/healthz", tags=["system"], summary="Liveness and readiness")
    def healthz() -> dict[str, Any]:
        with ctx.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {
            "status": "ok",
            "version": __version__,
            "bus": ctx.settings.bus,
            "live_clients": ctx.live.connected if ctx.live else 0,
        }

    @app.get("/metrics", tags=["system"], summary="Prometheus metrics", response_class=PlainTextResponse)
    def metrics(request: Request) -> PlainTextResponse:
        """Prometheus metrics, for the metrics token (Authorization: Bearer) or the metrics addresses."""
        _admit_metrics(request, ctx)
        LIVE_CLIENTS.set(ctx.live.connected if ctx.live else 0)
        return PlainTextResponse(generate_latest(REGISTRY).decode(), media_type="text/plain; version=0.0.4")

    @app.get("/api/system/pipeline", tags=["system"], summary="The event pipeline's health")
    async def pipeline_status(
        _: Annotated[accounts.Principal, Depends(require("system:read"))],
    ) -> dict[str, Any]:
        """Consumers (handled, dead-lettered, waiting, latency), the outbox, jobs, camera leases, media."""
        from safecity.evidence.retention import media_summary
        from safecity.worker.cli import cluster_status

        state = await pipeline.status(ctx)
        state["media"] = await asyncio.to_thread(media_summary, ctx.db)
        try:
            state["cluster"] = await cluster_status(ctx)
        except Exception as exc:  # the lease bucket is away with the bus: say so, show the rest
            state["cluster"] = {"error": f"camera leases cannot be read: {exc}"}
        return state

    @app.post("/api/live/ticket", tags=["system"], summary="A one-use ticket to open the live socket")
    def live_ticket(
        principal: Annotated[accounts.Principal, Depends(require("alerts:read"))],
    ) -> dict[str, Any]:
        """Returns a ticket valid once, for 30 seconds: open `/ws/live?ticket=…` with it.

        The ticket names the session (or token) that asked for it without containing it, so the socket
        closes when that session ends, and no session token ever travels in a URL.
        """
        ticket = security.sign(
            key,
            "live",
            {"u": principal.username, "k": principal.token_id, "n": new_id()},
            ttl_s=LIVE_TICKET_S,
        )
        return {"ticket": ticket, "expires_in_s": LIVE_TICKET_S, "url": f"/ws/live?ticket={ticket}"}

    @app.websocket("/ws/live")
    async def live(websocket: WebSocket) -> None:
        """Live events and alerts: open with `?ticket=` from POST /api/live/ticket, or the session cookie."""
        foreign = security.foreign_origin(websocket)
        if foreign is not None:
            await websocket.close(code=4403, reason="the live feed is for SafeCity's own pages")
            return
        if "token" in websocket.query_params:
            await websocket.close(code=4400, reason="no tokens in URLs: POST /api/live/ticket, then ?ticket=")
            return
        try:
            # Off the event loop: SQLite may wait for a writer's lock, and the loop serves every page.
            principal = await _live_principal(websocket, ctx, key)
        except SafeCityError as exc:
            await websocket.close(code=4401, reason=exc.message.encode()[:120].decode(errors="ignore"))
            return
        if not principal.can("alerts:read"):
            await websocket.close(code=4403, reason="your role may not watch live alerts")
            return
        assert ctx.live is not None
        await ctx.live.serve(  # accepts the socket once it follows the bus
            websocket,
            principal,
            session=principal.token_id,
            recheck=partial(
                asyncio.to_thread, _session_principal, ctx, principal.username, principal.token_id
            ),
        )

    return app


def page_csrf_token(request: Request) -> str:
    """Returns the CSRF token for the page being rendered ('' when nobody is signed in)."""
    session = request.cookies.get(SESSION_COOKIE)
    return security.csrf_token(request.app.state.secret_key, session) if session else ""


def _presented_token(connection: HTTPConnection) -> str:
    """Returns the token the caller signed in with: the bearer token first, else the session cookie."""
    return security.bearer_token(connection) or connection.cookies.get(SESSION_COOKIE, "")


def _session_principal(ctx: Context, username: str, token_id: int | None) -> accounts.Principal:
    """Returns who holds session `token_id` of `username` now; Unauthorized once it ended or was disabled."""
    with ctx.db.session() as session:
        try:
            user = accounts.get_by_username(session, username)
        except SafeCityError:
            raise Unauthorized("this account no longer exists", hint="sign in again") from None
        if not user.active:
            raise Unauthorized("this account is disabled", hint="ask an admin")
        if all(row.id != token_id for row, _ in accounts.live_tokens(session, user.id)):
            raise Unauthorized("your session has ended", hint="sign in again")
        return accounts.Principal(
            user_id=user.id,
            username=user.username,
            role=user.role,
            token_id=token_id,
            must_change_password=user.must_change_password,
        )


def _token_principal(ctx: Context, token: str) -> accounts.Principal:
    with ctx.db.session() as session:
        return accounts.principal_for_token(session, token)


async def _live_principal(websocket: WebSocket, ctx: Context, key: bytes) -> accounts.Principal:
    """Returns who opens a live socket: its ticket's session (the ticket used up), or its cookie's."""
    ticket = websocket.query_params.get("ticket")
    if not ticket:
        cookie = websocket.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise Unauthorized("sign in first", hint="POST /api/live/ticket, then open /ws/live?ticket=…")
        return await asyncio.to_thread(_token_principal, ctx, cookie)
    payload = security.unsign(key, "live", ticket)

    def redeem() -> accounts.Principal:
        with ctx.db.session() as session:
            if not claim_event(session, "live.ticket", str(payload.get("n", ""))):
                raise Unauthorized("this ticket was used already", hint="ask for a new one")
        token_id = payload.get("k")
        return _session_principal(
            ctx, str(payload.get("u", "")), token_id if isinstance(token_id, int) else None
        )

    return await asyncio.to_thread(redeem)


def _admit_metrics(request: Request, ctx: Context) -> None:
    """Raises unless the caller shows the metrics token or comes from a metrics address."""
    expected = security.metrics_token(ctx.settings)
    presented = security.bearer_token(request)
    if expected and presented and hmac.compare_digest(presented.encode(), expected.encode()):
        return
    if address_in(client_address(request), ctx.settings.metrics_addresses):
        return
    if expected:
        raise Unauthorized(
            "metrics need the metrics token", hint="send 'Authorization: Bearer <SAFECITY_METRICS_TOKEN>'"
        )
    raise Forbidden(
        f"metrics are served to {', '.join(ctx.settings.metrics_addresses) or 'no address'} only",
        hint="scrape from there, or set SAFECITY_METRICS_TOKEN and send it as a bearer token",
    )


def _docs_page(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode()
    return HTMLResponse(html, headers={"content-security-policy": security.docs_csp(html)})


def _install_perimeter(app: FastAPI, ctx: Context, key: bytes) -> None:
    """Wraps the app (outermost first): security headers, CSRF, body limits."""
    settings = ctx.settings
    routes = _RouteKinds(app)

    def credentials(connection: HTTPConnection) -> bool:
        return bool(_presented_token(connection))

    async def verify(connection: HTTPConnection) -> bool:
        def check() -> bool:
            with ctx.db.session() as session:
                try:
                    accounts.principal_for_token(session, _presented_token(connection))
                except SafeCityError:
                    return False
                return True

        return await asyncio.to_thread(check)

    policy = security.BodyPolicy(
        json_bytes=settings.max_body_bytes,
        upload_bytes=settings.max_upload_bytes,
        anonymous_bytes=settings.max_anonymous_body_bytes,
        routes=routes,
        credentials=credentials,
        verify=verify,
    )
    app.add_middleware(security.BodyLimit, policy=policy)
    app.add_middleware(
        security.CsrfGuard, key=key, cookie=SESSION_COOKIE, token_free=frozenset({"/api/login"})
    )
    app.add_middleware(security.SecurityHeaders)


class _RouteKinds:
    """Tells, for a request, whether its route needs no sign-in and whether it takes file uploads.

    Read from the routes themselves (a route is signed-in when any of its dependencies is the
    sign-in's bearer scheme, which every signed-in dependency uses; it takes uploads when it has a
    File parameter), so a new route is covered as it is written.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._table: list[tuple[re.Pattern[str], frozenset[str], bool, bool]] | None = None

    def __call__(self, scope: Scope) -> tuple[bool, bool]:
        if self._table is None:
            self._table = [
                (
                    compile_path(context.path)[0],
                    frozenset(context.methods or ()),
                    not _signed_in(context.original_route.dependant),
                    _takes_files(context.original_route.dependant) or _raw_upload(context.original_route),
                )
                for context in iter_route_contexts(self.app.routes)
                if isinstance(context.original_route, APIRoute) and context.path
            ]
        path, method = scope["path"], scope["method"]
        for pattern, methods, anonymous, upload in self._table:
            if method in methods and pattern.match(path):
                return anonymous, upload
        return False, False


def _signed_in(dependant: Dependant) -> bool:
    return any(isinstance(d.call, HTTPBearer) or _signed_in(d) for d in dependant.dependencies)


def _raw_upload(route: APIRoute) -> bool:
    """A route that reads its body as a byte stream (a chunk of a resumable upload) says so in its OpenAPI."""
    content = ((route.openapi_extra or {}).get("requestBody") or {}).get("content") or {}
    return any(kind.endswith("octet-stream") for kind in content)


def _takes_files(dependant: Dependant) -> bool:
    return any(isinstance(p.field_info, File) for p in dependant.body_params) or any(
        _takes_files(d) for d in dependant.dependencies
    )


async def start_consumers(ctx: Context) -> None:
    """Subscribes every domain's bus handlers and jobs, the pipeline's own jobs and the live hub."""
    for module in domain_modules("consumer"):
        await module.register(ctx)
    pipeline.register(ctx)
    # The centre's watch over the workers: a camera no live worker holds is reported offline.
    ctx.jobs.every("cameras.unheld_watch", UNHELD_WATCH_S, partial(report_unheld_cameras, ctx))
    assert ctx.live is not None
    ctx.live.attach(ctx.bus)

    async def seen(event: Event) -> None:
        EVENTS.labels(event.type).inc()
        ctx.count(f"event:{event.type}")

    # Counted once in the city: the serves share the events between them rather than each see all.
    await ctx.bus.subscribe(["*"], seen, shared="events-seen")


API_DOCS_ASSETS = Path(fastapi_offline.__file__).with_name("static")
FAVICON_URL = "/static/favicon.svg"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SafeCityError)
    async def safecity_error(request: Request, exc: SafeCityError) -> Response:
        if exc.status_code == 401 and _wants_html(request):
            return RedirectResponse("/login", status_code=303)
        if exc.status_code in _ERROR_PAGES and _wants_html(request):
            return _error_page(request, exc.status_code, exc.message, exc.hint)
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems, fields = [], []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
            fields.append({"field": where, "message": str(err.get("msg", "invalid"))})
        return JSONResponse(
            {
                "error": "invalid_input",
                "detail": "; ".join(problems),
                "hint": "fix the fields named and send again",
                # The same, field by field, for a form to show each message beside its field.
                "fields": fields,
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in _ERROR_PAGES and _wants_html(request):
            return _error_page(request, exc.status_code, None, None)
        return JSONResponse({"error": "http_error", "detail": str(exc.detail)}, status_code=exc.status_code)


_ERROR_PAGES: dict[int, tuple[str, str, str]] = {
    403: (
        "Not allowed",
        "Your role may not open this.",
        "Ask a supervisor or an administrator if your duties need it.",
    ),
    404: (
        "Not found",
        "There is nothing at this address.",
        "Check the address, or start again from the command centre.",
    ),
    405: (
        "Not possible here",
        "This address does not answer that kind of request.",
        "Open it from its page.",
    ),
}
"""The errors a person's browser gets as a page (title, what happened, what to do), not as JSON."""


def _error_page(request: Request, status: int, detail: str | None, hint: str | None) -> Response:
    title, default_detail, default_hint = _ERROR_PAGES[status]
    context = {
        "status": status,
        "title": title,
        "detail": detail or default_detail,
        "hint": hint or default_hint,
    }
    return pages.templates.TemplateResponse(request, "error.html", context, status_code=status)


def _wants_html(request: Request) -> bool:
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and not request.url.path.startswith("/api")
    )
