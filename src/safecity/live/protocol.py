"""The live video messages: the same bytes from the worker's relay over the bus to serve and to the browser.

Every message is an 18-byte header and a payload, so serve forwards what it receives without parsing
media, and a page reads the header with a DataView:

    byte 0     kind: INIT (init segment), FRAGMENT (one frame, moof+mdat), PICTURE (a JPEG, for codecs
               a browser cannot play), STATE (JSON: why there is no picture)
    byte 1     flags: KEY (the fragment is a key-frame), REPLAY (re-sent for a viewer that joined)
    bytes 2-9  sequence number of the channel's fragments (an INIT carries the next one)
    bytes 10-17 wall-clock milliseconds when the relay received the frame
    INIT payload: 2 bytes of length, JSON {codec, width, height, source_codec, timescale, …}, then ftyp+moov
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

INIT, FRAGMENT, PICTURE, STATE = 1, 2, 3, 4
KEY, REPLAY = 0x01, 0x02
HEADER = struct.Struct(">BBQQ")
HEADER_SIZE = HEADER.size

# The subjects of the live channels, outside the durable event stream (nothing here is kept).
WANT_SUBJECT = "want"


def video_subject(camera_token: str, variant: str) -> str:
    """Returns the subject one camera's stream (`main` or `sub`) is relayed on."""
    return f"video.{camera_token}.{variant}"


@dataclass(frozen=True)
class Header:
    """What a message's header says."""

    kind: int
    flags: int
    seq: int
    wall_ms: int

    @property
    def key(self) -> bool:
        """Returns whether the message is a key-frame fragment."""
        return bool(self.flags & KEY)

    @property
    def replay(self) -> bool:
        """Returns whether the message is a re-sent one (for a viewer that just joined)."""
        return bool(self.flags & REPLAY)


def pack(kind: int, payload: bytes, *, seq: int = 0, wall_ms: int = 0, flags: int = 0) -> bytes:
    """Returns one message."""
    return HEADER.pack(kind, flags, seq, wall_ms) + payload


def header(message: bytes) -> Header:
    """Returns a message's header; raises ValueError on a message too short to have one."""
    if len(message) < HEADER_SIZE:
        raise ValueError("a live video message shorter than its header")
    return Header(*HEADER.unpack_from(message))


def with_flags(message: bytes, flags: int) -> bytes:
    """Returns the message with `flags` added (the same bytes otherwise)."""
    return message[:1] + bytes([message[1] | flags]) + message[2:]


def init_message(meta: dict[str, Any], segment: bytes, *, seq: int, wall_ms: int) -> bytes:
    """Returns an INIT message: the track's description and its ftyp+moov."""
    text = json.dumps(meta, separators=(",", ":")).encode()
    return pack(INIT, struct.pack(">H", len(text)) + text + segment, seq=seq, wall_ms=wall_ms)


def init_meta(message: bytes) -> dict[str, Any]:
    """Returns the JSON description an INIT message carries."""
    (length,) = struct.unpack_from(">H", message, HEADER_SIZE)
    value = json.loads(message[HEADER_SIZE + 2 : HEADER_SIZE + 2 + length])
    return value if isinstance(value, dict) else {}


def init_segment(message: bytes) -> bytes:
    """Returns the ftyp+moov an INIT message carries."""
    (length,) = struct.unpack_from(">H", message, HEADER_SIZE)
    return message[HEADER_SIZE + 2 + length :]


def state_message(state: str, detail: str = "", *, wall_ms: int = 0, **extra: Any) -> bytes:
    """Returns a STATE message: `state` in a word (`offline`, `unplayable`, `waiting`) and why."""
    body = {"state": state, "detail": detail, **extra}
    return pack(STATE, json.dumps(body, separators=(",", ":")).encode(), wall_ms=wall_ms)


def state_of(message: bytes) -> dict[str, Any]:
    """Returns the JSON of a STATE message."""
    value = json.loads(message[HEADER_SIZE:])
    return value if isinstance(value, dict) else {}


def payload(message: bytes) -> bytes:
    """Returns the bytes after the header (a fragment's moof+mdat, a picture's JPEG)."""
    return message[HEADER_SIZE:]
