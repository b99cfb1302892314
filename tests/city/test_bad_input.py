"""A malformed event on the stream never blocks the events behind it."""

from __future__ import annotations

import json

import pytest
from bench.city_harness import CityCluster, EventMix, Publisher, ServeProcess

from tests.city.verdicts import explain, new_phase

pytestmark = pytest.mark.city


async def test_malformed_events_do_not_block_the_reads_behind_them(
    city: CityCluster, mix: EventMix, serves: list[ServeProcess]
) -> None:
    phase = new_phase("malformed")
    broken = [
        b"{not json at all",
        json.dumps({"type": "plate_read", "version": 1, "key": f"{phase.name}:bad:1"}).encode(),
        json.dumps({"type": "plate_read", "version": 99, "key": f"{phase.name}:bad:2", "plate": 7}).encode(),
        json.dumps({"type": "no_such_event", "version": 1, "key": f"{phase.name}:bad:3"}).encode(),
    ]
    async with Publisher(city.nats.url) as pub:
        for n, data in enumerate(broken):
            await pub.raw("safecity.plate_read", data, f"{phase.name}:raw:{n}")
        await pub.all_at_once(phase, [("read", mix.read(phase.name)) for _ in range(20)])
        await city.drain(pub, phase, deadline_s=45)
    account = city.account(phase, sms=False)
    assert account["out"]["reads_stored"] == 20, explain(city, account)
