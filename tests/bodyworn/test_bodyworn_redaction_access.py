"""Redaction from a terminal (`safecity evidence redact`) and over HTTP (a background job, bodycam:redact)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from safecity.bodyworn import custody, ingest, redaction
from safecity.bodyworn.models import ItemMeta
from safecity.cli import app
from safecity.core.context import Context
from tests.bodyworn.redaction_support import make_clip
from tests.conftest import auth_headers

API = "/api/bodyworn"


def _ingest(ctx: Context, tmp_path: Path) -> str:
    path = make_clip(tmp_path / "FILE0001.MP4", seconds=2.0)
    result = ingest.ingest_file(ctx, path, ItemMeta(officer="pc.rana", device="BC-17"), actor="dock-7")
    return result.item_id or ""


def test_a_script_redacts_an_item_into_a_new_item_and_a_file(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    item_id = _ingest(ctx, tmp_path)
    out = tmp_path / "redacted.mp4"
    done = CliRunner().invoke(
        app,
        [
            "evidence",
            "redact",
            item_id,
            "--faces",
            "--box",
            "0.2,1.5,20,88,52,60",
            "--mute",
            "0.5,1.0",
            "--out",
            str(out),
            "--as",
            "si.khan",
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    made = json.loads(done.stdout)
    assert made["frames"] == 30 and hashlib.sha256(out.read_bytes()).hexdigest() == made["sha256"]
    shown = json.loads(CliRunner().invoke(app, ["evidence", "show", made["item_id"], "--json"]).stdout)
    assert shown["derived_from"] == item_id and [op["op"] for op in shown["operations"]] == [
        "faces",
        "box",
        "mute",
        "encode",
    ]


def test_the_command_says_when_the_copy_is_marked_do_not_disclose_and_who_lifts_it(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    item_id = _ingest(ctx, tmp_path)
    marked = CliRunner().invoke(
        app, ["evidence", "classify", item_id, "--do-not-disclose", "--reason", "a witness at risk"]
    )
    assert marked.exit_code == 0, marked.output
    done = CliRunner().invoke(app, ["evidence", "redact", item_id, "--mute", "0,1", "--as", "si.khan"])
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())
    assert f"the copy is marked do not disclose, as {item_id} is" in said
    made_id = said.split("item ", 1)[1].split(" ", 1)[0]
    assert f"safecity evidence classify {made_id} --disclose --reason" in said
    lifted = CliRunner().invoke(
        app, ["evidence", "classify", made_id, "--disclose", "--reason", "cleared for the defence"]
    )
    assert lifted.exit_code == 0 and "do not disclose" not in lifted.output, lifted.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--box", "1,2,3"], "--box '1,2,3' is not T0,T1,X,Y,W,H"),
        (["--box", "1.5,0.5,0,0,10,10"], "before it starts"),
        (["--box", "0,1,300,200,50,50"], "lies outside the 320×240 frame"),
        (["--mute", "1,9"], "mute range 1 ends at 9 s, after the recording ends"),
        ([], "nothing to redact"),
    ],
)
def test_the_command_says_what_is_wrong_with_a_request(
    ctx: Context,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    item_id = _ingest(ctx, tmp_path)
    refused = CliRunner().invoke(app, ["evidence", "redact", item_id, *args])
    assert refused.exit_code == 1 and message in " ".join(refused.output.split()), refused.output
    unknown = CliRunner().invoke(app, ["evidence", "redact", "NOPE", "--faces"])
    assert unknown.exit_code == 1 and "no body-worn item NOPE" in unknown.output


def test_a_supervisor_asks_for_a_redaction_follows_its_progress_and_opens_the_result(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    item_id = _ingest(ctx, tmp_path)
    supervisor = auth_headers(ctx, "supervisor", "insp.rana")
    body = {
        "faces": True,
        "boxes": [{"t0": 0.0, "t1": 1.0, "x": 20, "y": 88, "w": 52, "h": 60}],
        "mutes": [{"t0": 0.2, "t1": 0.8}],
        "reason": "for the press office",
    }
    asked = client.post(f"{API}/items/{item_id}/redactions", json=body, headers=supervisor)
    assert asked.status_code == 202, asked.text
    job = asked.json()
    assert job["status"] == "queued" and job["request"]["faces"] is True
    assert redaction.run_pending(ctx) == 1
    done = client.get(f"{API}/redactions/{job['id']}", headers=supervisor).json()
    assert done["status"] == "done" and done["frames_done"] == 30
    made = done["result_item_id"]
    original = client.get(f"{API}/items/{item_id}", headers=supervisor).json()
    assert [d["id"] for d in original["derived"]] == [made]
    copy = client.get(f"{API}/items/{made}", headers=supervisor).json()
    assert copy["derived_from"] == item_id and copy["operations"][0]["op"] == "faces"
    assert client.get(f"{API}/items/{made}/video", headers=supervisor).status_code == 200
    listed = client.get(f"{API}/items/{item_id}/redactions", headers=supervisor).json()
    assert [r["id"] for r in listed] == [job["id"]]


def test_redaction_needs_bodycam_redact_and_bad_requests_are_4xx_with_a_reason(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    item_id = _ingest(ctx, tmp_path)
    body = {"faces": True, "reason": "for the press office"}
    for role in ("operator", "admin", "traffic_officer"):
        refused = client.post(f"{API}/items/{item_id}/redactions", json=body, headers=auth_headers(ctx, role))
        assert refused.status_code == 403, role
    investigator = auth_headers(ctx, "investigator", "si.khan")
    outside = {**body, "boxes": [{"t0": 0, "t1": 1, "x": 310, "y": 0, "w": 40, "h": 40}]}
    answer = client.post(f"{API}/items/{item_id}/redactions", json=outside, headers=investigator)
    assert answer.status_code == 422 and "outside the 320×240 frame" in answer.text
    backwards = {**body, "mutes": [{"t0": 1.5, "t1": 0.5}]}
    answer = client.post(f"{API}/items/{item_id}/redactions", json=backwards, headers=investigator)
    assert answer.status_code == 422 and "before it starts" in answer.text
    missing = client.post(f"{API}/items/NOPE/redactions", json=body, headers=investigator)
    assert missing.status_code == 404
    assert client.get(f"{API}/redactions/NOPE", headers=investigator).status_code == 404
    with ctx.db.session() as session:
        actions = [e.action for e in custody.entries_of(session, item_id)]
    assert actions == ["ingest", "redact_refused"]
