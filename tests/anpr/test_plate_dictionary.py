"""The dictionary of plates seen: partial and leading-wildcard searches go through it, on every database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from safecity.anpr import service
from safecity.anpr.models import PlateSeen, SearchQuery
from safecity.core.clock import utcnow
from safecity.core.db import Database
from safecity.core.events import PlateRead

NOW = utcnow()


def _store(db: Database, reads: list[tuple[str, int]]) -> None:
    with db.session() as session:
        for i, (plate, days_ago) in enumerate(reads):
            event = PlateRead(key=f"r{i}", plate=plate, confidence=0.9, at=NOW - timedelta(days=days_ago))
            service.store_read(session, event)


def _plates(db: Database, plate: str, match: str) -> list[str]:
    query = SearchQuery(plate=plate, match=match, reason="case 9/26")  # type: ignore[arg-type]
    with db.session() as session:
        return [r.plate for r in service.search_reads(session, query, actor="investigator").reads]


def test_the_dictionary_counts_reads_and_keeps_the_newest(any_db_url: str) -> None:
    db = Database(any_db_url)
    db.migrate()
    _store(db, [("LEA4521", 3), ("LEA4521", 1), ("LEA4521", 2), ("KHI4521", 5)])
    with db.session() as session:
        seen = {p.plate: p for p in session.scalars(select(PlateSeen))}
    assert seen["LEA4521"].reads == 3 and seen["KHI4521"].reads == 1
    assert abs(seen["LEA4521"].last_at - (NOW - timedelta(days=1))) < timedelta(seconds=1)


def test_partial_and_leading_wildcard_searches_find_every_matching_plate(any_db_url: str) -> None:
    db = Database(any_db_url)
    db.migrate()
    _store(db, [("LEA4521", 1), ("KHI4521", 2), ("ABC123", 1), ("LEA4521", 3), ("BKX45210", 4)])
    assert _plates(db, "4521", "partial") == ["LEA4521", "KHI4521", "LEA4521", "BKX45210"]  # newest first
    assert _plates(db, "*4521", "wildcard") == ["LEA4521", "KHI4521", "LEA4521"]
    assert _plates(db, "?HI*", "wildcard") == ["KHI4521"]
    assert _plates(db, "999", "partial") == []


def test_a_fragment_matching_many_plates_still_finds_them_all(any_db_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Past the dictionary's limit the search scans the reads instead; the answer must not change.
    monkeypatch.setattr(service, "MAX_DICTIONARY_PLATES", 2)
    db = Database(any_db_url)
    db.migrate()
    _store(db, [("LEA4521", 1), ("KHI4521", 2), ("ABC4521", 3)])
    assert _plates(db, "4521", "partial") == ["LEA4521", "KHI4521", "ABC4521"]


def test_purging_a_plates_last_read_removes_it_from_the_dictionary(any_db_url: str) -> None:
    db = Database(any_db_url)
    db.migrate()
    _store(db, [("OLD1234", 40), ("KEEP123", 40), ("KEEP123", 2)])
    with db.session() as session:
        assert service.purge_reads(session, older_than_days=30) == 2
    with db.session() as session:
        assert set(session.scalars(select(PlateSeen.plate))) == {"KEEP123"}
    assert _plates(db, "123", "partial") == ["KEEP123"]
