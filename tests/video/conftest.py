"""Fixtures for the video tests: made-up footage with faults, a real MJPEG server, a real RTSP server."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from safecity.video.footage import Stretch, render_fault, write_footage

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_HELPER = REPO / "scripts" / "rtsp_server.py"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Six-second stretches: long enough for a fault to be confirmed (2 s) even at one key-frame a second.
FAULT_PLAN = [
    ("normal", 6), ("covered", 6), ("normal", 6), ("frozen", 7), ("truck", 4), ("dark", 6), ("dusk", 8),
    ("blurred", 6), ("normal", 6), ("moved", 6), ("normal", 6), ("low_fps", 6), ("normal", 6),
]  # fmt: skip


@pytest.fixture(scope="session")
def fault_footage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Stretch]]:
    """A 320x180 H.264 file with every fault, a passing lorry and dusk, and where each stretch lies."""
    path = tmp_path_factory.mktemp("footage") / "faults.mp4"
    return path, write_footage(path, FAULT_PLAN, width=320, height=180)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def street_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A normal 320x180 25 fps street clip of 30 s, key-frame every second, no B-frames."""
    path = tmp_path_factory.mktemp("clip") / "street.mp4"
    write_footage(path, [("normal", 30)], width=320, height=180)
    return path


def rtsp_available() -> bool:
    """Returns whether the system Python can start GStreamer's RTSP server."""
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = (
        "import gi; gi.require_version('GstRtspServer', '1.0'); gi.require_version('Gst', '1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "assert all(Gst.ElementFactory.find(n) for n in ('qtdemux', 'h264parse', 'rtph264pay'))"
    )
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


def need_rtsp() -> None:
    """Skips (or, under CI=true, fails) when GStreamer's RTSP server is not installed."""
    if rtsp_available():
        return
    message = (
        "GStreamer RTSP server missing: apt-get install gir1.2-gst-rtsp-server-1.0 python3-gst-1.0 "
        "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


class RtspServer:
    """A real RTSP server process on loopback serving one file; `cut()` kills it mid-stream."""

    def __init__(self, video: Path, *, user: str | None = None, password: str | None = None) -> None:
        command = [SYSTEM_PYTHON, str(RTSP_HELPER), str(video)]
        if user:
            command += ["--user", user, "--password", password or ""]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("ready "):
            self.cut()
            errors = self.process.stderr.read() if self.process.stderr else ""
            raise RuntimeError(f"RTSP server did not start: {line} {errors}")
        self.url = line.split(" ", 1)[1]

    def cut(self) -> None:
        """Kills the server at once, as a power cut or a pulled cable would."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


@pytest.fixture
def rtsp_server(street_clip: Path) -> Iterator[RtspServer]:
    """A running RTSP server on loopback streaming the street clip."""
    need_rtsp()
    server = RtspServer(street_clip)
    yield server
    server.cut()


class MjpegServer:
    """A real HTTP server on loopback sending an MJPEG stream (multipart/x-mixed-replace) at 10 fps."""

    def __init__(self, *, user: str = "viewer", password: str = "secret", fps: float = 10.0) -> None:
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        scene = np.zeros((120, 160, 3), np.uint8)
        server_ref = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                if self.path == "/page":
                    body = b"<html><body>camera settings</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                index = 0
                try:
                    while not server_ref.stopped.is_set():
                        picture = render_fault("normal", scene, index / fps, None)
                        cv2.putText(
                            picture, str(index), (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255)
                        )
                        jpeg = cv2.imencode(".jpg", picture)[1].tobytes()
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        index += 1
                        time.sleep(1 / fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.stopped = threading.Event()
        scene[:] = 100
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/video.mjpg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def cut(self) -> None:
        """Stops serving and drops every open stream mid-frame."""
        self.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mjpeg_server() -> Iterator[MjpegServer]:
    """A running MJPEG camera on loopback (user viewer, password secret)."""
    server = MjpegServer()
    yield server
    server.cut()
