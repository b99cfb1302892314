"""The FastAPI app: mounts every domain's routes, starts the bus consumers, serves the pages.

`create_app(ctx)` builds the app for a context; the lifespan starts the bus, subscribes each
domain's consumers (`consumer.register(ctx)`), and connects the live hub that feeds the browsers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import generate_latest
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from safecity import __version__
from safecity.accounts import service as accounts
from safecity.accounts.api import SESSION_COOKIE, require
from safecity.core import pipeline
from safecity.core.context import Context
from safecity.core.errors import SafeCityError
from safecity.core.events import Event
from safecity.core.metrics import EVENTS, LIVE_CLIENTS, REGISTRY
from safecity.domains import domain_modules
from safecity.web import pages
from safecity.web.live import LiveHub
from safecity.worker.watchdog import report_unheld_cameras

log = logging.getLogger(__name__)

Startup = Callable[[Context], Awaitable[None]]

UNHELD_WATCH_S = 5.0


def create_app(ctx: Context, *, consumers: bool = True, on_started: list[Startup] | None = None) -> FastAPI:
    """Returns the SafeCity app for `ctx`; `on_started` hooks run after the bus and consumers are up."""
    ctx.live = ctx.live or LiveHub()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.bus.start()
        await ctx.outbox.start()
        if consumers:
            await start_consumers(ctx)
            await ctx.jobs.start()
        for hook in on_started or []:
            await hook(ctx)
        yield
        if ctx.runtime is not None:
            await asyncio.to_thread(ctx.runtime.stop)
        await ctx.jobs.stop()
        await ctx.outbox.stop()
        await ctx.bus.close()
        for close in ctx.on_close:
            try:
                await asyncio.to_thread(close)
            except Exception:  # shutting down: say so, close the rest
                log.exception("closing %r failed", close)

    app = FastAPI(
        title="SafeCity",
        version=__version__,
        description="Command centre of a city's cameras: alerts, plates, faces, challans, dispatch.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    _install_error_handlers(app)
    for module in domain_modules("api"):
        app.include_router(module.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")

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
    def metrics() -> PlainTextResponse:
        LIVE_CLIENTS.set(ctx.live.connected if ctx.live else 0)
        return PlainTextResponse(generate_latest(REGISTRY).decode(), media_type="text/plain; version=0.0.4")

    @app.get("/api/system/pipeline", tags=["system"], summary="The event pipeline's health")
    async def pipeline_status(
        _: Annotated[accounts.Principal, Depends(require("system:read"))],
    ) -> dict[str, Any]:
        """Consumer groups (handled, dead-lettered, waiting, latency), the outbox, jobs and camera leases."""
        from safecity.worker.cli import cluster_status

        state = await pipeline.status(ctx)
        try:
            state["cluster"] = await cluster_status(ctx)
        except Exception as exc:  # the lease bucket is away with the bus: say so, show the rest
            state["cluster"] = {"error": f"camera leases cannot be read: {exc}"}
        return state

    @app.websocket("/ws/live")
    async def live(websocket: WebSocket) -> None:
        token = websocket.cookies.get(SESSION_COOKIE) or websocket.query_params.get("token", "")

        def signed_in() -> accounts.Principal:
            with ctx.db.session() as session:
                return accounts.principal_for_token(session, token)

        try:
            # Off the event loop: SQLite may wait for a writer's lock, and the loop serves every page.
            principal = await asyncio.to_thread(signed_in)
        except SafeCityError:
            await websocket.close(code=4401, reason="sign in first")
            return
        if not principal.can("alerts:read"):
            await websocket.close(code=4403, reason="your role may not watch live alerts")
            return
        await websocket.accept()
        assert ctx.live is not None
        await ctx.live.serve(websocket, principal)

    return app


async def start_consumers(ctx: Context) -> None:
    """Subscribes every domain's bus handlers and jobs, the pipeline's own jobs and the live hub."""
    for module in domain_modules("consumer"):
        await module.register(ctx)
    pipeline.register(ctx)
    # The centre's watch over the workers: a camera no live worker holds is reported offline.
    ctx.jobs.every("cameras.unheld_watch", UNHELD_WATCH_S, partial(report_unheld_cameras, ctx))
    live = ctx.live
    assert live is not None

    async def on_event(event: Event) -> None:
        EVENTS.labels(event.type).inc()
        ctx.count(f"event:{event.type}")
        await live.on_event(event)

    await ctx.bus.subscribe(["*"], on_event)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SafeCityError)
    async def safecity_error(request: Request, exc: SafeCityError) -> JSONResponse:
        if exc.status_code == 401 and _wants_html(request):
            return RedirectResponse("/login", status_code=303)  # type: ignore[return-value]
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
            problems.append(f"{where}: {err.get('msg', 'invalid')}")
        return JSONResponse(
            {
                "error": "invalid_input",
                "detail": "; ".join(problems),
                "hint": "fix the fields named and send again",
            },
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": "http_error", "detail": str(exc.detail)}, status_code=exc.status_code)


def _wants_html(request: Request) -> bool:
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and not request.url.path.startswith("/api")
    )
