"""Content-addressed media store: crops, frames, clips and evidence filed by their SHA-256.

The same bytes are stored once; a ref (`sha256:<hex>.<ext>`) names them forever, so an evidence
record can prove its file has not changed by hashing it again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from safecity.core.errors import InvalidInput, NotFound

_ALLOWED_EXT = {"jpg", "png", "mp4", "ts", "m4s", "pdf", "json", "bin", "webm"}


class MediaStore:
    """Files under a root folder, named by the SHA-256 of their content."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, ext: str) -> str:
        """Stores `data` and returns its ref; storing the same bytes again returns the same ref."""
        ext = self._check_ext(ext)
        digest = hashlib.sha256(data).hexdigest()
        ref = f"sha256:{digest}.{ext}"
        path = self.path(ref)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a crash never leaves a truncated file under a valid name.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        return ref

    def put_file(self, source: Path, ext: str | None = None) -> str:
        """Stores a file's content (streamed, for clips) and returns its ref."""
        ext = self._check_ext(ext or source.suffix.lstrip("."))
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        ref = f"sha256:{digest.hexdigest()}.{ext}"
        path = self.path(ref)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".tmp-{path.name}")
            shutil.copyfile(source, tmp)
            os.replace(tmp, path)
        return ref

    def put_image(self, image: np.ndarray, *, quality: int = 85) -> str:
        """Encodes a BGR image as JPEG and stores it."""
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise InvalidInput("image could not be encoded as JPEG", hint="pass a BGR uint8 array")
        return self.put(buf.tobytes(), "jpg")

    def path(self, ref: str) -> Path:
        """Returns where the file of `ref` lives (it may not exist)."""
        digest, ext = self._parse(ref)
        return self.root / digest[:2] / digest[2:4] / f"{digest}.{ext}"

    def get(self, ref: str) -> bytes:
        """Returns the bytes of `ref`, or raises NotFound."""
        path = self.path(ref)
        if not path.exists():
            raise NotFound(f"media {ref} is not in the store", hint="it may have passed its retention")
        return path.read_bytes()

    def verify(self, ref: str) -> bool:
        """Returns True when the stored file still hashes to its ref."""
        digest, _ = self._parse(ref)
        path = self.path(ref)
        if not path.exists():
            return False
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        return sha.hexdigest() == digest

    def delete(self, ref: str) -> bool:
        """Removes the file of `ref`; returns whether it existed."""
        path = self.path(ref)
        if path.exists():
            path.unlink()
            return True
        return False

    @staticmethod
    def _check_ext(ext: str) -> str:
        ext = ext.lower().lstrip(".")
        if ext not in _ALLOWED_EXT:
            raise InvalidInput(f"media type .{ext} is not stored", hint=f"use one of {sorted(_ALLOWED_EXT)}")
        return ext

    @staticmethod
    def _parse(ref: str) -> tuple[str, str]:
        if not ref.startswith("sha256:") or "." not in ref:
            raise InvalidInput(f"{ref!r} is not a media ref", hint="refs look like sha256:<64 hex>.jpg")
        digest, _, ext = ref.removeprefix("sha256:").partition(".")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise InvalidInput(f"{ref!r} is not a media ref", hint="refs look like sha256:<64 hex>.jpg")
        return digest, MediaStore._check_ext(ext)
