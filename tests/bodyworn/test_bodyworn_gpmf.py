"""GoPro's GPS: GPMF payloads in the MP4's `gpmd` data track are the item's timed track when there is
no sidecar; a damaged payload is named and the video still comes in without a track."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import pytest

from safecity.bodyworn import custody, gpmf, gps, ingest
from safecity.bodyworn import service as items
from safecity.bodyworn.models import BodyWornItem, ImportResult
from safecity.core.context import Context
from tests.bodyworn.bodyworn_support import META, gpx, make_video

START = datetime(2026, 3, 14, 9, 30, 0, tzinfo=UTC)
SCALE = (10_000_000, 10_000_000, 1000, 1000, 100)  # GoPro's own: degrees × 1e7, metres × 1000
PER_PAYLOAD = 4  # GoPro writes ~18 a second; a few keep the arithmetic readable


def klv(key: bytes, kind: str | int, size: int, repeat: int, payload: bytes) -> bytes:
    """Returns one GPMF entry, its payload padded to 4 bytes."""
    code = kind if isinstance(kind, int) else ord(kind)
    return struct.pack(">4sBBH", key, code, size, repeat) + payload + b"\x00" * (-len(payload) % 4)


def nested(key: bytes, *children: bytes) -> bytes:
    body = b"".join(children)
    return klv(key, 0, 1, len(body), body)  # GoPro writes nested sizes as 1 × length


def place(second: int, i: int) -> tuple[float, float]:
    """Where the camera is: walking north-east from Saddar, 1e-5° a sample."""
    step = second * PER_PAYLOAD + i
    return 24.8607 + step * 1e-5, 67.0011 + step * 1e-5


def gps_payload(second: int, *, fix: int = 3, lat_scale: int = SCALE[0], utc: str | None = None) -> bytes:
    """Returns a payload as a GoPro writes one a second: a device with an accelerometer and a GPS stream."""
    accelerometer = nested(
        b"STRM",
        klv(b"STNM", "c", 13, 1, b"Accelerometer"),
        klv(b"SCAL", "s", 2, 1, struct.pack(">h", 418)),
        klv(b"ACCL", "s", 6, 2, struct.pack(">6h", 1, 2, 3, 4, 5, 6)),
    )
    return nested(
        b"DEVC",
        klv(b"DVID", "L", 4, 1, struct.pack(">I", 1)),
        klv(b"DVNM", "c", 11, 1, b"HERO9 Black"),  # 11 bytes: padded to 12
        accelerometer,
        gps5_stream(second, fix=fix, lat_scale=lat_scale, utc=utc),
    )


def gps5_stream(second: int, *, fix: int = 3, lat_scale: int = SCALE[0], utc: str | None = None) -> bytes:
    """Returns the GPS5 stream of one second: samples of `place`, timed by GPSU."""
    at = START + timedelta(seconds=second)
    samples = b"".join(
        struct.pack(">5i", round(lat * SCALE[0]), round(lon * SCALE[1]), 12_500, 1_200, 1_300)
        for lat, lon in (place(second, i) for i in range(PER_PAYLOAD))
    )
    text = utc if utc is not None else at.strftime("%y%m%d%H%M%S.") + f"{at.microsecond // 1000:03d}"
    return nested(
        b"STRM",
        klv(b"STNM", "c", 44, 1, b"GPS (Lat., Long., Alt., 2D speed, 3D speed)"),
        klv(b"GPSF", "L", 4, 1, struct.pack(">I", fix)),
        klv(b"GPSU", "U", 16, 1, text.encode()),
        klv(b"GPSP", "S", 2, 1, struct.pack(">H", 187)),
        klv(b"UNIT", "c", 3, 5, b"deg" + b"deg" + b"m\x00\x00" + b"m/s" + b"m/s"),
        klv(b"SCAL", "l", 4, 5, struct.pack(">5i", lat_scale, *SCALE[1:])),
        klv(b"GPS5", "l", 20, PER_PAYLOAD, samples),
    )


GPS9_SCALE = (10_000_000, 10_000_000, 1000, 1000, 100, 1, 1000, 100, 1)
# When in its second each GPS9 sample was taken: uneven, as a receiver's fixes are, so a track timed
# by spreading a payload's samples over its second would not match.
GPS9_OFFSETS = (0.0, 0.05, 0.5, 0.95, 0.999)


def gps9_at(second: int, i: int) -> datetime:
    return START + timedelta(seconds=second + GPS9_OFFSETS[i])


def gps9_place(second: int, i: int) -> tuple[float, float]:
    """Where a GPS9 sample puts the camera: south-west of GPS5's walk, so the two cannot be confused."""
    return 24.85 - second * 1e-4 - i * 1e-5, 67.0 - second * 1e-4 - i * 1e-5


