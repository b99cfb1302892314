"""Resumable chunked uploads: offsets, a dropped connection resumed, the digest checked, no half items."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.requests import ClientDisconnect

from safecity.audit import service as audit
from safecity.bodyworn import custody, uploads
from safecity.bodyworn import service as items
from safecity.bodyworn.models import BodyWornItem
from safecity.core.context import Context
from tests.bodyworn.bodyworn_support import make_video
from tests.conftest import auth_headers

API = "/api/bodyworn/uploads"
OCTETS = {"Content-Type": "application/offset+octet-stream"}


def _open(client: TestClient, headers: dict[str, str], data: bytes, **extra: object) -> dict[str, object]:
    body = {"length": len(data), "filename": "FILE0001.MP4", "officer": "pc.rana", "device": "BC-17", **extra}
    made = client.post(API, json=body, headers=headers)
    assert made.status_code == 201, made.text
    assert made.headers["Upload-Offset"] == "0" and made.headers["Location"] == made.json()["url"]
    return made.json()


def _patch(client: TestClient, url: str, offset: int, chunk: bytes, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.patch(url, content=chunk, headers={**headers, **OCTETS, "Upload-Offset": str(offset)})


def _items(ctx: Context) -> int:
    with ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(BodyWornItem)) or 0)


def test_a_file_sent_in_chunks_becomes_one_item_with_the_digest_taken_on_arrival(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    officer = auth_headers(ctx, "traffic_officer", "pc.rana")
    data = make_video(tmp_path / "v.mp4", seconds=2).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    made = _open(client, officer, data, sha256=digest.upper(), categories=["traffic_stop"])
    url = str(made["url"])
    third = len(data) // 3
    assert _patch(client, url, 0, data[:third], officer).json()["offset"] == third
    # A chunk sent from the wrong place is refused with where the upload stands.
    wrong = _patch(client, url, 0, data[third : 2 * third], officer)
    assert wrong.status_code == 409 and f"has {third} bytes" in wrong.json()["detail"]
    head = client.head(url, headers=officer)
    assert (head.status_code, head.headers["Upload-Offset"], head.headers["Upload-Length"]) == (
        200,
        str(third),
        str(len(data)),
    )
    assert _patch(client, url, third, data[third : 2 * third], officer).json()["status"] == "open"
    assert _items(ctx) == 0  # nothing is an item until the last byte is in and checked
    done = _patch(client, url, 2 * third, data[2 * third :], officer)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done" and done.headers["Upload-Offset"] == str(len(data))
    with ctx.db.session() as session:
        item = items.get(session, done.json()["item_id"])
        log = custody.entries_of(session, item.id)
    assert item.sha256 == digest and item.categories == ["traffic_stop"] and item.uploaded_by == "pc.rana"
    assert ctx.media.path(item.ref).read_bytes() == data
    assert log[0].action == "ingest" and log[0].detail["client_sha256"] == digest
    # The officer sees what they brought in the list, though their role may not watch footage.
    listed = client.get("/api/bodyworn/items", headers=officer).json()
    assert [i["id"] for i in listed] == [item.id]
    assert client.get(f"/api/bodyworn/items/{item.id}", headers=officer).status_code == 403


def test_a_dropped_connection_keeps_what_arrived_and_the_upload_resumes_from_there(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    officer = auth_headers(ctx, "traffic_officer", "pc.rana")
    data = make_video(tmp_path / "v.mp4", seconds=2).read_bytes()
    made = _open(client, officer, data, sha256=hashlib.sha256(data).hexdigest())
    cut = len(data) // 2 + 17

    async def dropping() -> AsyncIterator[bytes]:
        yield data[:1000]
        yield data[1000:cut]
        raise ClientDisconnect()

    with pytest.raises(ClientDisconnect):
        asyncio.run(uploads.append(ctx, str(made["id"]), 0, dropping(), actor="pc.rana"))
    # Another server process (no hash state of this one) takes the rest.
    uploads._hashers.clear()
    assert client.head(str(made["url"]), headers=officer).headers["Upload-Offset"] == str(cut)
    assert _items(ctx) == 0
    done = _patch(client, str(made["url"]), cut, data[cut:], officer)
    assert done.json()["status"] == "done", done.text
    assert _items(ctx) == 1


def test_a_digest_mismatch_is_refused_and_nothing_is_registered(
    ctx: Context, client: TestClient, tmp_path: Path
) -> None:
    officer = auth_headers(ctx, "traffic_officer", "pc.rana")
    data = make_video(tmp_path / "v.mp4").read_bytes()
    made = _open(client, officer, data, sha256="0" * 64)
    refused = _patch(client, str(made["url"]), 0, data, officer)
    assert refused.status_code == 409
    assert "the client said " + "0" * 64 in refused.json()["detail"]
    status = client.get(str(made["url"]), headers=officer).json()
    assert status["status"] == "refused" and status["item_id"] is None
    assert _items(ctx) == 0 and not list(ctx.media.refs())
    with ctx.db.session() as session:
        (entry,) = audit.entries(session, action="bodyworn.refused")
    assert entry.target == f"upload:{made['id']}" and "SHA-256" in entry.detail["reason"]
    assert _patch(client, str(made["url"]), len(data), b"x", officer).status_code == 409


def test_an_upload_that_is_not_video_or_too_long_is_refused(ctx: Context, client: TestClient) -> None:
    officer = auth_headers(ctx, "traffic_officer", "pc.rana")
    made = _open(client, officer, b"x" * 5000)
    too_long = _patch(client, str(made["url"]), 0, b"x" * 5001, officer)
    assert too_long.status_code == 422 and "goes past its end" in too_long.json()["detail"]
    refused = _patch(client, str(made["url"]), 0, b"x" * 5000, officer)
    assert refused.status_code == 422 and "is not a video" in refused.json()["detail"]
    assert client.get(str(made["url"]), headers=officer).json()["status"] == "refused"
    assert _items(ctx) == 0
    named = client.post(
        API, json={"length": 10, "filename": "notes.txt", "officer": "a", "device": "b"}, headers=officer
    )
    assert named.status_code == 422 and "is not a recording" in named.json()["detail"]


def test_a_disk_without_room_refuses_the_upload_before_a_byte_is_sent(
    ctx: Context, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    officer = auth_headers(ctx, "traffic_officer", "pc.rana")
    monkeypatch.setattr(uploads.shutil, "disk_usage", lambda _: type("U", (), {"free": 10 * 1024**2})())
    refused = client.post(
        API, json={"length": 2 * 1024**3, "filename": "A.MP4", "officer": "a", "device": "b"}, headers=officer
    )
    assert refused.status_code == 503 and "the evidence store is full" in refused.json()["detail"]


def test_an_upload_left_unfinished_is_abandoned_and_its_part_removed(
    ctx: Context, client: TestClient
) -> None:
    officer = auth_headers(ctx, "traffic_officer", "pc.rana")
    made = _open(client, officer, b"y" * 4000)
    _patch(client, str(made["url"]), 0, b"y" * 1000, officer)
    assert (
        client.patch(
            str(made["url"]),
            content=b"y",
            headers={**auth_headers(ctx, "traffic_officer"), **OCTETS, "Upload-Offset": "1000"},
        ).status_code
        == 403
    )  # only its sender writes it
    ctx.settings.bodyworn_upload_hours = 1e-9
    assert uploads.expire(ctx) == 1
    assert client.get(str(made["url"]), headers=officer).json()["status"] == "abandoned"
    assert not [p for p in uploads.folder(ctx).iterdir()]
    assert _items(ctx) == 0


def test_a_chunk_may_be_as_large_as_an_upload_not_a_json_body(ctx: Context, client: TestClient) -> None:
    officer = auth_headers(ctx, "traffic_officer", "pc.rana")
    size = 3 * ctx.settings.max_body_bytes
    made = _open(client, officer, b"z" * size)
    answer = _patch(client, str(made["url"]), 0, b"z" * size, officer)
    assert (
        answer.status_code == 422 and "is not a video" in answer.json()["detail"]
    )  # read whole, then judged
