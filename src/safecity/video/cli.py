"""Video commands mounted under `safecity cameras` (`check`): a newcomer's first test of a camera.

safecity cameras check rtsp://10.0.0.7/stream1 -u viewer -p secret --json
{"source": "rtsp://viewer:***@10.0.0.7/stream1", "codec": "h264", "width": 1920, "height": 1080,
 "fps": 25.0, "health": "online", "detail": "picture normal"}
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from safecity.core.errors import SafeCityError
from safecity.video.health import HealthMonitor, HealthThresholds
from safecity.video.sources import Transport, open_source, redact, with_credentials


def check_source(
    source: str,
    *,
    seconds: float = 5.0,
    username: str | None = None,
    password: str | None = None,
    transport: Transport = "tcp",
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    """Connects, reads for `seconds` (of stream time for a file) and returns what was found."""
    shown = redact(with_credentials(source, username, password or "")) if username else redact(source)
    report: dict[str, Any] = {
        "source": shown,
        "codec": None,
        "width": None,
        "height": None,
        "fps": None,
        "health": "offline",
        "detail": "",
    }
    # A short look cannot wait as long as a camera watched for hours; scale the patience to it.
    thresholds = HealthThresholds(
        check_interval_s=min(1.0, seconds / 8),
        confirm_s=min(2.0, seconds / 4),
        frozen_after_s=min(3.0, seconds / 2),
        fps_window_s=min(3.0, seconds / 2),
    )
    monitor = HealthMonitor("check", thresholds)
    started = time.monotonic()
    frames = 0
    first_pts = last_pts = None
    try:
        video = open_source(
            source,
            username=username,
            password=password,
            timeout_s=timeout_s,
            transport=transport,
            decode="all",
        )
        try:
            info = video.info
            report.update(codec=info.codec, width=info.width, height=info.height, fps=info.fps)
            for frame in video.frames():
                frames += 1
                first_pts = frame.pts_seconds if first_pts is None else first_pts
                last_pts = frame.pts_seconds
                monitor.observe(frame)
                elapsed = last_pts - first_pts if not info.live else time.monotonic() - started
                if elapsed >= seconds:
                    break
        finally:
            video.close()
        if frames == 0:
            report.update(health="offline", detail="connected, but no picture arrived")
            return report
        report.update(health=monitor.state, detail=monitor.detail)
        if monitor.fps is not None:
            report["fps"] = round(monitor.fps, 2)
    except SafeCityError as error:
        report.update(health="offline", detail=str(error))
    return report


def check(
    source: str = typer.Argument(..., help="Camera address (rtsp://, http(s)://) or a video file."),
    seconds: float = typer.Option(5.0, "--seconds", "-s", help="How long to read the stream."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object instead of a summary."),
    username: str | None = typer.Option(None, "--username", "-u", help="Camera user name."),
    password: str | None = typer.Option(
        None,
        "--password",
        "-p",
        envvar="SAFECITY_CAMERA_PASSWORD",
        help="Camera password (or set SAFECITY_CAMERA_PASSWORD).",
    ),
    transport: str = typer.Option("tcp", help="RTSP transport: tcp or udp."),
    timeout: float = typer.Option(5.0, help="Seconds to wait for the camera to answer."),
) -> None:
    """Connect to a camera or file, read a few seconds, and say what it sends and how healthy it is."""
    if transport not in ("tcp", "udp"):
        raise typer.BadParameter("transport must be tcp or udp")
    report = check_source(
        source,
        seconds=seconds,
        username=username,
        password=password,
        transport="udp" if transport == "udp" else "tcp",
        timeout_s=timeout,
    )
    if json_output:
        typer.echo(json.dumps(report))
    else:
        size = f"{report['width']}x{report['height']}" if report["width"] else "unknown size"
        fps = f"{report['fps']} fps" if report["fps"] else "unknown rate"
        typer.echo(f"{report['source']}: {report['codec'] or 'no video'}, {size}, {fps}")
        typer.echo(f"health: {report['health']} ({report['detail']})")
    if report["health"] != "online":
        raise typer.Exit(1)
