"""The private city the fault tests run against: its own PostgreSQL, NATS and SMS gateway, two serves.

One city serves the whole folder (starting PostgreSQL and migrating takes seconds); each test names
its events with a phase of its own and counts only those, and brings back whatever it killed. Under
CI=true a missing initdb or nats-server fails the tests; elsewhere they skip, saying what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench.city_harness import (
    Binaries,
    CityCluster,
    EventMix,
    Fleet,
    MissingBinaries,
    SeedPlan,
    ServeProcess,
    find_binaries,
)

from tests.conftest import IN_CI


@pytest.fixture(scope="session")
def city_binaries() -> Binaries:
    try:
        return find_binaries()
    except MissingBinaries as exc:
        if IN_CI:
            pytest.fail(f"{exc} (CI=true requires them)")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def city(city_binaries: Binaries) -> Iterator[CityCluster]:
    with CityCluster(city_binaries) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def fleet(city: CityCluster) -> Fleet:
    return city.seed(
        SeedPlan(anpr_cameras=20, fixed_cameras=0, ordinary_plates=2_000, offence_plates=6_000, hot_plates=50)
    )


@pytest.fixture(scope="session")
def mix(fleet: Fleet) -> EventMix:
    return EventMix(fleet)


@pytest.fixture
def serves(city: CityCluster, fleet: Fleet) -> list[ServeProcess]:
    """Two serve processes on a whole city (PostgreSQL and NATS up), whatever the test before left down."""
    if not city.pg.running:
        city.pg.start()
    if not city.nats.alive:
        city.nats.start()
    city.ensure_serves(2)
    return city.serves[:2]
