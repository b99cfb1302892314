"""Shares bound to their recipient, watermarked copies, court bundles anyone can verify with Python alone."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import av
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from safecity.bodyworn import bundle, custody, sharing, watermark
from safecity.bodyworn import service as items
from safecity.bodyworn.models import ClassifyIn
from safecity.cli import app as cli
from safecity.core.context import Context
from safecity.core.errors import Forbidden
from tests.bodyworn.bodyworn_support import ingest_one, make_video
from tests.conftest import auth_headers


def _share(client: TestClient, headers: dict[str, str], item_id: str, **body: object) -> dict[str, object]:
    made = client.post(
        f"/api/bodyworn/items/{item_id}/shares",
        json={"recipient": "Adv. S. Khan", "recipient_role": "defence", "reason": "disclosure", **body},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    return made.json()


def test_a_link_opens_with_its_code_in_one_browser_only_and_every_open_is_in_custody(
    ctx: Context, client: TestClient, app: object, tmp_path: Path
) -> None:
    item_id = ingest_one(ctx, tmp_path / "d").item_id or ""
    investigator = auth_headers(ctx, "investigator", "si.khan")
    made = _share(client, investigator, item_id)
    token = str(made["url"]).rsplit("/", 1)[1]
    code = str(made["code"])
    opener = f"/api/share/{token}/open"
    assert client.get(f"/share/{token}").status_code == 200
    assert client.post(opener, json={}).status_code == 422  # the code first
    assert client.post(opener, json={"code": "00000000" if code != "00000000" else "1"}).status_code == 403
    opened = client.post(opener, json={"code": code})
    assert opened.status_code == 200 and opened.json()["mode"] == "view" and opened.json()["download"] is None
    assert client.get(f"/api/share/{token}/video", headers={"Range": "bytes=0-9"}).status_code == 206
    assert client.get(f"/api/share/{token}/download").status_code == 422  # view only
    # The same link and code in another browser (no binding cookie): refused.
    other = TestClient(app)  # type: ignore[arg-type]
    assert other.post(opener, json={"code": code}).status_code == 403
    assert other.get(f"/api/share/{token}/video").status_code == 403
    revoked = client.post(
        f"/api/bodyworn/shares/{made['id']}/revoke",
        json={"reason": "sent to the wrong person"},
        headers=investigator,
    )
    assert revoked.status_code == 200
    assert client.get(f"/api/share/{token}/video").status_code == 404
    with ctx.db.session() as session:
        log = custody.entries_of(session, item_id)
    assert [e.action for e in log] == [
        "ingest",
        "share",
        "share_refused",
        "share_open",
        "stream",
        "share_refused",
        "share_refused",
        "share_revoke",
    ]
    assert log[3].actor == f"share:{made['id']} (Adv. S. Khan)"


def test_five_wrong_codes_end_a_link(ctx: Context, client: TestClient, tmp_path: Path) -> None:
    item_id = ingest_one(ctx, tmp_path / "d").item_id or ""
    made = _share(client, auth_headers(ctx, "investigator"), item_id)
    token = str(made["url"]).rsplit("/", 1)[1]
    wrong = "x" + str(made["code"])[1:]
    for _ in range(sharing.MAX_CODE_FAILURES):
        assert client.post(f"/api/share/{token}/open", json={"code": wrong}).status_code == 403
    assert client.post(f"/api/share/{token}/open", json={"code": made["code"]}).status_code == 404


def test_a_download_share_gets_a_copy_with_the_recipient_burnt_in(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    item_id = ingest_one(ctx, tmp_path / "d").item_id or ""
    made = _share(
        client,
        auth_headers(ctx, "investigator"),
        item_id,
        mode="download",
        recipient="Public Prosecutor Aziz",
    )
    token = str(made["url"]).rsplit("/", 1)[1]
    assert client.post(f"/api/share/{token}/open", json={"code": made["code"]}).json()["copy_ready"] is False
    assert sharing.make_pending_copies(ctx) == 1
    copy = client.get(f"/api/share/{token}/download")
    assert copy.status_code == 200 and "attachment" in copy.headers["content-disposition"]
    with ctx.db.session() as session:
        item = items.get(session, item_id)
        log = custody.entries_of(session, item_id)
    assert hashlib.sha256(copy.content).hexdigest() != item.sha256
    assert ctx.media.path(item.ref).read_bytes() != copy.content  # the original untouched, the copy new
    assert [e.action for e in log][-2:] == ["copy", "share_download"]
    assert log[-1].detail["sha256"] == hashlib.sha256(copy.content).hexdigest()
    path = tmp_path / "copy.mp4"
    path.write_bytes(copy.content)
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="gray")
    assert frame[:20].mean() < frame[40:80].mean()  # the shaded band with the name at the top


def test_an_item_marked_do_not_disclose_is_neither_shared_nor_bundled(ctx: Context, tmp_path: Path) -> None:
    item_id = ingest_one(ctx, tmp_path / "d").item_id or ""
    with ctx.db.session() as session:
        items.classify(
            session,
            ctx.settings,
            item_id,
            ClassifyIn(reason="informant visible", do_not_disclose=True),
            actor="insp.rana",
        )
    with ctx.db.session() as session, pytest.raises(Forbidden, match="do not disclose"):
        from safecity.bodyworn.models import ShareIn

        sharing.create(
            session, item_id, ShareIn(recipient="Adv. S. Khan", reason="disclosure"), actor="si.khan"
        )
    with pytest.raises(Forbidden, match="do not disclose"):
        bundle.write_bundle(ctx, out=tmp_path / "b", actor="si.khan", reason="trial", item_ids=[item_id])
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_a_court_bundle_verifies_with_python_alone_and_any_change_shows(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ingest_one(ctx, tmp_path / "d", "A.MP4", seed=1).item_id or ""
    second = ingest_one(ctx, tmp_path / "d", "B.MP4", seed=2).item_id or ""
    out = tmp_path / "bundle"
    manifest = bundle.write_bundle(
        ctx, out=out, actor="si.khan", reason="trial court", item_ids=[first, second]
    )

    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == sorted(
        [
            "README.txt",
            "SHA256SUMS",
            "manifest.json",
            "verify.py",
            f"custody/{first}.pdf",
            f"custody/{second}.pdf",
            f"files/{first}_A.MP4",
            f"files/{second}_B.MP4",
        ]
    )
    listed = json.loads((out / "manifest.json").read_text())["files"]
    assert {f["sha256"] for f in listed if f["what"] == "original"} == {
        hashlib.sha256((tmp_path / "d" / n).read_bytes()).hexdigest() for n in ("A.MP4", "B.MP4")
    }
    # Anyone: the bundle's own verify.py, Python only, no SafeCity, isolated from this environment.
    alone = subprocess.run(
        [sys.executable, "-I", str(out / "verify.py")], capture_output=True, text=True, cwd=tmp_path
    )
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert alone.stdout.splitlines()[0] == f"manifest manifest.json sha256 {manifest['manifest_sha256']}"
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    assert CliRunner().invoke(cli, ["evidence", "verify-bundle", str(out)]).exit_code == 0
    with ctx.db.session() as session:
        log = custody.entries_of(session, first)
    assert log[-1].action == "bundle" and log[-1].detail["manifest_sha256"] == manifest["manifest_sha256"]

    original = out / f"files/{first}_A.MP4"
    data = bytearray(original.read_bytes())
    data[300] ^= 1
    original.write_bytes(bytes(data))
    (out / "files" / "extra.mp4").write_bytes(b"planted")
    (out / f"custody/{second}.pdf").unlink()
    broken = subprocess.run([sys.executable, "-I", str(out / "verify.py")], capture_output=True, text=True)
    assert broken.returncode == 1
    lines = broken.stdout.splitlines()
    assert any(line.startswith(f"CHANGED  files/{first}_A.MP4") for line in lines)
    assert f"MISSING  custody/{second}.pdf" in lines
    assert "ADDED    files/extra.mp4: not in the manifest" in lines
    assert lines[-1] == "BUNDLE NOT INTACT"
    result = CliRunner().invoke(cli, ["evidence", "verify-bundle", str(out)])
    assert result.exit_code == 1


def test_watermarking_keeps_the_picture_size_and_every_frame(tmp_path: Path) -> None:
    source = make_video(tmp_path / "a.mp4", seconds=1, size=(320, 240))
    frames = watermark.burn(source, tmp_path / "b.mp4", "For Adv. S. Khan (defence) only")
    with av.open(str(tmp_path / "b.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        assert sum(1 for _ in container.decode(stream)) == frames == 15