def gps9_sample(at: datetime, lat: float, lon: float, *, fix: int = 3) -> bytes:
    """Returns one GPS9 sample as `lllllllSS`: days since 2000-01-01 and milliseconds since midnight UTC."""
    since = at - datetime(2000, 1, 1, tzinfo=UTC)
    ms = round((since - timedelta(days=since.days)).total_seconds() * 1000)
    return struct.pack(
        ">7i2H", round(lat * 1e7), round(lon * 1e7), 12_500, 1_200, 130, since.days, ms, 187, fix
    )


def gps9_payload(
    second: int,
    *,
    fixes: tuple[int, ...] = (3, 3, 3, 3, 2),
    layout: str | None = "lllllllSS",
    scale: tuple[int, ...] = GPS9_SCALE,
    size: int = 32,
    samples: bytes | None = None,
    with_gps5: bool = False,
) -> bytes:
    """Returns a payload as a HERO11 or later writes one: a GPS9 stream, and a GPS5 stream beside it when
    `with_gps5`. `samples` replaces the GPS9 samples of `fixes` (each `size` bytes)."""
    if samples is None:
        samples = b"".join(
            gps9_sample(gps9_at(second, i), *gps9_place(second, i), fix=fix) for i, fix in enumerate(fixes)
        )
    name = b"GPS (Lat., Long., Alt., 2D, 3D, days, secs, DOP, fix)"
    location = nested(
        b"STRM",
        klv(b"STNM", "c", len(name), 1, name),
        *([klv(b"TYPE", "c", len(layout), 1, layout.encode())] if layout is not None else []),
        klv(b"SCAL", "l", 4, len(scale), struct.pack(f">{len(scale)}i", *scale)),
        klv(b"GPS9", "?", size, len(samples) // size, samples),
    )
    streams = [gps5_stream(second), location] if with_gps5 else [location]  # as a HERO11 writes both
    return nested(b"DEVC", klv(b"DVNM", "c", 12, 1, b"HERO12 Black"), *streams)


def with_gpmf(source: Path, target: Path, payloads: list[bytes]) -> Path:
    """Copies `source`'s video into an MP4 with the payloads as a GoPro metadata track, one a second."""
    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4") as out:
        out.metadata.update(src.metadata)
        video = out.add_stream_from_template(src.streams.video[0])
        data = out.add_data_stream("bin_data")  # FFmpeg's MP4 muxer writes it as a `gpmd` track
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
        for i, payload in enumerate(payloads):
            packet = av.Packet(payload)
            packet.stream, packet.pts, packet.dts, packet.time_base = data, i, i, Fraction(1, 1)
            packet.duration = 1
            out.mux(packet)
    assert b"gpmd" in target.read_bytes() and b"GoPro MET" in target.read_bytes()  # as a GoPro writes it
    return target


def _item(ctx: Context, result: ImportResult) -> BodyWornItem:
    with ctx.db.session() as session:
        return items.get(session, result.item_id or "")


def test_a_payload_gives_its_gps5_samples_scaled_and_spread_over_its_second() -> None:
    fixes, seen = gpmf.payload_fixes(gps_payload(0), "sample 1", duration_s=1.0)

    assert seen == PER_PAYLOAD
    assert [at for at, _, _ in fixes] == [
        START + timedelta(seconds=i / PER_PAYLOAD) for i in range(PER_PAYLOAD)
    ]
    for i, (_, lat, lon) in enumerate(fixes):
        assert (round(lat, 7), round(lon, 7)) == tuple(round(v, 7) for v in place(0, i))


def test_entries_are_read_past_padding_and_nested_lists() -> None:
    payload = gps_payload(0)
    [device] = list(gpmf.entries(payload, "sample 1"))
    keys = [entry.key for entry in device.entries("sample 1")]
    assert keys == ["DVID", "DVNM", "STRM", "STRM"]
    assert next(e for e in device.entries("sample 1") if e.key == "DVNM").text() == "HERO9 Black"


def test_samples_without_a_fix_are_left_out_and_a_track_that_never_had_one_says_so() -> None:
    fixes, seen = gpmf.payload_fixes(gps_payload(0, fix=0), "sample 1")
    assert fixes == [] and seen == PER_PAYLOAD

    track = gpmf.GpmfTrack("stream #1 of GOPR0001.MP4")
    track.add(gps_payload(0, fix=0))
    with pytest.raises(
        gps.TrackError, match=r"GOPR0001.MP4: 4 GPS samples, none with a fix \(GPSF 0, or GPS9 fix 0\)"
    ):
        track.fixes()


def test_a_payload_without_gps_is_no_fix_and_no_error() -> None:
    payload = nested(b"DEVC", klv(b"DVNM", "c", 5, 1, b"HERO9"))
    track = gpmf.GpmfTrack("stream #1 of GOPR0001.MP4")
    track.add(payload)
    assert track.fixes() == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (gps_payload(0)[:-12], r"sample 1 byte 0: DEVC says \d+ bytes, only \d+ follow"),
        (gps_payload(0) + b"\x01\x02", "2 bytes left, too few for a GPMF entry"),
        (gps_payload(0, utc="26-03-14 09:30"), r"byte \d+: GPSU '26-03-14 09:30' is not a GPS time"),
        (gps_payload(0, lat_scale=0), r"SCAL \[0, 10000000, 1000, 1000, 100\] does not scale 5 GPS5 values"),
        (
            gps_payload(0, lat_scale=10),
            r"GPS5 sample 0 is at 24860700\.00000, 67\.00110, not a place on Earth",
        ),
        (b"\xff\xfe\xfd\xfc" + gps_payload(0)[4:], r"byte 0: b'\\xff\\xfe\\xfd\\xfc' is not a GPMF key"),
    ],
)
def test_a_damaged_payload_is_named_by_sample_and_byte(payload: bytes, message: str) -> None:
    with pytest.raises(gps.TrackError, match=message):
        gpmf.payload_fixes(payload, "sample 1")


