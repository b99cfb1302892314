"""The audit log shows tampering: an altered, deleted or truncated row is found and named."""

from __future__ import annotations

from sqlalchemy import delete, update

from safecity.audit import service as audit
from safecity.audit.models import AuditEntry
from safecity.core.db import Database


def _log(db: Database, n: int) -> None:
    with db.session() as session:
        for i in range(n):
            audit.record(
                session, actor="investigator1", action="plates.search", target=f"LEA{i}", detail={"i": i}
            )


def test_untouched_log_verifies(any_db_url: str) -> None:
    db = Database(any_db_url)
    db.migrate()
    _log(db, 5)
    with db.session() as session:
        report = audit.verify(session)
    assert report.ok and report.checked == 5


def test_altered_row_is_named(any_db_url: str) -> None:
    db = Database(any_db_url)
    db.migrate()
    _log(db, 5)
    with db.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="someone-else"))
    with db.session() as session:
        report = audit.verify(session)
    assert not report.ok
    assert any("row 3" in p and "altered" in p for p in report.problems)


def test_deleted_row_is_named(any_db_url: str) -> None:
    db = Database(any_db_url)
    db.migrate()
    _log(db, 5)
    with db.session() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    with db.session() as session:
        report = audit.verify(session)
    assert not report.ok
    assert any("2..2" in p and "missing" in p for p in report.problems)


def test_deleting_the_newest_rows_shows(any_db_url: str) -> None:
    db = Database(any_db_url)
    db.migrate()
    _log(db, 5)
    with db.session() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq >= 4))
    with db.session() as session:
        report = audit.verify(session)
    assert not report.ok
    assert any("head says row 5" in p for p in report.problems)


def test_verify_command_exits_nonzero_on_tampering(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from safecity.cli import app

    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path))
    db = Database(f"sqlite:///{tmp_path / 'safecity.db'}")
    db.migrate()
    _log(db, 3)
    runner = CliRunner()
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0
    with db.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(target="changed"))
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "row 1" in result.output
