"""Hot lists: matching reads exactly and through OCR look-alikes, and keeping the lists with who and why."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from safecity.anpr import service
from safecity.anpr.hotlist import HotlistIndex, class_key
from safecity.anpr.models import AnprConfig, HotlistEntry, HotlistEntryPatch
from safecity.audit import service as audit
from safecity.core.context import Context
from safecity.core.errors import Conflict, InvalidInput


def test_a_read_one_lookalike_away_matches_the_listed_plate() -> None:
    index = HotlistIndex([("e1", "LEA4521"), ("e2", "BKR8090")])
    for misread in ("LEA452I", "LEA4S21", "1EA4521"):
        [match] = index.lookup(misread, max_confusions=1)
        assert (match.plate, match.kind, match.distance) == ("LEA4521", "confusion", 1)
    [match] = index.lookup("8KR8090", max_confusions=1)
    assert match.plate == "BKR8090"


def test_two_lookalikes_match_only_when_allowed() -> None:
    index = HotlistIndex([("e1", "LEA4521")])
    assert index.lookup("LEA4S2I", max_confusions=1) == []
    [match] = index.lookup("LEA4S2I", max_confusions=2)
    assert match.distance == 2


def test_exact_match_comes_before_lookalikes_and_zero_confusions_means_exact_only() -> None:
    index = HotlistIndex([("e1", "ABC105"), ("e2", "ABC1O5"), ("e3", "ABC1D5")])
    matches = index.lookup("ABC105", max_confusions=1)
    assert [m.kind for m in matches] == ["exact", "confusion", "confusion"]
    assert matches[0].plate == "ABC105"
    assert [m.plate for m in index.lookup("ABC105", max_confusions=0)] == ["ABC105"]


def test_a_different_character_is_not_a_lookalike() -> None:
    index = HotlistIndex([("e1", "LEA4521")])
    assert index.lookup("LEA4529", max_confusions=3) == []
    assert class_key("O0DQ") == "0000"


def test_edit_distance_one_finds_dropped_added_and_changed_characters_when_enabled() -> None:
    index = HotlistIndex([("e1", "LEA4521")])
    for read in ("LEA451", "LEAA4521", "LEA4529"):
        assert index.lookup(read, max_confusions=1) == []
        [match] = index.lookup(read, max_confusions=1, edit_distance=True)
        assert (match.plate, match.kind) == ("LEA4521", "edit")
    assert index.lookup("LE451", edit_distance=True) == []


def test_one_plate_on_two_lists_returns_both_entries() -> None:
    index = HotlistIndex([("stolen-1", "ABC123"), ("wanted-1", "ABC123")])
    [match] = index.lookup("ABC123")
    assert set(match.entry_ids) == {"stolen-1", "wanted-1"}


def test_adding_an_entry_normalises_the_plate_and_records_who_and_why(ctx: Context) -> None:
    with ctx.db.session() as session:
        entry = service.add_hotlist_entry(
            session, plate="lea-4521", list_name="stolen", reason="FIR 12/24 Clifton", actor="sgt.khan"
        )
        assert (entry.plate, entry.added_by, entry.reason) == ("LEA4521", "sgt.khan", "FIR 12/24 Clifton")
    with ctx.db.session() as session:
        [logged] = audit.entries(session, action="anpr.hotlist_add")
        assert (logged.actor, logged.target, logged.detail["reason"]) == (
            "sgt.khan",
            "LEA4521",
            "FIR 12/24 Clifton",
        )


def test_the_same_plate_twice_on_one_list_is_a_conflict(ctx: Context) -> None:
    with ctx.db.session() as session:
        service.add_hotlist_entry(session, plate="ABC123", list_name="stolen", reason="first", actor="a")
    with pytest.raises(Conflict), ctx.db.session() as session:
        service.add_hotlist_entry(session, plate="ABC 123", list_name="stolen", reason="again", actor="a")
    with ctx.db.session() as session:
        service.add_hotlist_entry(session, plate="ABC123", list_name="wanted", reason="suspect", actor="a")
        assert service.count_hotlist(session) == {"stolen": 1, "wanted": 1}


@pytest.mark.parametrize(
    ("plate", "list_name", "reason"),
    [("", "stolen", "why"), ("AB#12", "stolen", "why"), ("ABC123", "lost", "why")],
)
def test_a_bad_entry_is_refused_with_the_field_named(
    ctx: Context, plate: str, list_name: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as caught, ctx.db.session() as session:
        service.add_hotlist_entry(session, plate=plate, list_name=list_name, reason=reason, actor="a")
    assert "plate" in caught.value.message or "list_name" in caught.value.message


def test_the_match_index_follows_every_change_to_the_list(ctx: Context) -> None:
    with ctx.db.session() as session:
        assert service.match_hotlist(session, "LEA4521") == []
        entry = service.add_hotlist_entry(
            session, plate="LEA4521", list_name="bolo", reason="seen", actor="a"
        )
    with ctx.db.session() as session:
        [match] = service.match_hotlist(session, "LEA452I")
        assert (match.entry.id, match.kind) == (entry.id, "confusion")
        patch = HotlistEntryPatch(why="escalated by DSP", list_name="wanted")
        service.update_hotlist_entry(session, entry.id, patch, actor="dsp")
    with ctx.db.session() as session:
        assert service.match_hotlist(session, "LEA4521")[0].entry.list_name == "wanted"
        service.remove_hotlist_entry(session, entry.id, actor="dsp", why="vehicle recovered")
    with ctx.db.session() as session:
        assert service.match_hotlist(session, "LEA4521") == []
        [removed] = audit.entries(session, action="anpr.hotlist_remove")
        assert removed.detail["why"] == "vehicle recovered"


def test_a_rolled_back_change_never_leaves_a_stale_index(ctx: Context) -> None:
    with pytest.raises(RuntimeError), ctx.db.session() as session:
        service.add_hotlist_entry(session, plate="ZZZ999", list_name="stolen", reason="typo", actor="a")
        assert service.match_hotlist(session, "ZZZ999")
        raise RuntimeError("operator cancelled")
    with ctx.db.session() as session:
        assert service.match_hotlist(session, "ZZZ999") == []


def test_an_expired_entry_no_longer_matches(ctx: Context) -> None:
    from datetime import timedelta

    from safecity.core.clock import utcnow

    with ctx.db.session() as session:
        service.add_hotlist_entry(
            session,
            plate="OLD111",
            list_name="bolo",
            reason="lapsed",
            actor="a",
            expires_at=utcnow() - timedelta(1),
        )
        assert service.match_hotlist(session, "OLD111") == []


def test_edit_distance_matching_follows_the_configured_setting(ctx: Context) -> None:
    with ctx.db.session() as session:
        service.add_hotlist_entry(session, plate="LEA4521", list_name="stolen", reason="FIR 9", actor="a")
        assert service.match_hotlist(session, "LEA451") == []
        service.set_config(session, AnprConfig(edit_distance=True), actor="admin")
    with ctx.db.session() as session:
        [match] = service.match_hotlist(session, "LEA451")
        assert match.kind == "edit"


def test_csv_import_creates_every_entry(ctx: Context) -> None:
    content = (
        "plate,list,reason,vehicle,reference\n"
        "LEA-4521,stolen,FIR 12/24,white Corolla,FIR-12\n"
        "BKR 8090,wanted,robbery suspect,,\n"
        "\n"
        "KHI777,bolo,seen near port,,\n"
    )
    with ctx.db.session() as session:
        report = service.import_hotlist_csv(session, content, actor="sup")
    assert (report.created, report.updated, report.errors) == (3, 0, [])
    with ctx.db.session() as session:
        assert {e.plate for e in service.list_hotlist(session)} == {"LEA4521", "BKR8090", "KHI777"}
        assert service.match_hotlist(session, "8KR8090")[0].entry.vehicle == ""


def test_csv_import_with_any_bad_line_writes_nothing_and_names_each_line(ctx: Context) -> None:
    content = (
        "plate,list,reason\n"
        "LEA4521,stolen,FIR 12/24\n"
        "??,stolen,bad plate\n"
        "ABC123,lost,unknown list\n"
        "LEA-4521,stolen,repeat\n"
        "XYZ789,wanted,too,many\n"
    )
    with ctx.db.session() as session:
        report = service.import_hotlist_csv(session, content, actor="sup")
    assert report.created == 0
    assert sorted({e.split(":")[0] for e in report.errors}) == ["line 3", "line 4", "line 5", "line 6"]
    assert any("repeats line 2" in e for e in report.errors)
    with ctx.db.session() as session:
        assert session.scalars(select(HotlistEntry)).all() == []


def test_csv_import_of_a_listed_plate_needs_upsert(ctx: Context) -> None:
    with ctx.db.session() as session:
        service.add_hotlist_entry(session, plate="LEA4521", list_name="stolen", reason="old", actor="a")
    content = "plate,list,reason\nLEA4521,stolen,new reason\n"
    with ctx.db.session() as session:
        report = service.import_hotlist_csv(session, content, actor="sup")
        assert "already on the stolen list" in report.errors[0]
    with ctx.db.session() as session:
        report = service.import_hotlist_csv(session, content, actor="sup", upsert=True)
        assert report.updated == 1
        assert service.list_hotlist(session)[0].reason == "new reason"


def test_csv_without_the_needed_header_is_refused(ctx: Context) -> None:
    with pytest.raises(InvalidInput), ctx.db.session() as session:
        service.import_hotlist_csv(session, "LEA4521,stolen,why\n", actor="sup")
