"""Which failures are the infrastructure's (retry until it is back) and which are the message's own.

A consumer must never give up on an event because the database or the bus is down for a minute:
such errors are retried without a budget. Any other error is the event's own problem (a poison
message) and goes, after a few tries, to the dead letters with its reason.
"""

from __future__ import annotations

import errno
import sqlite3

import psycopg
from sqlalchemy import exc as sa_exc

from safecity.core.errors import Unavailable

_TRANSIENT_ERRNOS = {
    errno.ENOSPC,
    errno.EIO,
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}


def _transient_one(exc: BaseException) -> bool:
    if isinstance(exc, Unavailable | ConnectionError | TimeoutError):
        return True
    if isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError
        | sa_exc.PendingRollbackError,
    ):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, psycopg.OperationalError | sqlite3.OperationalError):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    module = type(exc).__module__
    # nats-py's connection errors (no servers, connection closed, timeouts, JetStream unavailable).
    return module.startswith("nats.") and type(exc).__name__ in {
        "ConnectionClosedError",
        "NoServersError",
        "TimeoutError",
        "StaleConnectionError",
        "OutboundBufferLimitError",
        "ServiceUnavailableError",
        "NoRespondersError",
        "FlushTimeoutError",
    }


def is_transient(exc: BaseException) -> bool:
    """Returns True when `exc` (or what caused it) says a database, bus, disk or network is unavailable."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if _transient_one(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
