"""`safecity evidence …` from a terminal: import (resumable), list, custody report, verify, cases, bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safecity.bodyworn import custody, ingest
from safecity.bodyworn.models import ItemMeta
from safecity.cli import app
from safecity.core.context import Context
from safecity.settings import Settings
from tests.bodyworn.bodyworn_support import make_video
from tests.conftest import audit_anchor_env


def test_an_officer_imports_a_dock_folder_lists_reports_verifies_and_bundles_a_case(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    dock = tmp_path / "BC-17"
    dock.mkdir()
    for n in range(3):
        make_video(dock / f"FILE000{n}.MP4", seed=n)
    (dock / "FILE0009.MP4").write_bytes(b"not video")

    first = CliRunner().invoke(
        app,
        [
            "evidence",
            "import",
            str(dock),
            "--officer",
            "pc.rana",
            "--device",
            "BC-17",
            "--category",
            "arrest",
            "--json",
        ],
    )
    assert first.exit_code == 2, first.output  # one file refused: the status says so
    report = json.loads(first.stdout)
    assert (report["ingested"], report["refused"]) == (3, 1)
    again = CliRunner().invoke(
        app,
        [
            "evidence",
            "import",
            str(dock),
            "--officer",
            "pc.rana",
            "--device",
            "BC-17",
            "--category",
            "arrest",
        ],
    )
    assert "0 ingested" in again.stdout and "3 already in" in again.stdout
    listed = json.loads(CliRunner().invoke(app, ["evidence", "list", "--json"]).stdout)
    assert len(listed) == 3 and all(i["categories"] == ["arrest"] for i in listed)
    item_id = listed[0]["id"]

    assert (
        CliRunner()
        .invoke(
            app,
            [
                "evidence",
                "case",
                "open",
                "CASE-2026-0112",
                "--title",
                "Robbery",
                "--fir",
                "112/2026",
                "--officer",
                "pc.rana",
            ],
        )
        .exit_code
        == 0
    )
    assert CliRunner().invoke(app, ["evidence", "case", "add", "CASE-2026-0112", item_id]).exit_code == 0
    pdf = tmp_path / "custody.pdf"
    assert CliRunner().invoke(app, ["evidence", "custody", item_id, "--pdf", str(pdf)]).exit_code == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    verified = CliRunner().invoke(app, ["evidence", "verify", "--all"])
    assert verified.exit_code == 0 and "3 checked, 3 match" in verified.stdout
    out = tmp_path / "bundle"
    bundled = CliRunner().invoke(
        app, ["evidence", "bundle", "--case", "CASE-2026-0112", "--out", str(out), "--reason", "trial court"]
    )
    assert bundled.exit_code == 0, bundled.output
    checked = CliRunner().invoke(app, ["evidence", "verify-bundle", str(out)])
    assert checked.exit_code == 0 and "bundle intact" in checked.stdout
    deleted = CliRunner().invoke(app, ["evidence", "delete", item_id, "--reason", "tidy"])
    assert deleted.exit_code == 1 and "open case CASE-2026-0112" in " ".join(deleted.output.split())


def test_ingest_custody_and_cases_work_the_same_on_each_database(
    any_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit_anchor_env(tmp_path, monkeypatch)
    settings = Settings(data_dir=tmp_path / "data", database_url=any_db_url)
    ctx = Context.create(settings)
    try:
        dock = tmp_path / "dock"
        dock.mkdir()
        make_video(dock / "A.MP4", seed=1)
        make_video(dock / "B.MP4", seed=1)  # the same bytes under another name
        report = ingest.import_folder(ctx, dock, ItemMeta(officer="pc.rana", device="BC-17"), actor="dock-7")
        assert (report.ingested, report.duplicates) == (1, 1)
        item_id = report.results[0].item_id or ""
        with ctx.db.session() as session:
            from safecity.bodyworn import cases
            from safecity.bodyworn.models import CaseIn

            cases.create(session, CaseIn(number="CASE-1", title="Theft"), actor="si.khan")
            cases.add_item(session, "CASE-1", kind="bodyworn", ref_id=item_id, actor="si.khan")
        with ctx.db.session() as session:
            assert [e.action for e in custody.entries_of(session, item_id)] == [
                "ingest",
                "duplicate",
                "case_add",
            ]
    finally:
        ctx.db.dispose()
