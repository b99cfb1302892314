"""Dependencies every domain's API uses: the context and a database session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from sqlalchemy.orm import Session

from safecity.core.context import Context


def get_context(request: Request) -> Context:
    """Returns the process context the app was built with."""
    ctx: Context = request.app.state.ctx
    return ctx


def get_ws_context(websocket: WebSocket) -> Context:
    """Returns the process context for a WebSocket."""
    ctx: Context = websocket.app.state.ctx
    return ctx


def get_session(ctx: Annotated[Context, Depends(get_context)]) -> Iterator[Session]:
    """Yields a session committed after the route returns, rolled back if it raised."""
    with ctx.db.session() as session:
        yield session


Ctx = Annotated[Context, Depends(get_context)]
DbSession = Annotated[Session, Depends(get_session)]
