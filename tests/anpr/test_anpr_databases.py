"""The ANPR services behave the same on SQLite and PostgreSQL: reads, search, hot lists, clones, purge."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from safecity.alerts import service as alerts
from safecity.anpr import service
from safecity.anpr.models import SearchQuery
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import PlateRead
from safecity.settings import Settings


@pytest.fixture
def db_ctx(any_db_url: str, tmp_path: Path) -> Iterator[Context]:
    context = Context.create(Settings(data_dir=tmp_path / "data", database_url=any_db_url))
    yield context
    context.db.dispose()


def test_reads_hot_lists_clones_search_and_purge_on_each_database(db_ctx: Context) -> None:
    now = utcnow()
    with db_ctx.db.session() as session:
        for camera_id, lat, lon in (("cam-a", 24.8138, 67.0300), ("cam-b", 24.8607, 67.0011)):
            data = CameraIn.model_validate(
                {
                    "id": camera_id,
                    "name": camera_id,
                    "kind": "anpr",
                    "district": "South",
                    "latitude": lat,
                    "longitude": lon,
                }
            )
            cameras.create(session, data, actor="test")
        report = service.import_hotlist_csv(session, "plate,list,reason\nLEA4521,stolen,FIR 1\n", actor="sup")
        assert report.created == 1
    events = [
        PlateRead(
            key="k1", camera_id="cam-a", at=now - timedelta(minutes=2), plate="LEA4521", confidence=0.95
        ),
        PlateRead(
            key="k2", camera_id="cam-b", at=now - timedelta(minutes=1), plate="LEA4521", confidence=0.95
        ),
        PlateRead(key="k3", camera_id="cam-b", at=now - timedelta(days=100), plate="LEB4599", confidence=0.9),
    ]
    kinds: list[str] = []
    for event in [*events, events[0]]:
        with db_ctx.db.session() as session:
            outcome = service.process_read(session, event)
            kinds.extend(alert.kind for alert, is_new in outcome.alerts if is_new)
    assert sorted(kinds) == ["cloned_plate", "hotlist", "hotlist"]
    with db_ctx.db.session() as session:
        assert service.count_reads(session) == 3
        query = SearchQuery(plate="LE?45*", reason="case 1/24")
        found = service.search_reads(session, query, actor="insp")
        assert [r.plate for r in found.reads] == ["LEA4521", "LEA4521", "LEB4599"]
        assert service.purge_reads(session, older_than_days=90) == 1
    with db_ctx.db.session() as session:
        assert service.count_reads(session) == 2
        assert len(alerts.list_alerts(session, kind="hotlist")) == 2
