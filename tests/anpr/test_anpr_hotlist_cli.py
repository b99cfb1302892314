"""`safecity hotlist`: the hot lists and plate search from a terminal, with plain errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safecity.anpr.hotlist_cli import app
from safecity.audit import service as audit
from safecity.core.cliutil import open_context

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_add_check_list_and_remove_a_stolen_vehicle(data_dir: Path) -> None:
    added = runner.invoke(
        app, ["add", "LEA-4521", "--list", "stolen", "--reason", "FIR 12/24", "--actor", "sgt.khan"]
    )
    assert added.exit_code == 0, added.output
    checked = runner.invoke(app, ["check", "LEA452I", "--json", "--actor", "sgt.khan"])
    [match] = json.loads(checked.stdout)
    assert (match["entry"]["plate"], match["kind"]) == ("LEA4521", "confusion")
    listed = json.loads(runner.invoke(app, ["list", "--json"]).stdout)
    assert [e["added_by"] for e in listed] == ["sgt.khan"]
    removed = runner.invoke(app, ["remove", "LEA4521", "--list", "stolen", "--why", "recovered"])
    assert removed.exit_code == 0, removed.output
    assert json.loads(runner.invoke(app, ["list", "--json"]).stdout) == []


def test_a_bad_csv_is_refused_line_by_line_and_nothing_is_imported(data_dir: Path, tmp_path: Path) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text("plate,list,reason\nLEA4521,stolen,FIR 1\nBKR8090,lost,FIR 2\n")
    result = runner.invoke(app, ["import", str(csv)])
    assert result.exit_code == 1
    assert "line 3" in result.output and "nothing was imported" in result.output
    assert "Traceback" not in result.output
    assert json.loads(runner.invoke(app, ["list", "--json"]).stdout) == []
    missing = runner.invoke(app, ["import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_search_needs_a_reason_and_is_audited(data_dir: Path) -> None:
    assert runner.invoke(app, ["search", "LEA4521"]).exit_code != 0
    result = runner.invoke(
        app, ["search", "LE?45*", "--reason", "case 3/24", "--json", "--actor", "insp.raza"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["match"] == "wildcard"
    bad = runner.invoke(app, ["search", "LEA;1", "--reason", "case 3/24"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    ctx = open_context()
    with ctx.db.session() as session:
        [entry] = audit.entries(session, action="anpr.search")
    assert (entry.actor, entry.detail["reason"]) == ("insp.raza", "case 3/24")
    ctx.db.dispose()


def test_an_area_is_defined_from_the_terminal_and_unknown_cameras_are_named(data_dir: Path) -> None:
    from safecity.cameras import service as cameras
    from safecity.cameras.models import CameraIn

    ctx = open_context()
    with ctx.db.session() as session:
        data = CameraIn.model_validate(
            {
                "id": "cam-gate",
                "name": "Gate",
                "kind": "anpr",
                "district": "South",
                "latitude": 24.8,
                "longitude": 67.0,
            }
        )
        cameras.create(session, data, actor="test")
    ctx.db.dispose()
    bad = runner.invoke(app, ["area-add", "Red Zone", "--cameras", "cam-gate,cam-nope"])
    assert bad.exit_code == 1 and "cam-nope" in bad.output
    good = runner.invoke(app, ["area-add", "Red Zone", "--cameras", "cam-gate", "--plates", "VIP-001"])
    assert good.exit_code == 0, good.output
    [area] = json.loads(runner.invoke(app, ["areas", "--json"]).stdout)
    assert (area["name"], area["plates"]) == ("Red Zone", ["VIP001"])
