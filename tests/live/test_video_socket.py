"""The video socket: who may open it, what a tile receives, and the bad cases (a stalled viewer, a codec
the browser cannot play, a camera that drops, a camera without a stream) each with a clear state."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from safecity.audit import service as audit
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn, CameraKind, CameraPatch
from safecity.core.context import Context
from safecity.live import protocol
from tests.conftest import PASSWORD, make_user
from tests.live.conftest import VideoCity, add_cameras
from tests.live.live_support import decode, write_heavy_h264


def open_socket(
    city: VideoCity, camera_id: str, cookie: str, variant: str = "sub", **kw: Any
) -> ClientConnection:
    url = f"{city.ws}/ws/video/{camera_id}?variant={variant}"
    return connect(url, additional_headers={"Cookie": cookie}, max_size=None, **kw)


def receive_for(ws: ClientConnection, seconds: float) -> list[bytes]:
    got: list[bytes] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            message = ws.recv(timeout=left)
        except TimeoutError:
            break
        assert isinstance(message, bytes)
        got.append(message)
    return got


def states(messages: list[bytes]) -> list[dict[str, Any]]:
    return [protocol.state_of(m) for m in messages if m[0] == protocol.STATE]


def signed_in(client: TestClient, ctx: Context, role: str) -> None:
    name = make_user(ctx, role)
    client.post("/api/login", json={"username": name, "password": PASSWORD}).raise_for_status()


def refusal(client: TestClient, path: str, **headers: str) -> int:
    with pytest.raises(WebSocketDisconnect) as caught, client.websocket_connect(path, headers=headers) as ws:
        ws.receive_bytes()
    return caught.value.code


def test_the_socket_admits_signed_in_watchers_of_our_own_pages_only(
    ctx: Context, client: TestClient, tmp_path: Any
) -> None:
    add_cameras(ctx, tmp_path)
    assert refusal(client, "/ws/video/cam-a") == 4401
    signed_in(client, ctx, "cashier")
    assert refusal(client, "/ws/video/cam-a") == 4403
    signed_in(client, ctx, "operator")
    assert refusal(client, "/ws/video/cam-a", Origin="https://attacker.example") == 4403
    assert refusal(client, "/ws/video/no-such-camera") == 4404
    with client.websocket_connect("/ws/video/cam-none") as ws:
        said = protocol.state_of(ws.receive_bytes())
    assert said["state"] == "no_stream" and said["detail"] == "the camera has no stream configured"


def test_a_wall_tile_gets_playable_video_of_the_sub_stream_and_the_watching_is_audited(
    video_city: VideoCity,
) -> None:
    name, cookie = video_city.cookie("operator")
    with open_socket(video_city, "cam-a", cookie) as ws:
        got = receive_for(ws, 4)
    intro = states(got)[0]
    assert intro["state"] == "connecting" and intro["variant"] == "sub"
    init = next(m for m in got if m[0] == protocol.INIT)
    assert protocol.init_meta(init)["variant"] == "sub" and protocol.init_meta(init)["camera"] == "cam-a"
    assert len(decode(got)) >= 20  # 10 fps, from the first key-frame on
    with video_city.ctx.db.session() as session:
        watched = audit.entries(session, action="camera.watch")
        assert [(e.actor, e.target) for e in watched] == [(name, "cam-a")]


def stalled_client(city: VideoCity, camera_id: str, cookie: str) -> socket.socket:
    """Opens the video socket by hand and never reads from it again (a viewer whose network stalled)."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny window: the server backs up soon
    raw.connect(("127.0.0.1", int(city.url.rsplit(":", 1)[1])))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /ws/video/{camera_id}?variant=main HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Cookie: {cookie}\r\n\r\n"
        ).encode()
    )
    assert raw.recv(12) == b"HTTP/1.1 101"
    return raw


def test_a_stalled_viewer_holds_up_neither_the_other_viewers_nor_the_recorder(
    video_city: VideoCity, tmp_path: Path
) -> None:
    ctx = video_city.ctx
    # A camera sending about 3 MB/s, so the kernel's socket buffers fill within seconds.
    heavy = write_heavy_h264(tmp_path / "noise.mp4")
    with ctx.db.session() as session:
        cameras.create(
            session,
            CameraIn(
                id="cam-heavy",
                name="Heavy",
                kind=CameraKind.fixed,
                district="Saddar",
                latitude=24.9,
                longitude=67.0,
                stream_url=str(heavy),
            ),
            actor="test",
        )
    deadline = time.monotonic() + 20
    while "cam-heavy" not in ctx.runtime.running:  # the worker reads the registry every few seconds
        assert time.monotonic() < deadline, "the worker did not take the new camera"
        time.sleep(0.2)
    _, cookie = video_city.cookie("operator")
    stalled = stalled_client(video_city, "cam-heavy", cookie)
    time.sleep(1.0)
    recorder = ctx.runtime.recorders.recorders()["cam-heavy"]
    recorded_before = recorder.segments_written, recorder._seg_packets
    assert ctx.video is not None
    with open_socket(video_city, "cam-heavy", cookie, variant="main") as reading:
        got = receive_for(reading, 8)
        feed = ctx.video.feeds[("cam-heavy", "main")]
        slow = max(feed.viewers, key=lambda v: v.dropped)
    assert slow.dropped > 0 and len(slow.queue) <= 150
    fragments = [m for m in got if m[0] == protocol.FRAGMENT]
    assert len(fragments) >= 70  # 10 fps for 8 s, from the key-frame it joined at
    seqs = [protocol.header(m).seq for m in fragments]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # every frame, none missing
    recorded_after = recorder.segments_written, recorder._seg_packets
    assert recorded_after > recorded_before and recorder.state == "recording"
    stalled.close()


