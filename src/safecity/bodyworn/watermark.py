"""Burning a recipient's name into a copy of a recording, so a copy that leaks names who leaked it.

Every frame is decoded, a band with the text is drawn across it (top and bottom, so cropping one
edge does not remove it), and the frame is encoded again as H.264; the audio is copied as it is. The
original is never touched: the copy is a new file with its own digest, recorded in the custody log.
It costs a full decode and encode (bench/bench_evidence.py measures frames/s at 720p).

    frames = burn(Path("original.mp4"), Path("copy.mp4"), "For: Adv. S. Khan (defence) · share 01HX…")
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from safecity.core.errors import InvalidInput


def _band(image: np.ndarray, text: str, y: int, scale: float, thickness: int) -> None:
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    top = max(0, y - height - base)
    shade = image[top : y + base, :].astype(np.uint16)
    image[top : y + base, :] = (shade // 2).astype(np.uint8)
    x = max(4, (image.shape[1] - width) // 2)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def stamp(image: np.ndarray, text: str) -> np.ndarray:
    """Draws `text` in a shaded band at the top and the bottom of a BGR or RGB frame (in place)."""
    height = image.shape[0]
    scale = max(0.4, height / 900)
    thickness = 1 if height < 600 else 2
    _band(image, text, int(28 * scale) + 6, scale, thickness)
    _band(image, text, height - 8, scale, thickness)
    return image


def burn(source: Path, target: Path, text: str, *, crf: int = 23) -> int:
    """Writes a copy of `source` with `text` burnt into every frame to `target` (MP4); returns the frames."""
    frames = 0
    try:
        with av.open(str(source)) as inp, av.open(str(target), "w", format="mp4") as out:
            if not inp.streams.video:
                raise InvalidInput(f"{source.name} has no video to watermark")
            video_in = inp.streams.video[0]
            video_in.thread_type = "AUTO"
            rate = video_in.average_rate or video_in.guessed_rate or 25
            video_out = out.add_stream("libx264", rate=rate)
            video_out.width = video_in.codec_context.width // 2 * 2
            video_out.height = video_in.codec_context.height // 2 * 2
            video_out.pix_fmt = "yuv420p"
            video_out.time_base = video_in.time_base
            video_out.options = {"preset": "veryfast", "crf": str(crf)}
            audio_in = inp.streams.audio[0] if inp.streams.audio else None
            audio_out = out.add_stream_from_template(audio_in) if audio_in is not None else None
            streams = [s for s in (video_in, audio_in) if s is not None]
            for packet in inp.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None and audio_out is not None:
                        packet.stream = audio_out
                        out.mux(packet)
                    continue
                for frame in video_in.decode(packet):
                    picture = frame.to_ndarray(format="rgb24")
                    image = np.ascontiguousarray(picture[: video_out.height, : video_out.width])
                    stamped = av.VideoFrame.from_ndarray(stamp(image, text), format="rgb24")
                    stamped.pts, stamped.time_base = frame.pts, frame.time_base
                    for encoded in video_out.encode(stamped):
                        out.mux(encoded)
                    frames += 1
            for encoded in video_out.encode():
                out.mux(encoded)
    except av.FFmpegError as exc:
        target.unlink(missing_ok=True)
        raise InvalidInput(
            f"{source.name} could not be watermarked ({exc})", hint="is the original damaged?"
        ) from None
    return frames
