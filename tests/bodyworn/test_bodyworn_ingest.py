"""Ingest from a docking folder: once per file, hashed on the way in, read-only, never half-registered."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from sqlalchemy import func, select

from safecity.audit import service as audit
from safecity.bodyworn import custody, gps, ingest
from safecity.bodyworn import service as items
from safecity.bodyworn.models import BodyWornItem, ItemMeta
from safecity.core.context import Context
from safecity.core.errors import InvalidInput, Unavailable
from safecity.evidence import service as media_owners
from tests.bodyworn.bodyworn_support import META, RECORDED, gpx, make_video, nmea_line


def _count(ctx: Context) -> int:
    with ctx.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(BodyWornItem)) or 0)


def _incoming_empty(ctx: Context) -> bool:
    return not [p for p in ctx.media.incoming().rglob("*") if p.is_file()]


def test_a_docking_folder_is_imported_once_and_a_rerun_skips_what_is_in(ctx: Context, tmp_path: Path) -> None:
    dock = tmp_path / "dock" / "BC-17"
    (dock / "DCIM").mkdir(parents=True)
    first = make_video(dock / "DCIM" / "FILE0001.MP4", seed=1)
    make_video(dock / "DCIM" / "FILE0002.MP4", seed=2)
    (dock / "DCIM" / "FILE0001.gpx").write_text(gpx(5))
    (dock / "INDEX.DAT").write_bytes(b"camera bookkeeping")
    seen: list[str] = []

    report = ingest.import_folder(
        ctx, dock, META, actor="dock-7", progress=lambda r, n: seen.append(r.outcome)
    )

    assert (report.files, report.ingested, report.refused) == (2, 2, 0)
    assert seen == ["ingested", "ingested"]
    assert any("not recordings" in w for w in report.warnings)
    with ctx.db.session() as session:
        item = items.by_digest(session, hashlib.sha256(first.read_bytes()).hexdigest())
        assert item is not None
        assert (item.officer, item.device, item.uploaded_by) == ("pc.rana", "BC-17", "dock-7")
        assert item.recorded_at == RECORDED and item.recorded_at_source == "container"
        assert item.duration_s is not None and 0.5 < item.duration_s < 1.5
        assert (item.width, item.height, item.codec) == (160, 120, "h264")
        assert len(item.track) == 5 and item.track[0][1:] == [24.8607, 67.0011]
        assert (
            item.track_ref is not None
            and ctx.media.get(item.track_ref) == (dock / "DCIM" / "FILE0001.gpx").read_bytes()
        )
        assert [e.action for e in custody.entries_of(session, item.id)] == ["ingest"]
    # A re-run reads nothing it has: every file is skipped by path, size and time.
    again = ingest.import_folder(ctx, dock, META, actor="dock-7")
    assert (again.ingested, again.skipped) == (0, 2)
    assert _count(ctx) == 2 and _incoming_empty(ctx)


def test_the_original_is_stored_under_its_digest_read_only_and_byte_for_byte(
    ctx: Context, tmp_path: Path
) -> None:
    source = make_video(tmp_path / "FILE0001.MP4")
    result = ingest.ingest_file(ctx, source, META, actor="dock-7")
    with ctx.db.session() as session:
        item = items.get(session, result.item_id or "")
        claims = media_owners.owners_of(session, item.ref)
    stored = ctx.media.path(item.ref)
    assert stored.read_bytes() == source.read_bytes()
    assert item.sha256 == hashlib.sha256(source.read_bytes()).hexdigest() == result.sha256
    assert item.ref == f"sha256:{item.sha256}.mp4"
    assert stat_mode(stored) == 0o400
    assert {(c.kind, c.owner) for c in claims} == {("bodyworn", item.id)}


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_same_file_twice_is_one_item_recognised_by_its_digest(ctx: Context, tmp_path: Path) -> None:
    dock = tmp_path / "dock"
    dock.mkdir()
    make_video(dock / "FILE0001.MP4")
    first = ingest.import_folder(ctx, dock, META, actor="dock-7")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(dock / "FILE0001.MP4", other / "COPY.MP4")

    second = ingest.import_folder(ctx, other, META.model_copy(update={"device": "BC-99"}), actor="dock-9")

    assert (second.ingested, second.duplicates) == (0, 1)
    assert second.results[0].item_id == first.results[0].item_id
    assert "already in as item" in second.results[0].message
    assert _count(ctx) == 1 and _incoming_empty(ctx)
    with ctx.db.session() as session:
        log = custody.entries_of(session, first.results[0].item_id or "")
    assert [(e.action, e.actor) for e in log] == [("ingest", "dock-7"), ("duplicate", "dock-9")]
    assert log[1].detail["source"] == "other/COPY.MP4"


def test_a_file_that_is_not_video_is_refused_by_name_and_nothing_is_registered(
    ctx: Context, tmp_path: Path
) -> None:
    dock = tmp_path / "dock"
    dock.mkdir()
    (dock / "FILE0003.MP4").write_bytes(b"%PDF-1.4 a document renamed to look like a recording" * 100)
    with av.open(str(dock / "FILE0004.MP4"), "w", format="mp4") as out:  # sound only, no picture
        stream = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)

    report = ingest.import_folder(ctx, dock, META, actor="dock-7")

    assert (report.ingested, report.refused) == (0, 2)
    assert "FILE0003.MP4 is not a video PyAV can read" in report.results[0].message
    assert report.results[1].message.startswith("FILE0004.MP4 holds no video stream")
    assert _count(ctx) == 0 and _incoming_empty(ctx)
    assert not list(ctx.media.refs())
    with ctx.db.session() as session:
        refused = audit.entries(session, action="bodyworn.refused")
    assert sorted(e.detail["file"] for e in refused) == ["FILE0003.MP4", "FILE0004.MP4"]


def test_a_sidecar_that_does_not_parse_is_named_by_line_and_the_video_comes_in_without_a_track(
    ctx: Context, tmp_path: Path
) -> None:
    dock = tmp_path / "dock"
    dock.mkdir()
    make_video(dock / "FILE0001.MP4", recorded_at=None)
    good = nmea_line("GPRMC,093000.00,A,2451.642,N,06700.066,E,0.0,0.0,140326,,,A")
    (dock / "FILE0001.nmea").write_text(f"{good}\n{good[:-2]}00\n")

    report = ingest.import_folder(ctx, dock, META, actor="dock-7")

    assert report.ingested == 1
    assert report.warnings == [
        "dock/FILE0001.MP4: GPS sidecar not used: FILE0001.nmea line 2: checksum does not match"
        " (the line was damaged; remove it)"
    ]
    with ctx.db.session() as session:
        item = items.get(session, report.results[0].item_id or "")
        log = custody.entries_of(session, item.id)
    assert item.track == [] and item.track_error is not None and "line 2" in item.track_error
    assert item.recorded_at is None  # no container time, no usable track: unknown, not guessed
    assert item.track_ref is not None  # the sidecar as it came is kept with the evidence
    assert log[0].detail["track_error"] == item.track_error


def test_a_full_disk_stops_the_import_with_a_clear_error_and_leaves_nothing_half_registered(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dock = tmp_path / "dock"
    dock.mkdir()
    make_video(dock / "FILE0001.MP4", seconds=2)
    written = {"n": 0}
    real_write = os.write

    def filling(fd: int, data: object) -> int:
        written["n"] += 1
        if written["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest.os, "write", filling)
    monkeypatch.setattr(ingest, "BLOCK", 4096)
    with pytest.raises(Unavailable) as raised:
        ingest.import_folder(ctx, dock, META, actor="dock-7")
    assert "the evidence store is full" in raised.value.message
    assert "run the same import again: it resumes" in (raised.value.hint or "")
    assert _count(ctx) == 0 and _incoming_empty(ctx) and not list(ctx.media.refs())
    monkeypatch.undo()
    assert ingest.import_folder(ctx, dock, META, actor="dock-7").ingested == 1


def test_metadata_that_is_wrong_for_every_file_is_refused_before_any_is_read(
    ctx: Context, tmp_path: Path
) -> None:
    dock = tmp_path / "dock"
    dock.mkdir()
    make_video(dock / "FILE0001.MP4")
    with pytest.raises(InvalidInput, match="unknown category parking"):
        ingest.import_folder(ctx, dock, META.model_copy(update={"categories": ["parking"]}), actor="dock-7")
    with pytest.raises(Exception, match="no case CASE-404"):
        ingest.import_folder(ctx, dock, ItemMeta(officer="a", device="b", case="CASE-404"), actor="dock-7")
    assert _count(ctx) == 0


def test_gpx_and_nmea_tracks_parse_and_their_faults_name_the_line(tmp_path: Path) -> None:
    track = tmp_path / "a.gpx"
    track.write_text(gpx(3))
    _, lat, lon = gps.parse_track(track)[0]
    assert (round(lat, 4), round(lon, 4)) == (24.8607, 67.0011)
    log = tmp_path / "a.nmea"
    log.write_text(
        "\n".join(
            [
                nmea_line("GPRMC,093000.00,A,2451.642,N,06700.066,E,0.0,0.0,140326,,,A"),
                nmea_line("GPGGA,093001.00,2451.643,N,06700.067,E,1,08,0.9,10.0,M,,M,,"),
                nmea_line("GPRMC,093002.00,V,,,,,,,140326,,,N"),
            ]
        )
    )
    fixes = gps.parse_track(log)
    assert [f[0].isoformat() for f in fixes] == ["2026-03-14T09:30:00+00:00", "2026-03-14T09:30:01+00:00"]
    assert round(fixes[0][1], 4) == 24.8607 and round(fixes[0][2], 4) == 67.0011
    broken = tmp_path / "b.gpx"
    broken.write_text(gpx(2).replace('lat="24.860700"', 'lat="north"'))
    with pytest.raises(gps.TrackError, match=r"b.gpx line 4: latitude 'north' is not a number"):
        gps.parse_track(broken)
    bomb = tmp_path / "c.gpx"
    bomb.write_text(
        '<?xml version="1.0"?><!DOCTYPE g [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><gpx>&b;</gpx>'
    )
    with pytest.raises(gps.TrackError, match="declares an XML entity"):
        gps.parse_track(bomb)
    garbage = tmp_path / "d.nmea"
    garbage.write_text(nmea_line("GPRMC,093000.00,A,2451.642,N,06700.066,E,0.0,0.0,140326,,,A") + "\nhello\n")
    with pytest.raises(gps.TrackError, match=r"d.nmea line 2: 'hello' is not an NMEA sentence"):
        gps.parse_track(garbage)


def test_the_pipelined_copy_hashes_and_writes_every_block_in_order_through_reused_buffers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = np.random.default_rng(7).integers(0, 256, 3 * 1024**2 + 123, dtype=np.uint8).tobytes()
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    monkeypatch.setattr(ingest, "BLOCK", 4096)  # 769 blocks through 4 buffers
    target = tmp_path / "copy.bin"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    digest = hashlib.sha256()
    try:
        with source.open("rb", buffering=0) as handle:
            size = ingest.copy_into(handle, fd, digest=digest)
    finally:
        os.close(fd)
    assert size == len(data)
    assert target.read_bytes() == data
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
