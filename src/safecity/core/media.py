"""Content-addressed media store: crops, frames, clips and evidence filed by the SHA-256 of their content.

The same bytes are stored once; a ref (`sha256:<hex>.<ext>`) names them forever. The hash is the
plaintext's, so an evidence record proves its object unchanged by hashing what it reads back, a
re-encryption under a new key changes no ref, and the same picture stored twice is still one file.

At rest, pictures, documents and data (jpg, png, pdf, json, bin) are sealed with AES-256-GCM under
the data key (`core/crypto.py`), the ref authenticated with them, so a file swapped for another's does
not open. Video (mp4, ts, m4s, webm: clips and exported footage, large and streamed to browsers with
range requests) stays plain, like the recordings it is cut from. Every file is 0600 and every folder
0700; photos are stored without their metadata (`put_photo`). Readers never see the difference:
`get` opens what is sealed, and files stored before encryption read as they are until `safecity keys
rotate` (or `reencrypt`) seals them.

    store = MediaStore(Path("data/media"), cipher=crypto.bind(settings))
    ref = store.put_image(crop)                  # "sha256:…jpg", sealed on disk
    store.get(ref)                               # the JPEG bytes

Objects leave the store only through the evidence domain's sweep (`evidence/retention.py`), which
removes what no row claims any more. Storing bytes that are already there touches the file, so an
object stored again (about to be claimed again) is fresh in the sweep's eyes; the sweep sets a file
aside before it checks the claims one last time, so a store racing it writes the file anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from safecity.core.crypto import MAGIC, CannotDecrypt, Cipher, seal_file, sealed_key_id
from safecity.core.errors import InvalidInput, NotFound

_ALLOWED_EXT = {"jpg", "png", "mp4", "ts", "m4s", "pdf", "json", "bin", "webm", "mov", "mkv", "avi"}
#: Video stays plain (0600): streamed with range requests, and as sensitive as the recordings beside it.
#: mov, mkv and avi are body-worn cameras' originals, kept in the container they came in.
PLAIN_EXT = frozenset({"mp4", "ts", "m4s", "webm", "mov", "mkv", "avi"})
#: Where files being received are written before they are hashed and adopted (skipped by every walk).
INCOMING = ".incoming"
_ORIENTATION = 0x0112
# A file set aside by the sweep is renamed with this prefix (readers and `refs()` no longer see it).
_ASIDE = ".aside-"


@dataclass(frozen=True)
class StoredObject:
    """One file of the store as the sweep and the size report see it."""

    ref: str
    bytes: int
    mtime: float


class MediaStore:
    """Files under a root folder, named by the SHA-256 of their content, sealed when a cipher is given."""

    def __init__(self, root: Path, *, cipher: Cipher | None = None) -> None:
        self.root = Path(root)
        self.cipher = cipher
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        _tighten(self.root, 0o700)

    def put(self, data: bytes, ext: str) -> str:
        """Stores `data` and returns its ref; storing the same bytes again returns the same ref."""
        ext = self._check_ext(ext)
        ref = f"sha256:{hashlib.sha256(data).hexdigest()}.{ext}"
        path = self.path(ref)
        if not _freshen(path):
            self._folder(path)
            # Written then renamed, so a crash never leaves a truncated file under a valid name.
            sealer = self.cipher if ext not in PLAIN_EXT else None
            seal_file(path, data, purpose=_purpose(ref), sealer=sealer)
        return ref

    def put_file(self, source: Path, ext: str | None = None) -> str:
        """Stores a file's content (video streamed, anything else sealed in memory) and returns its ref."""
        ext = self._check_ext(ext or source.suffix.lstrip("."))
        if ext not in PLAIN_EXT:
            return self.put(source.read_bytes(), ext)
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        ref = f"sha256:{digest.hexdigest()}.{ext}"
        path = self.path(ref)
        if not _freshen(path):
            self._folder(path)
            tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
            shutil.copyfile(source, tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        return ref

    def incoming(self) -> Path:
        """Returns the folder for files being received (same file system: adopting one is a rename)."""
        folder = self.root / INCOMING
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder

    def adopt(self, received: Path, ref: str, *, read_only: bool = True) -> bool:
        """Moves a file the caller has hashed to `ref` into place; returns False when it was there already.

        For originals received while being hashed in one pass (body-worn evidence): no second read and
        no copy. The file is plain video, made read-only (0400) unless asked otherwise; when the same
        bytes are already stored, the received file is removed and the stored one freshened.
        """
        _, ext = self._parse(ref)
        if ext not in PLAIN_EXT:
            raise InvalidInput(f"only video is adopted as it is, not .{ext}", hint="store it with put()")
        path = self.path(ref)
        if _freshen(path):
            received.unlink(missing_ok=True)
            return False
        self._folder(path)
        os.chmod(received, 0o400 if read_only else 0o600)
        os.replace(received, path)
        return True

    def put_image(self, image: np.ndarray, *, quality: int = 85) -> str:
        """Encodes a BGR image as JPEG and stores it."""
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise InvalidInput("image could not be encoded as JPEG", hint="pass a BGR uint8 array")
        return self.put(buf.tobytes(), "jpg")

    def put_photo(self, data: bytes, ext: str, image: np.ndarray) -> str:
        """Stores a photo without its metadata (EXIF: place, time, device; XMP; comments; thumbnails).

        A JPEG or PNG loses its metadata segments and keeps its pixels bit for bit; one that EXIF said
        to turn, or that cannot be taken apart, is encoded again from `image` (its decoded BGR pixels,
        orientation applied), as is any other format.
        """
        stripped = strip_metadata(data, ext) if _orientation(data) == 1 else None
        if stripped is not None:
            return self.put(stripped, ext)
        if ext == "png":
            ok, buf = cv2.imencode(".png", image)
            if ok:
                return self.put(buf.tobytes(), "png")
        return self.put_image(image, quality=95)

    def path(self, ref: str) -> Path:
        """Returns where the file of `ref` lives (it may not exist, and may be sealed: read with `get`)."""
        digest, ext = self._parse(ref)
        return self.root / digest[:2] / digest[2:4] / f"{digest}.{ext}"

    def get(self, ref: str) -> bytes:
        """Returns the bytes of `ref` (opened if sealed), or raises NotFound."""
        path = self.path(ref)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"media {ref} is not in the store", hint="it may have passed its retention"
            ) from None
        if sealed_key_id(raw) is None:
            return raw  # video, or stored before encryption
        if self.cipher is None:
            raise CannotDecrypt(f"media {ref} is sealed and this store has no data key")
        return self.cipher.unseal(raw, purpose=_purpose(ref))

    def is_sealed(self, ref: str) -> bool:
        """Returns whether the file of `ref` is sealed (serve it from `get`, not from its path)."""
        return self.key_of(ref) is not None

    def key_of(self, ref: str) -> str | None:
        """Returns the id of the data key that sealed `ref`, or None when it is plain or missing."""
        try:
            with self.path(ref).open("rb") as handle:
                head = handle.read(len(MAGIC) + 64)
        except FileNotFoundError:
            return None
        return sealed_key_id(head)

    def verify(self, ref: str) -> bool:
        """Returns True when the stored object still hashes to its ref (and, sealed, authenticates)."""
        digest, _ = self._parse(ref)
        path = self.path(ref)
        if not path.exists():
            return False
        if self.is_sealed(ref):
            try:
                return hashlib.sha256(self.get(ref)).hexdigest() == digest
            except CannotDecrypt:
                return False
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        return sha.hexdigest() == digest

    def reseal(self, ref: str) -> bool:
        """Seals `ref` under the current data key if it is not already (older key, or stored plain);
        tightens its mode to 0600 either way. Returns whether the file was rewritten."""
        path = self.path(ref)
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mode & 0o777 != 0o400:  # an adopted original stays read-only
                _tighten(path, 0o600)
        _, ext = self._parse(ref)
        if self.cipher is None or ext in PLAIN_EXT:
            return False
        if self.key_of(ref) == self.cipher.current.id:
            return False
        data = self.get(ref)
        if hashlib.sha256(data).hexdigest() != self._parse(ref)[0]:
            raise CannotDecrypt(f"media {ref} does not match its hash; left as it is", hint="restore it")
        seal_file(path, data, purpose=_purpose(ref), sealer=self.cipher)
        return True

    def refs(self) -> Iterator[str]:
        """Yields the ref of every stored object (tightening folders to 0700 on the way)."""
        for first in sorted(self.root.iterdir()):
            if not first.is_dir() or len(first.name) != 2:
                continue
            _tighten(first, 0o700)
            for second in sorted(first.iterdir()):
                if not second.is_dir():
                    continue
                _tighten(second, 0o700)
                for file in second.iterdir():
                    digest, _, ext = file.name.partition(".")
                    if not file.name.startswith(".") and len(digest) == 64 and ext in _ALLOWED_EXT:
                        yield f"sha256:{digest}.{ext}"

    def scan(self, *, restore_aside: bool = False) -> Iterator[StoredObject]:
        """Yields every stored object with its size and last write (or store) time, folder by folder.

        `restore_aside` first puts back any file a sweep set aside and never removed (it died).
        """
        for first in sorted(os.scandir(self.root), key=lambda e: e.name):
            if len(first.name) != 2 or not first.is_dir():
                continue
            for second in sorted(os.scandir(first.path), key=lambda e: e.name):
                if not second.is_dir():
                    continue
                for entry in os.scandir(second.path):
                    name = entry.name
                    found: os.DirEntry[str] | _Entry = entry
                    if restore_aside and name.startswith(_ASIDE):
                        name = name.removeprefix(_ASIDE)
                        with contextlib.suppress(FileNotFoundError):
                            os.replace(entry.path, os.path.join(second.path, name))
                        found = _Entry(os.path.join(second.path, name))
                    digest, _, ext = name.partition(".")
                    if name.startswith(".") or len(digest) != 64 or ext not in _ALLOWED_EXT:
                        continue
                    try:
                        stat = found.stat()
                    except FileNotFoundError:
                        continue  # removed meanwhile
                    yield StoredObject(f"sha256:{digest}.{ext}", stat.st_size, stat.st_mtime)

    def set_aside(self, ref: str, *, stale_before: float) -> int | None:
        """Moves the file of `ref` out of reach if nobody stored it since `stale_before` (epoch seconds).

        Returns its size, or None when it is missing or was stored again (left in place). A `put` of
        the same bytes meanwhile finds no file and writes it anew, so nothing it returns is lost.
        """
        path = self.path(ref)
        aside = path.with_name(_ASIDE + path.name)
        try:
            if path.stat().st_mtime >= stale_before:
                return None
            os.rename(path, aside)
            stat = aside.stat()
        except FileNotFoundError:
            return None
        if stat.st_mtime >= stale_before:
            # Stored again between the look and the move: it goes back.
            self.put_back(ref)
            return None
        return stat.st_size

    def put_back(self, ref: str) -> None:
        """Returns a file set aside to its place (over a copy stored meanwhile: the same bytes)."""
        path = self.path(ref)
        with contextlib.suppress(FileNotFoundError):
            os.replace(path.with_name(_ASIDE + path.name), path)

    def discard_aside(self, ref: str) -> None:
        """Removes a file set aside for good."""
        path = self.path(ref)
        path.with_name(_ASIDE + path.name).unlink(missing_ok=True)

    def delete(self, ref: str) -> bool:
        """Removes the file of `ref`; returns whether it existed."""
        path = self.path(ref)
        if path.exists():
            path.unlink()
            return True
        return False

    def _folder(self, path: Path) -> None:
        # Each level made 0700 itself: mkdir(parents=True) gives the parents the default mode.
        for folder in (path.parent.parent, path.parent):
            if not folder.is_dir():
                folder.mkdir(mode=0o700, exist_ok=True)

    @staticmethod
    def _check_ext(ext: str) -> str:
        ext = ext.lower().lstrip(".")
        if ext not in _ALLOWED_EXT:
            raise InvalidInput(f"media type .{ext} is not stored", hint=f"use one of {sorted(_ALLOWED_EXT)}")
        return ext

    @staticmethod
    def check_ref(ref: str) -> str:
        """Returns `ref` if it is a well-formed media ref; raises InvalidInput saying what one looks like."""
        MediaStore._parse(ref)
        return ref

    @staticmethod
    def _parse(ref: str) -> tuple[str, str]:
        if not ref.startswith("sha256:") or "." not in ref:
            raise InvalidInput(f"{ref!r} is not a media ref", hint="refs look like sha256:<64 hex>.jpg")
        digest, _, ext = ref.removeprefix("sha256:").partition(".")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InvalidInput(f"{ref!r} is not a media ref", hint="refs look like sha256:<64 hex>.jpg")
        return digest, MediaStore._check_ext(ext)