def test_a_gps5_of_the_wrong_type_is_refused_not_misread() -> None:
    payload = gps_payload(0).replace(b"GPS5l", b"GPS5?")
    with pytest.raises(gps.TrackError, match=r"GPS5 has type '\?', not a number"):
        gpmf.payload_fixes(payload, "sample 1")


def test_a_gopro_recording_without_a_sidecar_has_its_gpmf_track(ctx: Context, tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4", seconds=3, fps=5, recorded_at=None)
    gopro = with_gpmf(plain, tmp_path / "GOPR0001.MP4", [gps_payload(s) for s in range(3)])

    result = ingest.ingest_file(ctx, gopro, META, actor="dock-7")

    item = _item(ctx, result)
    assert result.outcome == "ingested" and result.message == ""
    assert len(item.track) == 3 * PER_PAYLOAD
    assert item.track[0] == [START.isoformat(), 24.8607, 67.0011]
    assert item.track[-1][0] == (START + timedelta(seconds=2 + (PER_PAYLOAD - 1) / PER_PAYLOAD)).isoformat()
    assert item.recorded_at_source == "gps" and item.recorded_at == START  # the file had no clock
    with ctx.db.session() as session:
        [entry] = [e for e in custody.entries_of(session, item.id) if e.action == "ingest"]
    assert entry.detail["gps_in_file"] == "stream #1 of GOPR0001.MP4 (GoPro GPMF)"


def test_a_damaged_gpmf_payload_is_named_and_the_video_comes_in_without_a_track(
    ctx: Context, tmp_path: Path
) -> None:
    plain = make_video(tmp_path / "plain.mp4", seconds=3, fps=5)
    payloads = [gps_payload(0), gps_payload(1)[:-12], gps_payload(2)]
    gopro = with_gpmf(plain, tmp_path / "GOPR0002.MP4", payloads)

    result = ingest.ingest_file(ctx, gopro, META, actor="dock-7")

    item = _item(ctx, result)
    assert result.outcome == "ingested" and item.track == []
    assert result.message.startswith(
        "GPS track in the file not used: stream #1 of GOPR0002.MP4 sample 2 byte 0:"
    )
    assert item.track_error is not None and "sample 2" in item.track_error


def test_a_sidecar_wins_over_the_gpmf_track(ctx: Context, tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4", seconds=2, fps=5)
    dock = tmp_path / "dock"
    dock.mkdir()
    gopro = with_gpmf(plain, dock / "GOPR0003.MP4", [gps_payload(0), gps_payload(1)])
    (dock / "GOPR0003.gpx").write_text(gpx(3))

    item = _item(ctx, ingest.ingest_file(ctx, gopro, META, actor="dock-7"))

    assert len(item.track) == 3


def rows(fixes: list[tuple[datetime, float, float]]) -> list[tuple[datetime, float, float]]:
    return [(at, round(lat, 7), round(lon, 7)) for at, lat, lon in fixes]


def gps9_rows(second: int, indices: range | list[int]) -> list[tuple[datetime, float, float]]:
    return [(gps9_at(second, i), *(round(v, 7) for v in gps9_place(second, i))) for i in indices]


def test_gps9_samples_are_each_at_their_own_time_not_spread_over_the_payload() -> None:
    for duration_s in (1.0, 4.0):
        fixes, seen = gpmf.payload_fixes(gps9_payload(0), "sample 1", duration_s=duration_s)

        assert seen == len(GPS9_OFFSETS)
        assert rows(fixes) == gps9_rows(0, range(len(GPS9_OFFSETS)))
    assert fixes[3][0] == datetime(2026, 3, 14, 9, 30, 0, 950_000, tzinfo=UTC)  # to the millisecond


def test_gps9_wins_over_the_gps5_beside_it() -> None:
    fixes, seen = gpmf.payload_fixes(gps9_payload(0, with_gps5=True), "sample 1")

    assert seen == len(GPS9_OFFSETS)
    assert rows(fixes) == gps9_rows(0, range(len(GPS9_OFFSETS)))


def test_a_gps9_sample_without_a_fix_is_left_out_and_a_track_that_never_had_one_says_so() -> None:
    fixes, seen = gpmf.payload_fixes(gps9_payload(0, fixes=(3, 0, 2, 0, 3)), "sample 1")
    assert seen == 5 and rows(fixes) == gps9_rows(0, [0, 2, 4])

    track = gpmf.GpmfTrack("stream #1 of GX010001.MP4")
    track.add(gps9_payload(0, fixes=(0, 0)))
    with pytest.raises(
        gps.TrackError, match=r"GX010001.MP4: 2 GPS samples, none with a fix \(GPSF 0, or GPS9 fix 0\)"
    ):
        track.fixes()


def _timed(days: int, ms: int) -> bytes:
    return struct.pack(">7i2H", 248_500_000, 670_000_000, 0, 0, 0, days, ms, 187, 3)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (gps9_payload(0, layout="lllllllL"), r"GPS9 samples have 8 values \(TYPE 'lllllllL'\), not the 9 of"),
        (gps9_payload(0, layout="lllllllSx"), r"TYPE 'lllllllSx' has 'x', not a number type"),
        (
            gps9_payload(0, layout=None),
            r"GPS9 has type '\?', not a number: a structure, and its stream has no TYPE",
        ),
        (
            gps9_payload(0, size=30, samples=bytes(60)),
            r"GPS9 samples of 30 bytes are not whole TYPE 'lllllllSS' structures \(32 bytes\)",
        ),
        (
            gps9_payload(0, scale=SCALE),
            r"SCAL \[10000000, 10000000, 1000, 1000, 100\] has 5 divisors, GPS9 needs",
        ),
        (gps9_payload(0, scale=(*GPS9_SCALE[:6], 0, 100, 1)), r"SCAL \[.*\] divides the GPS9 seconds by 0"),
        (
            gps9_payload(0, samples=_timed(9569, 90_000_000)),
            r"GPS9 sample 0 says day 9569 since 2000-01-01, second 90000 ",
        ),
        (
            gps9_payload(0, samples=_timed(-1, 0)),
            r"GPS9 sample 0 says day -1 since 2000-01-01, second 0 of the day",
        ),
        (
            gps9_payload(0, samples=_timed(2**31 - 1, 0)),
            r"GPS9 sample 0 says day 2.14748e\+09 since 2000-01-01",
        ),
        (
            gps9_payload(0, samples=struct.pack(">7i2H", 0, 1_900_000_000, 0, 0, 0, 9569, 0, 187, 3)),
            r"GPS9 sample 0 is at 0\.00000, 190\.00000, not a place on Earth",
        ),
    ],
)
def test_a_damaged_gps9_payload_is_named_by_sample_and_byte(payload: bytes, message: str) -> None:
    with pytest.raises(gps.TrackError, match=r"sample 1 byte \d+: " + message):
        gpmf.payload_fixes(payload, "sample 1")


