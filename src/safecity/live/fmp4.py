"""Fragmented MP4 for live H.264: an init segment and one small fragment per frame, no re-encoding.

Browsers play this through Media Source Extensions. One frame per fragment keeps the relay's own
latency at zero (FFmpeg's mov muxer fragments at key-frames or fixed durations, which would hold a
whole group of pictures back); writing the boxes here costs a few microseconds per frame and lets
the relay restart any viewer at the last key-frame.

Cameras send H.264 in two framings: Annex B (start codes; RTSP, MPEG-TS, an encoder without global
headers) and length-prefixed with an `avcC` record (MP4, Matroska). `AvcTrack` reads either and
writes the length-prefixed form MP4 needs, taking SPS and PPS from the stream's extradata or, when
there is none, from the first key-frame.

    track = AvcTrack.from_keyframe(extradata, first_key_packet_bytes, width=640, height=360)
    init = track.init_segment()
    fragment = track.fragment(sequence=1, decode_time=0, sample=sample)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

TIMESCALE = 90_000
_NAL_SPS, _NAL_PPS, _NAL_AUD, _NAL_SEI = 7, 8, 9, 6
_KEY_FLAGS = 0x02000000  # sample_depends_on = 2: decodes on its own
_DELTA_FLAGS = 0x01010000  # sample_depends_on = 1, sample_is_non_sync_sample = 1


class NotAvc(ValueError):
    """The stream's parameters do not describe H.264 this module can package."""


def box(kind: bytes, *payload: bytes) -> bytes:
    """Returns one ISO BMFF box: its size, its four-letter type and its payload."""
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    """Returns a full box: a box whose payload starts with a version byte and 24 bits of flags."""
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def annexb_units(data: bytes) -> list[bytes]:
    """Returns the NAL units of an Annex B byte stream (start codes removed)."""
    units: list[bytes] = []
    n = len(data)
    i = data.find(b"\x00\x00\x01")
    while 0 <= i < n:
        start = i + 3
        j = data.find(b"\x00\x00\x01", start)
        end = n if j < 0 else j
        unit = data[start:end]
        if j >= 0 and unit.endswith(b"\x00"):
            unit = unit[:-1]  # the leading zero of a four-byte start code belongs to the next unit
        if unit:
            units.append(unit)
        i = j
    return units


def length_prefixed_units(data: bytes, size: int = 4) -> list[bytes]:
    """Returns the NAL units of length-prefixed H.264 (`size` bytes of length before each)."""
    units: list[bytes] = []
    i, n = 0, len(data)
    while i + size <= n:
        length = int.from_bytes(data[i : i + size], "big")
        i += size
        if length <= 0 or i + length > n:
            break
        units.append(data[i : i + length])
        i += length
    return units


def is_annexb(data: bytes) -> bool:
    """Returns whether `data` starts with an Annex B start code."""
    return data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01"))


@dataclass(frozen=True)
class Sample:
    """One frame as the relay received it: its bytes, times in 90 kHz ticks, and whether it is a key-frame."""

    data: bytes
    dts: int
    cts_offset: int
    key: bool
    wall_ms: int


