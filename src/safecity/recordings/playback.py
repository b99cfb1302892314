"""Playback: recorded segments remuxed on the fly into fragmented MP4, which browsers play natively.

A playback starts at the key-frame at or before the moment asked for and runs to the end of that
continuous recording (the next gap, or a change of codec or picture size), so the video's time maps
linearly onto wall-clock time: `wall = origin + currentTime`. The same remux loop writes exports and
event clips as plain MP4.

    stream = PlaybackStream(segments, at=moment, until=moment + timedelta(minutes=10))
    first = stream.start()          # raises NoFootage before any byte is sent
    return StreamingResponse(stream.chunks(first), headers={"X-Recording-Start": stream.origin.isoformat()})
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from safecity.core.errors import NotFound

TOUCH = timedelta(seconds=1)
_OUT_TB = Fraction(1, 90000)
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "500000"}
PLAIN = {"movflags": "+faststart"}


@dataclass(frozen=True)
class Piece:
    """One segment file to read, with its wall-clock start and what it carries."""

    path: Path
    start: datetime
    end: datetime
    signature: tuple[str, int, int]


class NoFootage(NotFound):
    """Nothing recorded where it was asked for."""


def runs(pieces: Sequence[Piece]) -> list[list[Piece]]:
    """Groups pieces into continuous recordings: touching in time, same codec and picture size."""
    grouped: list[list[Piece]] = []
    for piece in pieces:
        if (
            grouped
            and piece.start - grouped[-1][-1].end <= TOUCH
            and piece.signature == grouped[-1][-1].signature
        ):
            grouped[-1].append(piece)
        else:
            grouped.append([piece])
    return grouped


def run_at(pieces: Sequence[Piece], at: datetime) -> list[Piece]:
    """Returns the continuous recording holding the moment `at`, from the piece that contains it on."""
    for run in runs(pieces):
        if run[0].start <= at < run[-1].end:
            first = next(i for i, p in enumerate(run) if p.end > at)
            return run[first:]
    return []


class _Sink:
    """A file-like object the muxer writes into; the bytes are taken out as they come."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


class Remux:
    """Copies the packets of consecutive pieces between two moments into one MP4 (fragmented or plain).

    Output time 0 is the key-frame at or before `start` (`origin`); `first_end` and `end` tell what was
    covered. The pieces must be one continuous recording (see `runs`).
    """

    def __init__(self, pieces: Sequence[Piece], *, start: datetime, end: datetime) -> None:
        self.pieces = list(pieces)
        self.start = start
        self.end_limit = end
        self.origin: datetime | None = None
        self.end: datetime | None = None
        self.packets = 0

    def write(self, target: Any, *, options: dict[str, str]) -> Iterator[None]:
        """Muxes into `target` (a path or file-like); yields after each packet so callers can stream."""
        out: Any = None
        out_stream: Any = None
        gop: list[tuple[float, Any]] = []
        origin_s: float | None = None
        start_s, end_s = self.start.timestamp(), self.end_limit.timestamp()
        inputs: list[Any] = []
        try:
            for piece in self.pieces:
                if origin_s is not None and piece.start.timestamp() >= end_s:
                    break
                container = av.open(str(piece.path), format="mpegts")
                inputs.append(container)
                stream = container.streams.video[0]
                first_dts: float | None = None
                for packet in container.demux(stream):
                    stamp = packet.dts if packet.dts is not None else packet.pts
                    if stamp is None:
                        continue
                    t = float(stamp * packet.time_base)
                    if first_dts is None:
                        first_dts = t
                    wall = piece.start.timestamp() + t - first_dts
                    if origin_s is None:
                        if packet.is_keyframe and wall <= start_s + 1e-3:
                            gop = []
                        if packet.is_keyframe or gop:
                            gop.append((wall, packet))
                        if wall < start_s - 1e-3 or not gop:
                            continue
                        origin_s = gop[0][0]
                        self.origin = datetime.fromtimestamp(origin_s, tz=piece.start.tzinfo)
                        out = av.open(target, "w", format="mp4", options=options)
                        out_stream = out.add_stream_from_template(stream)
                        queued, gop = gop, []
                    elif wall >= end_s:
                        break
                    else:
                        queued = [(wall, packet)]
                    for q_wall, q_packet in queued:
                        self._mux(out, out_stream, q_packet, q_wall - origin_s)
                        self.end = datetime.fromtimestamp(q_wall, tz=piece.start.tzinfo)
                        yield None
                else:
                    continue
                break
            if out is not None:
                out.close()
                out = None
        finally:
            if out is not None:
                # The reader went away mid-stream: nothing to keep.
                with contextlib.suppress(Exception):
                    out.close()
            for container in inputs:
                container.close()
        if self.end is not None:
            self.end += timedelta(seconds=0.04)

    def _mux(self, out: Any, out_stream: Any, packet: Any, offset_s: float) -> None:
        shift = 0 if packet.pts is None or packet.dts is None else packet.pts - packet.dts
        dts = round(offset_s / _OUT_TB)
        pts = dts + round(float(shift * packet.time_base) / _OUT_TB)
        packet.stream = out_stream
        packet.time_base = _OUT_TB
        packet.dts, packet.pts = dts, pts
        out.mux(packet)
        self.packets += 1


class PlaybackStream:
    """Fragmented MP4 of one continuous recording from the key-frame at or before `at` to `until`.

    Call `start()` first: it raises NoFootage, or returns the first bytes and sets `origin` (the wall
    time of video time 0) and `run_end` (where this continuous recording ends).
    """

    def __init__(self, pieces: Sequence[Piece], *, at: datetime, until: datetime) -> None:
        self.at = at
        run = run_at(pieces, at)
        self.run_end: datetime | None = run[-1].end if run else None
        self._remux = Remux(run, start=at, end=until)
        self._sink = _Sink()
        self._steps = self._remux.write(self._sink, options=FRAGMENTED) if run else iter(())

    @property
    def origin(self) -> datetime:
        """Returns the wall-clock time of the video's time 0 (valid after `start()`)."""
        if self._remux.origin is None:
            raise RuntimeError("start() the playback first")
        return self._remux.origin

    def start(self) -> bytes:
        """Runs the remux until its first bytes exist and returns them; NoFootage when there are none."""
        for _ in self._steps:
            if self._sink.chunks:
                return self._sink.take()
        data = self._sink.take()
        if not data:
            raise NoFootage(f"nothing recorded at {self.at.isoformat()}", hint="pick a recorded span")
        return data

    def close(self) -> None:
        """Stops the remux and closes its files."""
        close = getattr(self._steps, "close", None)
        if close is not None:
            close()

    def chunks(self, first: bytes) -> Iterator[bytes]:
        """Yields the first bytes, then the rest of the MP4 as it is remuxed."""
        yield first
        try:
            for _ in self._steps:
                if len(self._sink.chunks) >= 16:
                    yield self._sink.take()
            rest = self._sink.take()
            if rest:
                yield rest
        finally:
            self.close()
