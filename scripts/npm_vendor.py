"""Vendoring a browser library from its npm package: the pinned tarball, checked against the integrity
the registry publishes, and the files a page needs copied out of it (scripts/vendor_*.py use it)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Package:
    spec: str
    tarball: str
    integrity: str  # `npm view <spec> dist.integrity`
    files: dict[str, str]  # member of the tarball -> file in the vendor folder


def fetch(package: Package, scratch: Path) -> Path:
    """Runs `npm pack` for the pinned version in `scratch` and returns the tarball."""
    subprocess.run(
        ["npm", "pack", package.spec, "--silent"], cwd=scratch, check=True, stdout=subprocess.DEVNULL
    )
    return scratch / package.tarball


def check_integrity(package: Package, tarball: Path) -> None:
    """Stops unless `tarball` is byte for byte the one the registry publishes."""
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != package.integrity:
        raise SystemExit(
            f"{tarball} is not {package.spec} as published: integrity {digest}, expected {package.integrity}"
        )


def extract(package: Package, tarball: Path, into: Path) -> None:
    """Writes the files a page needs from `tarball` under `into`."""
    with tarfile.open(tarball) as archive:
        for member, target in package.files.items():
            source = archive.extractfile(member)
            if source is None:
                raise SystemExit(f"{tarball} has no file {member}")
            path = into / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(source.read())
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            print(f"{shown}  {hashlib.sha256(path.read_bytes()).hexdigest()}")