class AvcTrack:
    """One H.264 video track: its parameter sets and picture size; writes the init segment and fragments."""

    def __init__(
        self, sps: bytes, pps: bytes, *, width: int, height: int, nal_length_size: int | None
    ) -> None:
        if len(sps) < 4:
            raise NotAvc("the H.264 sequence parameter set is too short")
        self.sps, self.pps = sps, pps
        self.width, self.height = width, height
        # None: the packets are Annex B; else the length prefix size of the packets as they come.
        self.nal_length_size = nal_length_size

    @classmethod
    def from_stream(cls, extradata: bytes | None, keyframe: bytes, *, width: int, height: int) -> AvcTrack:
        """Returns the track for a stream's extradata (avcC, Annex B or none) and its first key-frame."""
        extra = extradata or b""
        if extra[:1] == b"\x01" and len(extra) >= 7:
            sps, pps, size = _parse_avcc(extra)
            return cls(sps, pps, width=width, height=height, nal_length_size=size)
        units = annexb_units(extra) if extra else []
        framing_annexb = is_annexb(keyframe)
        units += annexb_units(keyframe) if framing_annexb else length_prefixed_units(keyframe)
        found_sps = next((u for u in units if u[0] & 0x1F == _NAL_SPS), None)
        found_pps = next((u for u in units if u[0] & 0x1F == _NAL_PPS), None)
        if found_sps is None or found_pps is None:
            raise NotAvc("no H.264 SPS and PPS in the stream's headers or its key-frame")
        length_size = None if framing_annexb else 4
        return cls(found_sps, found_pps, width=width, height=height, nal_length_size=length_size)

    @property
    def codec(self) -> str:
        """Returns the RFC 6381 codec string a browser asks about (`avc1.64001F`)."""
        return "avc1.{:02X}{:02X}{:02X}".format(*self.sps[1:4])

    def matches(self, extradata: bytes | None, keyframe: bytes) -> bool:
        """Returns whether a key-frame still carries this track's parameter sets (no new init needed)."""
        if self.nal_length_size is not None:
            return True  # length-prefixed streams carry their parameters in the extradata, not in-band
        sps = next((u for u in annexb_units(keyframe) if u[0] & 0x1F == _NAL_SPS), None)
        return sps is None or sps == self.sps

    def sample_bytes(self, packet: bytes) -> bytes:
        """Returns a packet as MP4 wants it: 4-byte length-prefixed units, without in-band headers."""
        if self.nal_length_size == 4:
            return packet
        units = (
            annexb_units(packet)
            if self.nal_length_size is None
            else length_prefixed_units(packet, self.nal_length_size)
        )
        # SPS/PPS live in the init segment; access unit delimiters mean nothing in MP4.
        return b"".join(
            struct.pack(">I", len(u)) + u for u in units if u[0] & 0x1F not in (_NAL_SPS, _NAL_PPS, _NAL_AUD)
        )

    def init_segment(self) -> bytes:
        """Returns ftyp + moov: what a browser needs before the first fragment."""
        ftyp = box(b"ftyp", b"iso5", struct.pack(">I", 512), b"iso5iso6avc1mp41")
        avcc = box(
            b"avcC",
            bytes([1, self.sps[1], self.sps[2], self.sps[3], 0xFF, 0xE1]),
            struct.pack(">H", len(self.sps)),
            self.sps,
            b"\x01",
            struct.pack(">H", len(self.pps)),
            self.pps,
        )
        avc1 = box(
            b"avc1",
            bytes(6),
            struct.pack(">H", 1),  # data reference index
            bytes(16),
            struct.pack(">HH", self.width, self.height),
            struct.pack(">II", 0x00480000, 0x00480000),  # 72 dpi
            bytes(4),
            struct.pack(">H", 1),  # frames per sample
            bytes(32),  # compressor name
            struct.pack(">Hh", 0x0018, -1),
            avcc,
        )
        stbl = box(
            b"stbl",
            full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1),
            full_box(b"stts", 0, 0, bytes(4)),
            full_box(b"stsc", 0, 0, bytes(4)),
            full_box(b"stsz", 0, 0, bytes(8)),
            full_box(b"stco", 0, 0, bytes(4)),
        )
        minf = box(
            b"minf",
            full_box(b"vmhd", 0, 1, bytes(8)),
            box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1))),
            stbl,
        )
        mdia = box(
            b"mdia",
            full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, 0, 0x55C4, 0)),
            full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"SafeCity live\x00"),
            minf,
        )
        tkhd = full_box(
            b"tkhd",
            0,
            3,  # enabled, in movie
            struct.pack(">IIIII", 0, 0, 1, 0, 0),
            bytes(8),
            struct.pack(">hhhH", 0, 0, 0, 0),
            _MATRIX,
            struct.pack(">II", self.width << 16, self.height << 16),
        )
        mvhd = full_box(
            b"mvhd",
            0,
            0,
            struct.pack(">IIII", 0, 0, 1000, 0),
            struct.pack(">IH", 0x00010000, 0x0100),
            bytes(10),
            _MATRIX,
            bytes(24),
            struct.pack(">I", 2),
        )
        mvex = box(b"mvex", full_box(b"trex", 0, 0, struct.pack(">IIIII", 1, 1, 0, 0, 0)))
        return ftyp + box(b"moov", mvhd, box(b"trak", tkhd, mdia), mvex)

    def fragment(self, sequence: int, samples: Iterable[tuple[Sample, int]]) -> bytes:
        """Returns moof + mdat for consecutive samples, each with its duration in 90 kHz ticks."""
        items = [(s, duration, self.sample_bytes(s.data)) for s, duration in samples]
        if not items:
            raise ValueError("a fragment needs at least one sample")
        entries = b"".join(
            struct.pack(">IIIi", duration, len(data), _KEY_FLAGS if s.key else _DELTA_FLAGS, s.cts_offset)
            for s, duration, data in items
        )
        trun_flags = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800
        # The data offset counts from the start of moof to the first byte of mdat's payload; moof's size
        # is known before the offset is written because the offset field has a fixed width.
        trun_size = 12 + 8 + len(entries)
        traf_size = 8 + 16 + 20 + trun_size
        moof_size = 8 + 16 + traf_size
        trun = full_box(b"trun", 1, trun_flags, struct.pack(">Ii", len(items), moof_size + 8), entries)
        traf = box(
            b"traf",
            full_box(b"tfhd", 0, 0x020000, struct.pack(">I", 1)),  # default-base-is-moof
            full_box(b"tfdt", 1, 0, struct.pack(">Q", items[0][0].dts)),
            trun,
        )
        moof = box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence & 0xFFFFFFFF)), traf)
        assert len(moof) == moof_size
        payload = b"".join(data for _, _, data in items)
        return moof + struct.pack(">I", 8 + len(payload)) + b"mdat" + payload


_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def _parse_avcc(extra: bytes) -> tuple[bytes, bytes, int]:
    """Returns the first SPS, the first PPS and the NAL length size of an avcC record."""
    size = (extra[4] & 0x03) + 1
    count = extra[5] & 0x1F
    i = 6
    sps_list: list[bytes] = []
    for _ in range(count):
        length = int.from_bytes(extra[i : i + 2], "big")
        sps_list.append(extra[i + 2 : i + 2 + length])
        i += 2 + length
    pps_list: list[bytes] = []
    if i < len(extra):
        count = extra[i]
        i += 1
        for _ in range(count):
            length = int.from_bytes(extra[i : i + 2], "big")
            pps_list.append(extra[i + 2 : i + 2 + length])
            i += 2 + length
    if not sps_list or not pps_list:
        raise NotAvc("the stream's avcC record holds no SPS or PPS")
    return sps_list[0], pps_list[0], size
