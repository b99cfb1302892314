"""The audit key: kept outside the database, made on first use embedded, required in a city, rotatable.

Also: rows written before the chain was keyed stay verifiable as legacy rows after the upgrade.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from safecity.audit import anchor, keys, service
from safecity.audit.models import AuditEntry, AuditHead
from safecity.cli import app as cli
from safecity.core.clock import utcnow
from safecity.core.db import Database, alembic_config
from safecity.core.errors import InvalidInput
from safecity.settings import Settings


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    for name in ("SAFECITY_AUDIT_KEY_FILE", "SAFECITY_AUDIT_KEY", "SAFECITY_AUDIT_CHECKPOINT_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path))
    db = Database(f"sqlite:///{tmp_path / 'safecity.db'}")
    db.migrate()
    return db


def _log(db: Database, n: int) -> None:
    with db.session() as session:
        for i in range(n):
            service.record(session, actor="operator1", action="alert.view", target=f"a{i}")


def _verify(db: Database) -> service.VerifyReport:
    with db.session() as session:
        return service.verify(session)


def test_the_embedded_key_is_made_on_first_use_beside_the_database_and_only_its_id_is_stored(
    embedded: Database, tmp_path: Path
) -> None:
    _log(embedded, 2)
    key_file = tmp_path / "audit.keys"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    (key,) = keys.read_key_file(key_file)
    with embedded.session() as session:
        stored = {r.key_id for r in session.scalars(select(AuditEntry))}
        everything = " ".join(
            f"{r.detail} {r.hash} {r.prev_hash} {r.key_id}" for r in session.scalars(select(AuditEntry))
        )
    assert stored == {key.id}
    assert keys.encode(key) not in everything and key.secret.hex() not in everything
    assert (tmp_path / "audit-checkpoints.log").exists()


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.keys"
    keys.write_key_file(path, [keys.new_key()], exclusive=True)
    os.chmod(path, 0o644)
    with pytest.raises(InvalidInput, match="chmod 600"):
        keys.read_key_file(path)


def test_a_city_will_not_run_without_an_explicit_key_and_checkpoint_file(tmp_path: Path) -> None:
    url = "postgresql+psycopg://safecity@db.example/safecity"
    with pytest.raises(InvalidInput, match="SAFECITY_AUDIT_KEY_FILE"):
        anchor.resolve(Settings(data_dir=tmp_path), url)
    key_file = tmp_path / "missing.keys"
    with pytest.raises(InvalidInput, match="safecity audit new-key"):
        anchor.resolve(Settings(data_dir=tmp_path, audit_key_file=key_file), url)
    keys.write_key_file(key_file, [keys.new_key()], exclusive=True)
    with pytest.raises(InvalidInput, match="SAFECITY_AUDIT_CHECKPOINT_FILE"):
        anchor.resolve(Settings(data_dir=tmp_path, audit_key_file=key_file), url)
    found = anchor.resolve(
        Settings(data_dir=tmp_path, audit_key_file=key_file, audit_checkpoint_file=tmp_path / "cp.log"), url
    )
    assert found.keyring.current.id == keys.read_key_file(key_file)[0].id


def test_keys_may_come_from_the_environment(tmp_path: Path) -> None:
    old, new = keys.new_key(), keys.new_key()
    settings = Settings(
        data_dir=tmp_path,
        audit_key=f"{keys.encode(old)},{keys.encode(new)}",  # type: ignore[arg-type]
        audit_checkpoint_file=tmp_path / "cp.log",
    )
    found = anchor.resolve(settings, "postgresql+psycopg://safecity@db.example/safecity")
    assert [k.id for k in found.keyring.keys] == [old.id, new.id]
    assert found.keyring.current.id == new.id
    with pytest.raises(InvalidInput, match="too short"):
        keys.Keyring.from_env("c2hvcnQ=")


def test_a_rotated_key_takes_over_from_a_marked_row_and_the_old_one_still_verifies_the_rows_before(
    embedded: Database, tmp_path: Path
) -> None:
    _log(embedded, 3)
    old, new = service.rotate_key(embedded, actor="admin1")
    _log(embedded, 2)
    with embedded.session() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [r.key_id for r in rows] == [old.id] * 3 + [new.id] * 3
    marker = rows[3]
    assert (marker.action, marker.detail) == ("audit.key_rotated", {"from": old.id, "to": new.id})
    report = _verify(embedded)
    assert report.ok, report.problems
    assert report.keys == [old.id, new.id]
    assert f"rows 1..3 are signed with key {old.id}" in report.notes
    assert f"rows 4..6 are signed with key {new.id}" in report.notes
    assert [k.id for k in keys.read_key_file(tmp_path / "audit.keys")] == [old.id, new.id]


def test_another_process_signs_with_the_new_key_as_soon_as_the_file_is_rotated(
    embedded: Database, tmp_path: Path
) -> None:
    _log(embedded, 1)
    # The same database under another name: a keyring of its own, as another serve process has.
    other = Database(f"sqlite:///{tmp_path}/./safecity.db")
    _log(other, 1)
    assert anchor.for_url(other.url) is not anchor.for_url(embedded.url)
    _, new = service.rotate_key(embedded, actor="admin1")
    _log(other, 1)
    with other.session() as session:
        newest = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert newest is not None and newest.key_id == new.id
    assert _verify(embedded).ok


def test_a_dropped_key_or_a_row_signed_with_a_retired_key_is_named(
    embedded: Database, tmp_path: Path
) -> None:
    _log(embedded, 2)
    old, new = service.rotate_key(embedded, actor="admin1")
    _log(embedded, 1)
    key_file = tmp_path / "audit.keys"
    keys.write_key_file(
        key_file, [k for k in keys.read_key_file(key_file) if k.id == new.id], exclusive=False
    )
    report = _verify(embedded)
    assert not report.ok
    assert any(f"row 1 is signed with key {old.id}, which the keyring" in p for p in report.problems)


def test_the_rotate_and_new_key_commands(embedded: Database, tmp_path: Path) -> None:
    runner = CliRunner()
    _log(embedded, 1)
    rotated = runner.invoke(cli, ["audit", "rotate-key", "--actor", "admin1"])
    assert rotated.exit_code == 0, rotated.output
    assert "signs from now on" in rotated.output
    made = runner.invoke(cli, ["audit", "new-key", "--key-file", str(tmp_path / "city.keys")])
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE((tmp_path / "city.keys").stat().st_mode) == 0o600
    again = runner.invoke(cli, ["audit", "new-key", "--key-file", str(tmp_path / "city.keys")])
    assert again.exit_code == 1 and "exists already" in again.output
    assert runner.invoke(cli, ["audit", "checkpoint"]).exit_code == 0
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0


def test_rows_from_before_the_upgrade_verify_as_legacy_and_the_first_keyed_row_vouches_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SAFECITY_AUDIT_KEY_FILE", "SAFECITY_AUDIT_KEY", "SAFECITY_AUDIT_CHECKPOINT_FILE"):
        monkeypatch.delenv(name, raising=False)
    db = Database(f"sqlite:///{tmp_path / 'safecity.db'}")
    db.migrate()
    with db.engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "audit@-1")  # the schema as it was before keyed rows
    _write_legacy_rows(db, 4)
    db.migrate()
    legacy_only = _verify(db)
    assert legacy_only.ok and legacy_only.legacy_until == 4
    assert "no checkpoint anchors the legacy rows yet" in " ".join(legacy_only.notes)
    _log(db, 2)
    report = _verify(db)
    assert report.ok, report.problems
    assert report.legacy_until == 4 and report.checked == 6
    assert any(n.startswith("rows 1..4 are legacy") for n in report.notes)
    # A legacy row changed is named; with every legacy hash recomputed, the first keyed row's link breaks.
    with db.session() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="someone-else"))
    report = _verify(db)
    assert not report.ok and report.first_bad_seq == 2
    with db.session() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.seq <= 4).order_by(AuditEntry.seq)).all()
        prev = service.GENESIS
        for row in rows:
            row.prev_hash = prev
            row.hash = prev = _legacy_hash(row)
    report = _verify(db)
    assert not report.ok
    assert report.problems == ["row 5: its link to the previous row is broken"]


def _legacy_hash(row: AuditEntry) -> str:
    import hashlib
    import json

    body = json.dumps(
        [
            row.prev_hash,
            row.seq,
            row.at.isoformat(timespec="microseconds"),
            row.actor,
            row.action,
            row.target,
            row.detail,
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _write_legacy_rows(db: Database, n: int) -> None:
    """Writes rows the way the chain did before it was keyed: plain SHA-256, no key id column."""
    import hashlib
    import json

    prev = service.GENESIS
    with db.engine.begin() as connection:
        for seq in range(1, n + 1):
            at = utcnow()
            body = json.dumps(
                [prev, seq, at.isoformat(timespec="microseconds"), "admin", "user.create", f"u{seq}", {}],
                sort_keys=True,
                separators=(",", ":"),
            )
            digest = hashlib.sha256(body.encode()).hexdigest()
            values = dict(seq=seq, at=at, actor="admin", action="user.create", target=f"u{seq}", detail={})
            connection.execute(
                insert(AuditEntry.__table__).values(**values, prev_hash=prev, hash=digest)  # type: ignore[arg-type]
            )
            prev = digest
        connection.execute(insert(AuditHead.__table__).values(id=1, seq=n, hash=prev))  # type: ignore[arg-type]