def test_a_hero11_recording_has_the_gps9_track_not_the_gps5_one(ctx: Context, tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4", seconds=3, fps=5, recorded_at=None)
    payloads = [gps9_payload(s, with_gps5=True) for s in range(3)]
    gopro = with_gpmf(plain, tmp_path / "GX010001.MP4", payloads)

    item = _item(ctx, ingest.ingest_file(ctx, gopro, META, actor="dock-7"))

    expected = [row for s in range(3) for row in gps9_rows(s, range(len(GPS9_OFFSETS)))]
    assert item.track == [[at.isoformat(), lat, lon] for at, lat, lon in expected]
    assert item.recorded_at_source == "gps" and item.recorded_at == START


def test_a_gps9_only_recording_has_its_track_with_no_fix_samples_left_out(
    ctx: Context, tmp_path: Path
) -> None:
    plain = make_video(tmp_path / "plain.mp4", seconds=2, fps=5)
    gopro = with_gpmf(
        plain, tmp_path / "GX010002.MP4", [gps9_payload(0), gps9_payload(1, fixes=(3, 0, 0, 3))]
    )

    item = _item(ctx, ingest.ingest_file(ctx, gopro, META, actor="dock-7"))

    expected = gps9_rows(0, range(len(GPS9_OFFSETS))) + gps9_rows(1, [0, 3])
    assert item.track == [[at.isoformat(), lat, lon] for at, lat, lon in expected]
    assert item.track[-1][0] == "2026-03-14T09:30:01.950000+00:00"


def test_a_damaged_gps9_payload_is_named_and_the_video_comes_in_without_a_track(
    ctx: Context, tmp_path: Path
) -> None:
    plain = make_video(tmp_path / "plain.mp4", seconds=2, fps=5)
    payloads = [gps9_payload(0), gps9_payload(1, scale=SCALE)]
    gopro = with_gpmf(plain, tmp_path / "GX010003.MP4", payloads)

    result = ingest.ingest_file(ctx, gopro, META, actor="dock-7")

    item = _item(ctx, result)
    assert result.outcome == "ingested" and item.track == []
    assert re.match(
        r"GPS track in the file not used: stream #1 of GX010003.MP4 sample 2 byte \d+: SCAL \[10000000, "
        r"10000000, 1000, 1000, 100\] has 5 divisors, GPS9 needs one for each of its 9 values",
        result.message,
    )
    assert item.track_error is not None and "sample 2" in item.track_error
