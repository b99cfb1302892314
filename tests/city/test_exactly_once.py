"""One offence is one violation, one challan and one SMS, and one sighting one alert, however many serves run.

Two `safecity serve` processes share the consumer groups, so two events describing the same fact
published at the same instant are handled by both at once.
"""

from __future__ import annotations

from typing import Any

import pytest
from bench.city_harness import CityCluster, EventMix, Publisher, ServeProcess

from safecity.core.clock import utcnow
from tests.city.verdicts import explain, new_phase

pytestmark = pytest.mark.city


async def test_two_serves_given_the_same_violation_at_once_issue_one_challan_and_one_sms(
    city: CityCluster, mix: EventMix, serves: list[ServeProcess]
) -> None:
    phase = new_phase("same-offence")
    items: list[tuple[str, Any]] = []
    for _ in range(25):
        # Two workers' candidates for one offence: their own keys, the same vehicle, camera and moment.
        plate, at = mix.offence_plate(), utcnow()
        items.append(("offence", mix.speeding(phase.name, plate=plate, at=at, suffix="a")))
        items.append(("offence", mix.speeding(phase.name, plate=plate, at=at, suffix="b")))
    for _ in range(10):
        event = mix.speeding(phase.name)
        items += [("offence", event), ("offence", event.model_copy())]
    async with Publisher(city.nats.url) as pub:
        await pub.all_at_once(phase, items)
        await city.drain(pub, phase, deadline_s=60, sms=True)
    account = city.account(phase)
    assert account["in"]["offences"] == 35
    assert account["missing"] == {
        "reads": 0,
        "hotlist_alerts": 0,
        "violations": 0,
        "challans": 0,
        "sms": 0,
    }, explain(city, account)
    duplicates = {k: account["duplicates"][k] for k in ("violations", "challans", "notices")}
    assert duplicates == {"violations": 0, "challans": 0, "notices": 0}, explain(city, account)


async def test_two_serves_given_the_same_hotlist_sighting_at_once_raise_one_alert(
    city: CityCluster, mix: EventMix, serves: list[ServeProcess]
) -> None:
    phase = new_phase("same-sighting")
    items: list[tuple[str, Any]] = []
    for _ in range(15):
        combo = mix.hot_combo()
        items.append(("hot", mix.hot_read(phase.name, combo=combo, suffix="a")))
        items.append(("hot", mix.hot_read(phase.name, combo=combo, suffix="b")))
    async with Publisher(city.nats.url) as pub:
        await pub.all_at_once(phase, items)
        await city.drain(pub, phase, deadline_s=60)
    account = city.account(phase, sms=False)
    assert account["missing"]["hotlist_alerts"] == 0, explain(city, account)
    assert account["duplicates"]["alerts"] == 0, explain(city, account)
