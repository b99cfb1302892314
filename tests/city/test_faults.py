"""Nothing acknowledged is lost and nothing is doubled when PostgreSQL, NATS or a serve process fails.

Each test runs two `safecity serve --no-workers` processes against the private city, publishes a
trickle of mixed events (reads, hot-listed reads, speeding) through `NatsBus.publish`, breaks one
part in the middle, and then counts in the database and at the SMS gateway what came out of every
event JetStream acknowledged.
"""

from __future__ import annotations

import asyncio

import pytest
from bench.city_harness import CityCluster, EventMix, Publisher, ServeProcess

from tests.city.verdicts import NOTHING_LOST_OR_DOUBLED, explain, new_phase, verdict

pytestmark = pytest.mark.city

# The old consumer gave up on an event after about 23 s of retries (10 deliveries): stay down longer.
POSTGRES_OUTAGE_S = 35.0
# A message a killed process had fetched comes back after the consumer's ack wait (30 s): wait past it.
DRAIN_S = 100.0


async def test_postgres_down_longer_than_the_old_retry_budget_loses_nothing(
    city: CityCluster, mix: EventMix, serves: list[ServeProcess]
) -> None:
    phase = new_phase("pg-outage")

    async def outage() -> None:
        await asyncio.sleep(2)
        await asyncio.to_thread(city.pg.stop, "immediate")
        await asyncio.sleep(POSTGRES_OUTAGE_S)
        await asyncio.to_thread(city.pg.start)

    try:
        async with Publisher(city.nats.url) as pub:
            await asyncio.gather(
                pub.at_rate(phase, lambda n: mix.mixed(phase.name, n), rate=5, seconds=POSTGRES_OUTAGE_S + 5),
                outage(),
            )
            await city.drain(pub, phase, deadline_s=DRAIN_S, sms=True)
    finally:
        if not city.pg.running:
            city.pg.start()
    account = city.account(phase)
    assert account["in"]["events"] > 150 and account["in"]["not_acknowledged"] == 0
    assert verdict(account)["lost"] == 0, explain(city, account)


async def test_serve_killed_mid_stream_loses_nothing_and_doubles_nothing(
    city: CityCluster, mix: EventMix, serves: list[ServeProcess]
) -> None:
    phase = new_phase("serve-kill")
    victim = serves[0]

    async def kill_and_restart() -> None:
        await asyncio.sleep(3)
        await asyncio.to_thread(victim.kill)
        await asyncio.to_thread(city.restart_serve, victim)

    async with Publisher(city.nats.url) as pub:
        await asyncio.gather(
            pub.at_rate(phase, lambda n: mix.mixed(phase.name, n), rate=40, seconds=10), kill_and_restart()
        )
        await city.drain(pub, phase, deadline_s=DRAIN_S, sms=True)
    account = city.account(phase)
    assert account["in"]["events"] >= 390
    assert verdict(account) == NOTHING_LOST_OR_DOUBLED, explain(city, account)


async def test_nats_killed_and_restarted_loses_nothing_it_acknowledged(
    city: CityCluster, mix: EventMix, serves: list[ServeProcess]
) -> None:
    phase = new_phase("nats-kill")

    async def kill_and_restart() -> None:
        await asyncio.sleep(4)
        await asyncio.to_thread(city.nats.kill)
        await asyncio.sleep(2)
        await asyncio.to_thread(city.nats.start)

    async with Publisher(city.nats.url) as pub:
        await asyncio.gather(
            pub.at_rate(phase, lambda n: mix.mixed(phase.name, n), rate=20, seconds=12), kill_and_restart()
        )
        await city.drain(pub, phase, deadline_s=DRAIN_S, sms=True)
    account = city.account(phase)
    assert account["in"]["events"] > 100, f"too few publishes were acknowledged: {phase.errors}"
    assert verdict(account)["lost"] == 0, explain(city, account)
    assert not city.dead_serves(), city.logs_of_serves()
