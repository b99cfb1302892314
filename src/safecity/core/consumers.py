"""How a domain consumes bus events: in batches, one transaction per batch, each event acted on once.

    await consume_each(ctx, "cameras-health", [CameraHealth.type], handle_health)

runs `handle_health(session, event)` for every event of a batch in one transaction, after claiming
the batch's keys in one statement (`core.db.claim_events`): an event whose key this consumer has
handled before is skipped, and the claims commit together with the effects. `consume_batch` hands
the new events of a batch to one function at once, for consumers that do their own bulk writes
(plate reads). Follow-up messages go through the outbox (`core.outbox.stage`) inside the same
transaction; anything else to do after the commit goes through `core.db.after_commit`.

What happens on failure is the bus's business (`core.bus`): infrastructure errors are retried until
the infrastructure is back, anything else isolates and dead-letters the one event that caused it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.orm import Session

from safecity.core.context import Context
from safecity.core.db import claim_events
from safecity.core.events import Event

E = TypeVar("E", bound=Event)

EachFn = Callable[[Session, Event], None]
BatchFn = Callable[[Session, list[Event]], None]


def new_events(session: Session, consumer: str, events: Sequence[Event]) -> list[Event]:
    """Claims the batch's keys for `consumer`; returns its events not handled before, first of each key."""
    fresh = claim_events(session, consumer, [e.key for e in events])
    out = []
    for event in events:
        if event.key in fresh:
            fresh.discard(event.key)  # a key twice in one batch is acted on once
            out.append(event)
    return out


def batch_handler(ctx: Context, consumer: str, fn: BatchFn) -> Callable[[list[Event]], None]:
    """Returns a bus handler that runs `fn` on a batch's new events in one transaction."""

    def handle(events: list[Event]) -> None:
        with ctx.db.session() as session:
            fresh = new_events(session, consumer, events)
            if fresh:
                fn(session, fresh)

    return handle


async def consume_batch(
    ctx: Context, consumer: str, types: Sequence[str], fn: BatchFn, *, max_batch: int = 200
) -> None:
    """Subscribes `fn` to batches of new events of `types` as the consumer group `consumer`."""
    await ctx.bus.consume(types, consumer, batch_handler(ctx, consumer, fn), max_batch=max_batch)


def _each(fn: EachFn) -> BatchFn:
    def each(session: Session, events: list[Event]) -> None:
        for event in events:
            fn(session, event)

    return each


async def consume_each(
    ctx: Context, consumer: str, types: Sequence[str], fn: EachFn, *, max_batch: int = 100
) -> None:
    """Subscribes `fn(session, event)` to each new event of `types`, a batch to a transaction."""
    await consume_batch(ctx, consumer, types, _each(fn), max_batch=max_batch)


def handle_now(ctx: Context, consumer: str, fn: EachFn, events: Sequence[Event]) -> None:
    """Handles events here and now as the consumer would (one transaction, each key once)."""
    batch_handler(ctx, consumer, _each(fn))(list(events))