def test_h265_shows_pictures_and_says_the_browser_cannot_play_it(video_city: VideoCity) -> None:
    _, cookie = video_city.cookie("operator")
    with open_socket(video_city, "cam-h265", cookie) as ws:
        got = receive_for(ws, 4)
    said = [s for s in states(got) if s["state"] == "unplayable"]
    assert (
        said and said[0]["codec"] == "hevc" and "H.265 cannot be played by the browser" in said[0]["detail"]
    )
    assert any(m[0] == protocol.PICTURE for m in got)
    assert not any(m[0] == protocol.FRAGMENT for m in got)


def test_a_camera_that_drops_mid_stream_says_so(video_city: VideoCity) -> None:
    _, cookie = video_city.cookie("operator")
    with open_socket(video_city, "cam-drop", cookie) as ws:
        got = receive_for(ws, 8)
    health = [s["state"] for s in states(got) if s.get("health")]
    assert {"reconnecting", "offline"} & set(health), health


def test_no_picture_for_a_while_says_why_with_the_cameras_health(ctx: Context, tmp_path: Any) -> None:
    from safecity.server import create_app

    add_cameras(ctx, tmp_path)  # no worker runs: nobody holds the cameras
    with TestClient(create_app(ctx)) as client:
        signed_in(client, ctx, "operator")
        with client.websocket_connect("/ws/video/cam-a") as ws:
            first = protocol.state_of(ws.receive_bytes())
            later = protocol.state_of(ws.receive_bytes())
    assert first["state"] == "connecting"
    assert later["state"] == "waiting" and later["detail"] == "no picture from the camera for 5 s"
    assert later["health_state"] == "unknown"


def test_viewers_of_many_cameras_at_once_each_get_their_own_camera(video_city: VideoCity) -> None:
    _, cookie = video_city.cookie("operator")
    results: dict[str, list[bytes]] = {}

    def watch(camera_id: str) -> None:
        with open_socket(video_city, camera_id, cookie) as ws:
            results[camera_id] = receive_for(ws, 4)

    threads = [threading.Thread(target=watch, args=(c,)) for c in ("cam-a", "cam-b", "cam-c", "cam-d")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for camera_id, got in results.items():
        init = next(m for m in got if m[0] == protocol.INIT)
        assert protocol.init_meta(init)["camera"] == camera_id
        assert len(decode(got)) >= 20


def until_closed(ws: ClientConnection, seconds: float) -> tuple[list[bytes], int | None, str | None]:
    """Reads until the server closes the socket (or `seconds` pass); returns the messages and the close."""
    got: list[bytes] = []
    end = time.monotonic() + seconds
    with contextlib.suppress(TimeoutError, ConnectionClosed):
        while (left := end - time.monotonic()) > 0:
            message = ws.recv(timeout=left)
            assert isinstance(message, bytes)
            got.append(message)
    return got, ws.close_code, ws.close_reason


MEDIA = (protocol.INIT, protocol.FRAGMENT, protocol.PICTURE)


def test_a_camera_refused_by_its_check_sends_no_byte_of_video_though_its_stream_was_followed_early(
    video_city: VideoCity, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, cookie = video_city.cookie("operator")
    # cam-c plays once, so this process holds its init segment and key-frame ready for the next viewer.
    with open_socket(video_city, "cam-c", cookie) as ws:
        assert any(m[0] == protocol.FRAGMENT for m in receive_for(ws, 3))
    # The list of cameras with video is read as the socket opens; cam-b was disabled after it was read
    # (it is stale): the socket follows cam-b's stream at once, and only the check says no.
    with video_city.ctx.db.session() as session:
        read_before = cameras.watchable(session)
        cameras.update(session, "cam-b", CameraPatch(enabled=False), actor="test")
    monkeypatch.setattr(cameras, "watchable", lambda session: read_before)
    with open_socket(video_city, "cam-b", cookie) as ws:
        disabled = until_closed(ws, 4)
    assert video_city.ctx.video is not None
    assert ("cam-b", "main") in video_city.ctx.video.feeds  # followed while it was checked
    # cam-c's watching cannot be audited: refused, though the camera exists, has video and its stream's
    # key-frame waited in the socket's queue while the audit failed.
    real = audit.record_viewing

    def failing(session: Any, **kw: Any) -> Any:
        if kw["target"] == "cam-c":
            time.sleep(0.5)
            raise RuntimeError("audit store away")
        return real(session, **kw)

    monkeypatch.setattr(audit, "record_viewing", failing)
    with open_socket(video_city, "cam-c", cookie) as ws:
        unaudited = until_closed(ws, 6)
    got, code, _ = disabled
    assert [s["state"] for s in states(got)] == ["no_stream"] and code == 1000
    got, code, reason = unaudited
    assert [s["state"] for s in states(got)] == ["connecting"]
    assert (code, reason) == (1011, "the watching could not be audited; try again")
    for got, _, _ in (disabled, unaudited):
        assert [m for m in got if m[0] in MEDIA] == []
    with video_city.ctx.db.session() as session:
        watched = [e.target for e in audit.entries(session, action="camera.watch")]
    assert watched == ["cam-c"]  # the first viewing only
