"""Someone who can write to the database cannot forge the audit log: each attack is named by verify.

The attacks of issue 16 first: rewrite a row and recompute every later hash and the head with plain
SHA-256 (what the old chain used), and delete every row and the head. Then the others a database
writer would try: pass rows off as legacy ones, truncate the tail, remove the checkpoints.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from safecity.audit import anchor, service
from safecity.audit.models import AuditEntry, AuditHead
from safecity.cli import app as cli
from safecity.core.db import Database
from tests.conftest import audit_anchor_env


@pytest.fixture
def db(any_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    audit_anchor_env(tmp_path, monkeypatch)
    anchor.forget(any_db_url)
    database = Database(any_db_url)
    database.migrate()
    return database


def _log(db: Database, n: int, actor: str = "investigator1") -> None:
    with db.session() as session:
        for i in range(n):
            service.record(session, actor=actor, action="plates.search", target=f"LEA{i}", detail={"i": i})


def _verify(db: Database) -> service.VerifyReport:
    with db.session() as session:
        return service.verify(session)


def _plain_sha256(row: AuditEntry, prev_hash: str) -> str:
    """The hash an attacker computes: the old chain's plain SHA-256, which needs no key."""
    body = json.dumps(
        [
            prev_hash,
            row.seq,
            row.at.isoformat(timespec="microseconds"),
            row.actor,
            row.action,
            row.target,
            row.detail,
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _rewrite(db: Database, seq: int, *, actor: str, unkey: bool = False) -> None:
    """Changes row `seq`, then recomputes its hash, every later hash and the head with plain SHA-256."""
    with db.session() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
        prev = rows[seq - 2].hash if seq > 1 else service.GENESIS
        for row in rows[seq - 1 :]:
            if row.seq == seq:
                row.actor = actor
            if unkey:
                row.key_id = None
            row.prev_hash = prev
            row.hash = prev = _plain_sha256(row, prev)
        head = session.get(AuditHead, 1)
        assert head is not None
        head.hash = prev
        if unkey:
            head.key_id = None


def test_an_untouched_keyed_log_verifies_with_its_checkpoint(db: Database) -> None:
    _log(db, 5)
    assert service.checkpoint(db) is not None
    report = _verify(db)
    assert report.ok, report.problems
    assert report.checked == 5 and report.checkpoints == 2 and report.anchored_seq == 5
    assert len(report.keys) == 1


def test_a_row_rewritten_with_plain_sha256_and_a_recomputed_head_is_named(db: Database) -> None:
    _log(db, 6)
    _rewrite(db, 3, actor="someone-else")
    report = _verify(db)
    assert not report.ok
    assert report.first_bad_seq == 3
    assert "row 3 (plates.search by someone-else) was altered after it was written" in report.problems
    assert "rows 4..6 do not verify either: their hashes were recomputed without the key" in report.problems


def test_rows_rewritten_as_unkeyed_legacy_rows_are_named(db: Database) -> None:
    _log(db, 4)
    _rewrite(db, 2, actor="someone-else", unkey=True)
    report = _verify(db)
    assert not report.ok
    assert report.first_bad_seq == 2
    assert "row 2 carries no key although rows are keyed from row 1: it was rewritten" in report.problems


def test_the_whole_log_rewritten_as_legacy_rows_does_not_pass_either(db: Database) -> None:
    _log(db, 4)
    _rewrite(db, 1, actor="someone-else", unkey=True)
    report = _verify(db)
    assert not report.ok
    assert any("row 1 claims to be a legacy (unkeyed) row" in p for p in report.problems)


def test_deleting_every_row_and_the_head_is_named(db: Database) -> None:
    _log(db, 5)
    service.checkpoint(db)
    with db.session() as session:
        session.execute(delete(AuditEntry))
        session.execute(delete(AuditHead))
    report = _verify(db)
    assert not report.ok
    assert report.first_bad_seq == 1
    assert any(
        "the log is empty but checkpoint #2" in p and "every row was deleted" in p for p in report.problems
    )


def test_deleting_everything_before_any_scheduled_checkpoint_is_named_too(db: Database) -> None:
    # The first keyed row is checkpointed as soon as it commits: there is no window at the start.
    _log(db, 3)
    with db.session() as session:
        session.execute(delete(AuditEntry))
        session.execute(delete(AuditHead))
    report = _verify(db)
    assert not report.ok
    assert any("the log is empty but checkpoint #1" in p for p in report.problems)


def test_a_truncated_tail_is_named_by_the_checkpoint_that_covered_it(db: Database) -> None:
    _log(db, 6)
    service.checkpoint(db)
    with db.session() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq >= 5))
        last = session.get(AuditEntry, 4)
        assert last is not None
        session.execute(update(AuditHead).values(seq=4, hash=last.hash))
    report = _verify(db)
    assert not report.ok
    assert report.first_bad_seq == 5
    assert any("rows 5..6 were deleted (the tail was truncated)" in p for p in report.problems)


def test_a_deleted_middle_row_is_named(db: Database) -> None:
    _log(db, 5)
    with db.session() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    report = _verify(db)
    assert not report.ok
    assert "rows 3..3 are missing (deleted)" in report.problems


def test_a_missing_checkpoint_file_is_named(db: Database) -> None:
    _log(db, 2)
    found = anchor.for_url(db.url)
    found.checkpoints.path.unlink()
    report = _verify(db)
    assert not report.ok
    assert any("the file is missing" in p and "anchor outside the database" in p for p in report.problems)


def test_an_edited_or_removed_checkpoint_is_named(db: Database) -> None:
    _log(db, 2)
    service.checkpoint(db)
    _log(db, 1)
    service.checkpoint(db)
    path = anchor.for_url(db.url).checkpoints.path
    lines = path.read_text().splitlines(keepends=True)
    forged = json.loads(lines[2])
    forged["last_seq"] = 2
    path.write_text(lines[0] + lines[1] + json.dumps(forged) + "\n")
    report = _verify(db)
    assert any("line 3 (checkpoint #3) does not carry a valid signature" in p for p in report.problems)
    path.write_text(lines[0] + lines[2])
    report = _verify(db)
    assert any("checkpoint #3 does not follow checkpoint #1" in p for p in report.problems)


def test_a_checkpoint_is_refused_to_a_log_that_does_not_verify(db: Database) -> None:
    _log(db, 3)
    service.checkpoint(db)
    _log(db, 2)
    with db.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(target="changed"))
    with pytest.raises(service.AuditTampered, match="row 4"):
        service.checkpoint(db)


def test_verify_command_names_the_first_bad_row_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SAFECITY_AUDIT_KEY_FILE", raising=False)
    monkeypatch.delenv("SAFECITY_AUDIT_CHECKPOINT_FILE", raising=False)
    db = Database(f"sqlite:///{tmp_path / 'safecity.db'}")
    db.migrate()
    _log(db, 4)
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "audit log intact" in ok.output
    _rewrite(db, 2, actor="nobody")
    bad = runner.invoke(cli, ["audit", "verify"])
    assert bad.exit_code == 1
    assert "first bad row 2" in bad.output and "row 2 (plates.search by nobody) was altered" in bad.output
