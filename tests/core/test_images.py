"""Specification of the one image decoder (core/images.py) and of every door an image comes in by.

The image bomb of issue 16: a PNG of a few hundred bytes declaring 20000×20000 pixels took the server
to 6.1 GB through face search. Each test builds that header here, small on disk, and shows that every
path refuses it from its header, quickly and with a message that says what to do.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import struct
import time
import zlib
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from safecity.accounts.models import Role
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import InvalidInput
from safecity.core.images import ImageLimits, check_image, decode_image, read_header, read_image
from safecity.settings import Settings
from tests.conftest import auth_headers

LIMITS = ImageLimits()


def png_header(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG that declares `width` × `height` pixels, with (by default) no pixel data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


BOMB = png_header(20000, 20000, zlib.compress(b"\x00" * 200_000, 9))


def encoded(ext: str, image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok
    return buf.tobytes()


def scene(height: int = 48, width: int = 64) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 255, (height, width, 3), dtype=np.uint8)


def test_a_png_declaring_400_megapixels_is_refused_from_its_header_with_its_size() -> None:
    assert len(BOMB) < 2_000
    started = time.perf_counter()
    with pytest.raises(InvalidInput) as refused:
        decode_image(BOMB, label="photo")
    assert time.perf_counter() - started < 0.5  # decoding would allocate 1.2 GB and take seconds
    assert refused.value.message == "photo is 20000×20000 = 400 megapixels; the limit is 40"
    assert refused.value.hint == "send a smaller photo"


def test_the_pixel_limit_comes_from_the_settings() -> None:
    limits = ImageLimits.from_settings(Settings(image_max_megapixels=0.001, image_max_bytes=100_000))
    assert limits == ImageLimits(max_pixels=1000, max_bytes=100_000)
    with pytest.raises(
        InvalidInput, match=re.escape("image is 64×48 = 0.00307 megapixels; the limit is 0.001")
    ):
        decode_image(encoded(".png", scene()), limits=limits)


def test_more_bytes_than_the_limit_are_refused_before_the_header_is_read() -> None:
    with pytest.raises(InvalidInput, match=re.escape("image is larger than 0.00391 MB, the limit")):
        decode_image(b"\x89PNG" + b"\x00" * 5000, limits=ImageLimits(max_bytes=4096))


@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp", ".tiff"])
def test_each_format_decodes_to_the_bgr_pixels_opencv_reads(ext: str) -> None:
    data = encoded(ext, scene())
    image = decode_image(data)
    assert image.dtype == np.uint8 and image.shape == (48, 64, 3) and image.flags.c_contiguous
    assert np.array_equal(image, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    assert read_header(data).ext == ext.removeprefix(".")


def test_exif_orientation_is_applied_as_before() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(scene(40, 100)[:, :, ::-1]).save(buffer, "JPEG", exif=exif)
    image = decode_image(buffer.getvalue())
    assert image.shape == (100, 40, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "photo is empty"),
        (
            b"plate ABC-123 seen at 10:02",
            "photo is not a readable image (not a JPEG, PNG, BMP, WebP or TIFF)",
        ),
        (b"GIF89a\x01\x00\x01\x00", "photo is not a readable image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "photo: the PNG header is corrupt or truncated"),
        (png_header(0, 10), "photo: the PNG header is corrupt or truncated"),
    ],
)
def test_what_is_not_an_image_is_refused_saying_so(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match="^" + re.escape(message)):
        decode_image(data, label="photo")


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tiff", ".bmp"])
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_a_truncated_file_is_refused_as_corrupt_or_truncated(ext: str, keep: float) -> None:
    data = encoded(ext, scene(120, 160))
    with pytest.raises(InvalidInput, match="corrupt or truncated"):
        decode_image(data[: int(len(data) * keep)])


def test_a_jpeg_missing_only_its_end_marker_is_truncated() -> None:
    data = encoded(".jpg", scene())
    assert data.endswith(b"\xff\xd9")
    with pytest.raises(InvalidInput, match="ends before its last scan"):
        check_image(data[:-2])


def test_check_image_reads_the_header_without_decoding() -> None:
    header = check_image(encoded(".png", scene()))
    assert (header.format, header.width, header.height, header.pixels) == ("png", 64, 48, 3072)


def test_a_file_is_measured_before_a_byte_of_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as handle:
        handle.truncate(60 * 2**20)  # sparse: 60 MB on paper, nothing on disk
    with pytest.raises(InvalidInput, match=r"huge.jpg is 62.9 MB; the limit is 50 MB"):
        read_image(huge)
    with pytest.raises(InvalidInput, match="no such file"):
        read_image(tmp_path / "absent.png")
    with pytest.raises(InvalidInput, match="not a regular file"):
        read_image(tmp_path)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InvalidInput, match="the file is empty"):
        read_image(tmp_path / "empty.png")


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_decode_or_are_refused_with_invalid_input(data: bytes) -> None:
    try:
        image = decode_image(data, limits=ImageLimits(max_pixels=1_000_000))
    except InvalidInput:
        return
    assert image.ndim == 3 and image.shape[2] == 3


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF\x00\x00\x00\x00WEBP", b"II*\x00"]),
    st.binary(max_size=256),
)
def test_any_header_behind_a_known_signature_is_refused_cleanly(magic: bytes, rest: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        decode_image(magic + rest, limits=ImageLimits(max_pixels=1_000_000))


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1))
def test_a_png_is_held_to_the_pixels_its_header_declares(width: int, height: int) -> None:
    data = png_header(width, height)
    if width * height > LIMITS.max_pixels:
        with pytest.raises(InvalidInput, match=f"{width}×{height} = .* megapixels; the limit is 40"):
            decode_image(data)
    else:
        assert read_header(data).pixels == width * height
        with pytest.raises(InvalidInput, match="corrupt or truncated"):
            decode_image(data)  # within the limit, but there are no pixels behind the header


# --- every door -----------------------------------------------------------------------------------


def test_face_search_refuses_the_bomb_quickly_and_stays_small(ctx: Context, client: TestClient) -> None:
    searcher = auth_headers(ctx, Role.investigator)
    started = time.perf_counter()
    res = client.post(
        "/api/faces/search",
        headers=searcher,
        data={"reason": "image bomb regression"},
        files={"photo": ("bomb.png", BOMB, "image/png")},
    )
    assert res.status_code == 422
    assert res.json()["detail"] == "photo is 20000×20000 = 400 megapixels; the limit is 40"
    assert res.json()["hint"] == "send a smaller photo"
    assert time.perf_counter() - started < 5


def test_enrolment_and_footage_search_refuse_the_bomb(ctx: Context, client: TestClient) -> None:
    investigator = auth_headers(ctx, Role.investigator)
    soon = (utcnow() + timedelta(days=20)).strftime("%Y-%m-%dT%H:%M")
    enrolment = client.post(
        "/api/faces/entries",
        headers=investigator,
        data={"name": "X", "category": "wanted", "legal_basis": "FIR 1/2025", "expires_at": soon},
        files=[("photos", ("bomb.png", BOMB, "image/png"))],
    )
    assert enrolment.status_code == 422 and "photo 1 is 20000×20000" in enrolment.json()["detail"]
    footage = client.post(
        "/api/faces/footage-search",
        headers=investigator,
        data={"case_reference": "FIR 1/2025", "reason": "image bomb regression"},
        files={"photo": ("bomb.png", BOMB, "image/png")},
    )
    assert footage.status_code == 422 and "400 megapixels" in footage.json()["detail"]
    listed = client.get("/api/faces/entries", headers=auth_headers(ctx, Role.admin))
    assert listed.json() == []  # nothing half-written


def test_a_larger_photo_than_the_byte_limit_is_refused_over_http(tmp_path: Path) -> None:
    context = Context.create(Settings(data_dir=tmp_path / "data", image_max_bytes=4096))
    from safecity.server import create_app

    try:
        with TestClient(create_app(context)) as client:
            res = client.post(
                "/api/faces/search",
                headers=auth_headers(context, Role.investigator),
                data={"reason": "too large"},
                files={"photo": ("big.png", encoded(".png", scene(200, 200)), "image/png")},
            )
    finally:
        context.db.dispose()
    assert res.status_code == 422 and res.json()["detail"] == "photo is larger than 0.00391 MB, the limit"


def test_faces_verify_refuses_the_bomb_and_exits_non_zero(tmp_path: Path) -> None:
    from safecity.faces.cli import app

    (tmp_path / "bomb.png").write_bytes(BOMB)
    (tmp_path / "other.png").write_bytes(encoded(".png", scene()))
    started = time.perf_counter()
    result = CliRunner().invoke(
        app, ["verify", str(tmp_path / "bomb.png"), str(tmp_path / "other.png"), "--json"]
    )
    assert time.perf_counter() - started < 60  # 185 s before, most of it decoding the bomb
    assert result.exit_code == 1, result.output
    assert json.loads(result.output)["error"].endswith(
        "bomb.png is 20000×20000 = 400 megapixels; the limit is 40 (send a smaller photo)"
    )


def test_plates_read_refuses_the_bomb_and_exits_non_zero(tmp_path: Path) -> None:
    from safecity.anpr.cli import app

    (tmp_path / "bomb.png").write_bytes(BOMB)
    result = CliRunner().invoke(app, ["read", str(tmp_path / "bomb.png"), "--json"])
    assert result.exit_code == 1
    [entry] = json.loads(result.output)
    assert entry["plates"] == []
    assert entry["error"].endswith(
        "bomb.png is 20000×20000 = 400 megapixels; the limit is 40 (send a smaller photo)"
    )