def _purpose(ref: str) -> bytes:
    return b"media\x00" + ref.encode()


class _Entry:
    """A path with the `stat()` of a directory entry (a file put back under its own name)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def stat(self) -> os.stat_result:
        return os.stat(self.path)


def _freshen(path: Path) -> bool:
    """Marks an existing file as just stored (the sweep spares fresh files); False when there is none."""
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    except PermissionError:
        pass  # another user's file: it exists, and its owner's sweep judges it
    return True


def _tighten(path: Path, mode: int) -> None:
    try:
        if (path.stat().st_mode & 0o777) != mode:
            os.chmod(path, mode)
    except (FileNotFoundError, PermissionError):
        pass  # gone meanwhile, or another user's: reported by nobody, fixed by its owner


# --- photo metadata --------------------------------------------------------------------------------


def _orientation(data: bytes) -> int:
    """Returns the EXIF orientation of a photo (1: as stored; 0 when it cannot be read)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.getexif().get(_ORIENTATION, 1))
    except Exception:  # Pillow raises many kinds on a damaged header; the photo was decoded already
        return 0


def strip_metadata(data: bytes, ext: str) -> bytes | None:
    """Returns a JPEG or PNG without its metadata, pixels untouched; None when it cannot be taken apart."""
    if ext == "jpg":
        return _strip_jpeg(data)
    if ext == "png":
        return _strip_png(data)
    return None


