"""GPS in the recording itself: an ISO 6709 location tag, NMEA sentences in a subtitle or data stream."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import av
import pytest

from safecity.bodyworn import custody, gps, ingest
from safecity.bodyworn import service as items
from safecity.bodyworn.models import BodyWornItem, ImportResult
from safecity.core.context import Context
from tests.bodyworn.bodyworn_support import META, RECORDED, gpx, make_video, nmea_line

# 24°51.642'N 67°00.066'E, moving north by 0.01' (about 18 m) a second.
SENTENCES = [
    nmea_line(f"GPRMC,0930{i:02d}.00,A,2451.{642 + i * 10:03d},N,06700.066,E,0.0,0.0,140326,,,A")
    for i in range(5)
]


def with_location(source: Path, target: Path, location: str, *, quicktime: bool = False) -> Path:
    """Copies `source`'s video into `target` with a location tag (`©xyz`, or QuickTime's ISO 6709 key)."""
    options = {"movflags": "use_metadata_tags"} if quicktime else {}
    with (
        av.open(str(source)) as src,
        av.open(str(target), "w", format="mov" if quicktime else "mp4", options=options) as out,
    ):
        out.metadata.update(src.metadata)
        out.metadata["com.apple.quicktime.location.ISO6709" if quicktime else "location"] = location
        video = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
    return target


def with_nmea_subtitles(source: Path, target: Path, tmp_path: Path, sentences: list[str]) -> Path:
    """Copies `source`'s video into a Matroska file with the sentences as a subtitle stream (one a second)."""
    cues = tmp_path / "gps.srt"
    cues.write_text(
        "".join(
            f"{i + 1}\n00:00:{i:02d},000 --> 00:00:{i:02d},900\n{line}\n\n"
            for i, line in enumerate(sentences)
        )
    )
    with (
        av.open(str(source)) as src,
        av.open(str(cues)) as srt,
        av.open(str(target), "w", format="matroska") as out,
    ):
        out.metadata.update(src.metadata)
        video = out.add_stream_from_template(src.streams.video[0])
        text = out.add_stream_from_template(srt.streams[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
        for packet in srt.demux(srt.streams[0]):
            if packet.dts is not None:
                packet.stream = text
                out.mux(packet)
    return target


def with_nmea_data(source: Path, target: Path, sentences: list[str]) -> Path:
    """Copies `source`'s video into an MPEG-TS file with the sentences in a data stream."""
    with av.open(str(source)) as src, av.open(str(target), "w", format="mpegts") as out:
        video = out.add_stream_from_template(src.streams.video[0])
        data = out.add_data_stream()
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
        for i, line in enumerate(sentences):
            packet = av.Packet((line + "\r\n").encode())
            packet.stream, packet.pts, packet.dts, packet.time_base = data, i, i, Fraction(1, 1)
            out.mux(packet)
    return target


def _item(ctx: Context, result: ImportResult) -> BodyWornItem:
    with ctx.db.session() as session:
        return items.get(session, result.item_id or "")


def test_a_location_tag_places_the_recording_for_its_whole_length(ctx: Context, tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4")
    tagged = with_location(plain, tmp_path / "FILE0001.MP4", "+24.8607+067.0011+012.000/")

    result = ingest.ingest_file(ctx, tagged, META, actor="dock-7")

    item = _item(ctx, result)
    assert item.track == [[RECORDED.isoformat(), 24.8607, 67.0011]]
    assert item.track_error is None and item.recorded_at_source == "container"
    with ctx.db.session() as session:
        [entry] = [e for e in custody.entries_of(session, item.id) if e.action == "ingest"]
    assert entry.detail["gps_in_file"].endswith("(ISO 6709)") and entry.detail["track_points"] == 1


def test_quicktime_iso6709_key_in_degrees_and_minutes_is_read(ctx: Context, tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4")
    tagged = with_location(plain, tmp_path / "FILE0002.MOV", "+2451.642+06700.066/", quicktime=True)

    item = _item(ctx, ingest.ingest_file(ctx, tagged, META, actor="dock-7"))

    [[_, lat, lon]] = item.track
    assert abs(lat - (24 + 51.642 / 60)) < 1e-6 and abs(lon - (67 + 0.066 / 60)) < 1e-6


def test_nmea_sentences_in_a_subtitle_stream_are_the_track(ctx: Context, tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4", seconds=5, fps=5, recorded_at=None)
    with_gps = with_nmea_subtitles(plain, tmp_path / "FILE0003.MKV", tmp_path, SENTENCES)

    result = ingest.ingest_file(ctx, with_gps, META, actor="dock-7")

    item = _item(ctx, result)
    assert [row[0] for row in item.track] == [(RECORDED + timedelta(seconds=i)).isoformat() for i in range(5)]
    assert [round(row[1], 5) for row in item.track] == [
        round(24 + (51.642 + i * 0.01) / 60, 5) for i in range(5)
    ]
    # The file had no clock of its own: the GPS gives the recording's time.
    assert item.recorded_at_source == "gps" and result.message == ""


def test_nmea_sentences_in_a_data_stream_are_the_track(ctx: Context, tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4", seconds=5, fps=5)
    with_gps = with_nmea_data(plain, tmp_path / "FILE0004.TS", SENTENCES)

    item = _item(ctx, ingest.ingest_file(ctx, with_gps, META, actor="dock-7"))

    assert len(item.track) == 5 and item.track[0][0] == RECORDED.isoformat()


def test_a_sidecar_wins_over_what_the_file_carries(ctx: Context, tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4")
    dock = tmp_path / "dock"
    dock.mkdir()
    tagged = with_location(plain, dock / "FILE0005.MP4", "+10.0000+010.0000/")
    (dock / "FILE0005.gpx").write_text(gpx(3))

    item = _item(ctx, ingest.ingest_file(ctx, tagged, META, actor="dock-7"))

    assert len(item.track) == 3 and round(item.track[0][1], 4) == 24.8607


def test_a_damaged_embedded_track_is_named_and_the_video_comes_in_without_it(
    ctx: Context, tmp_path: Path
) -> None:
    plain = make_video(tmp_path / "plain.mp4", seconds=5, fps=5)
    damaged = [*SENTENCES[:2], SENTENCES[2][:-2] + "00", *SENTENCES[3:]]
    with_gps = with_nmea_data(plain, tmp_path / "FILE0006.TS", damaged)
    tagged = with_location(plain, tmp_path / "FILE0007.MOV", "somewhere near the port", quicktime=True)

    bad_stream = ingest.ingest_file(ctx, with_gps, META, actor="dock-7")
    bad_tag = ingest.ingest_file(ctx, tagged, META, actor="dock-7")

    assert bad_stream.outcome == "ingested" and _item(ctx, bad_stream).track == []
    assert bad_stream.message.startswith(
        "GPS track in the file not used: stream #1 of FILE0006.TS line 3: checksum does not match"
    )
    assert bad_tag.outcome == "ingested" and _item(ctx, bad_tag).track == []
    assert "'somewhere near the port' is not an ISO 6709 location" in bad_tag.message


def test_a_location_without_a_recording_time_is_not_placed(ctx: Context, tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4", recorded_at=None)
    tagged = with_location(plain, tmp_path / "FILE0008.MP4", "+24.8607+067.0011/")

    result = ingest.ingest_file(ctx, tagged, META, actor="dock-7")

    assert _item(ctx, result).track == [] and "time is unknown" in result.message


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("+24.8607+067.0011/", (24.8607, 67.0011)),
        ("-33.8568+151.2153+005.0CRSWGS_84/", (-33.8568, 151.2153)),
        ("+245130.5-0670000.0/", (24 + 51 / 60 + 30.5 / 3600, -67.0)),
    ],
)
def test_iso6709_points_in_degrees_minutes_and_seconds(text: str, place: tuple[float, float]) -> None:
    lat, lon = gps.parse_iso6709(text)
    assert abs(lat - place[0]) < 1e-9 and abs(lon - place[1]) < 1e-9


@pytest.mark.parametrize(
    "text", ["", "24.86,67.00", "+95.0000+067.0000/", "+2499.0+06700.0/", "+24.86+1234.56789/"]
)
def test_iso6709_refuses_what_is_not_a_place(text: str) -> None:
    with pytest.raises(gps.TrackError):
        gps.parse_iso6709(text)


def test_a_data_stream_without_nmea_is_no_track_and_no_error(ctx: Context, tmp_path: Path) -> None:
    plain = make_video(tmp_path / "plain.mp4", seconds=2, fps=5)
    with_data = with_nmea_data(
        plain, tmp_path / "FILE0009.TS", ["TIMECODE 00:00:00:00", "TIMECODE 00:00:01:00"]
    )

    result = ingest.ingest_file(ctx, with_data, META, actor="dock-7")

    assert result.outcome == "ingested" and result.message == ""
    assert _item(ctx, result).track == []
