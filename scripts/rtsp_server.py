"""A real RTSP server on loopback that serves an H.264 file, for SafeCity's tests and benchmarks.

Runs under the system Python with GStreamer's RTSP server (Debian: gir1.2-gst-rtsp-server-1.0,
python3-gst-1.0, gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad), not in the project's venv:

    /usr/bin/python3 scripts/rtsp_server.py VIDEO.mp4 [--port 0] [--path /cam] [--user U --password P]

It prints `ready rtsp://127.0.0.1:PORT/cam` on stdout once it listens, and serves until killed
(killing it is how tests cut a camera off mid-stream). Each client gets the file from the start,
paced at its frame rate, over TCP or UDP as the client asks.
"""

from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    """Starts the server and runs its main loop until the process is killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("video", help="an MP4 (H.264) file to serve")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--path", default="/cam", help="mount path of the stream")
    parser.add_argument("--user", help="require this user name (HTTP basic)")
    parser.add_argument("--password", help="password for --user")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    demux = "matroskademux" if args.video.endswith(".mkv") else "qtdemux"
    factory.set_launch(
        f'( filesrc location="{args.video}" ! {demux} ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(False)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", "media.factory.access", True)
        permissions.add_permission_for_role("viewer", "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on port {args.port}", file=sys.stderr)
        return 1
    print(f"ready rtsp://127.0.0.1:{server.get_bound_port()}{args.path}", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