_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _keep_jpeg_segment(marker: int, body: bytes) -> bool:
    if marker == 0xFE or 0xE1 <= marker <= 0xEF:  # comments and APP1-15 (EXIF, XMP, MPF, maker notes)
        # Kept: the ICC colour profile (APP2) and Adobe's colour transform (APP14), which decoding needs.
        return (marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00")) or (
            marker == 0xEE and body.startswith(b"Adobe")
        )
    if marker == 0xE0:  # APP0: JFIF kept; JFXX carries a thumbnail
        return body.startswith(b"JFIF\x00")
    return True


def _strip_jpeg(data: bytes) -> bytes | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    out = bytearray(b"\xff\xd8")
    i, n = 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # end of image: anything after it (a trailer, a second picture) is dropped
            out += b"\xff\xd9"
            return bytes(out)
        if marker in _STANDALONE:
            out += data[i : i + 2]
            i += 2
            continue
        if i + 4 > n:
            return None
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        end = i + 2 + length
        if length < 2 or end > n:
            return None
        if _keep_jpeg_segment(marker, data[i + 4 : end]):
            out += data[i:end]
        i = end
        if marker == 0xDA:  # start of scan: copy the entropy-coded data up to the next real marker
            j = i
            while j + 1 < n and not (data[j] == 0xFF and data[j + 1] not in (0x00, *range(0xD0, 0xD8))):
                j += 1
            out += data[i:j]
            i = j
    return None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Critical chunks and those that say how to show the pixels; text, time and EXIF chunks are dropped.
_PNG_KEEP = {
    b"IHDR",
    b"PLTE",
    b"IDAT",
    b"IEND",
    b"tRNS",
    b"gAMA",
    b"cHRM",
    b"sRGB",
    b"iCCP",
    b"sBIT",
    b"bKGD",
}


def _strip_png(data: bytes) -> bytes | None:
    if not data.startswith(_PNG_SIGNATURE):
        return None
    out = bytearray(_PNG_SIGNATURE)
    i, n = len(_PNG_SIGNATURE), len(data)
    while i + 12 <= n:
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > n:
            return None
        if kind in _PNG_KEEP:
            out += data[i:end]
        if kind == b"IEND":
            return bytes(out)
        i = end
    return None
