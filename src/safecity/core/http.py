"""Dependencies every domain's API uses: the context, a database session per request, and who called.

`client_address(request)` is the one place that decides a caller's address: the direct peer, or the
address a trusted proxy (setting `trusted_proxies`) forwarded. Every rate limit and every audit row
that records an address uses it, so a header typed by anyone else changes nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from safecity.core.context import Context

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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


@lru_cache(maxsize=16)
def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """Returns the parsed networks of `cidrs` (validated by the settings already)."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def address_in(address: str, cidrs: Iterable[str]) -> bool:
    """Returns whether `address` (an IP in text) lies in one of `cidrs`; a non-IP never does."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks(tuple(cidrs)))


def _trusted(connection: HTTPConnection) -> tuple[str, ...]:
    ctx: Context | None = getattr(connection.app.state, "ctx", None)
    return tuple(ctx.settings.trusted_proxies) if ctx is not None else ()


def peer_address(connection: HTTPConnection) -> str:
    """Returns the address of the direct peer of the connection (a proxy's, behind one)."""
    return connection.client.host if connection.client else "unknown"


def from_trusted_proxy(connection: HTTPConnection) -> bool:
    """Returns whether the direct peer is one of the configured trusted proxies."""
    trusted = _trusted(connection)
    return bool(trusted) and address_in(peer_address(connection), trusted)


def client_address(connection: HTTPConnection) -> str:
    """Returns the caller's address: the peer's, or the one a trusted proxy forwarded.

    X-Forwarded-For is read right to left, skipping the trusted proxies, so an address the client
    typed itself at the left end of the header is never believed.
    """
    peer = peer_address(connection)
    trusted = _trusted(connection)
    if not trusted or not address_in(peer, trusted):
        return peer
    forwarded = ",".join(connection.headers.getlist("x-forwarded-for"))
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not address_in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage where an address should be: keep the proxy's own
    return hops[0] if hops else peer  # every hop a proxy of ours: the first is the origin


def request_scheme(connection: HTTPConnection) -> str:
    """Returns http or https as the client sees it (a trusted proxy's X-Forwarded-Proto counts)."""
    if from_trusted_proxy(connection):
        forwarded = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if forwarded in ("http", "https"):
            return forwarded
    return "https" if connection.url.scheme in ("https", "wss") else "http"


def is_https(connection: HTTPConnection) -> bool:
    """Returns whether the client reached us over TLS (cookies are then Secure)."""
    return request_scheme(connection) == "https"


def public_host(connection: HTTPConnection) -> str:
    """Returns host[:port] as the client addressed it (a trusted proxy's X-Forwarded-Host counts)."""
    if from_trusted_proxy(connection):
        forwarded = connection.headers.get("x-forwarded-host", "").split(",")[0].strip()
        if forwarded:
            return forwarded.lower()
    return connection.headers.get("host", "").lower()
