"""Copies MapLibre GL JS and its Leaflet binding from their npm packages into
`src/safecity/web/static/vendor/maplibre/`.

The console draws an operator's vector tiles with MapLibre inside the Leaflet map (README, 'The map').
Like Leaflet (scripts/vendor_leaflet.py), the files are committed, not installed at set-up, and this
script is the only way they change: run it and `git diff` shows nothing.

    python scripts/vendor_maplibre.py              # runs `npm pack` for both pinned versions
    python scripts/vendor_maplibre.py --tarballs maplibre-gl-6.20.0.tgz maplibre-maplibre-gl-leaflet-0.1.4.tgz

Each tarball must match the integrity the npm registry publishes for its version (pinned below).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "src" / "safecity" / "web" / "static" / "vendor" / "maplibre"


@dataclass(frozen=True)
class Package:
    spec: str
    tarball: str
    integrity: str  # `npm view <spec> dist.integrity`
    files: dict[str, str]  # member of the tarball -> file under VENDOR


PACKAGES = (
    # MapLibre 6 ships ES modules only; the page imports maplibre-gl.mjs, which starts its workers from
    # maplibre-gl-worker.mjs beside it.
    Package(
        spec="maplibre-gl@6.20.0",
        tarball="maplibre-gl-6.20.0.tgz",
        integrity="sha512-7manvqXeNoN0mKRzenYDopkb3VW9j7iag45RvopkOVFZ7c+La7CBWtK8eBS5bKrI6NyxqAIxPxIG1PMcotcY1w==",
        files={
            "package/LICENSE.txt": "LICENSE-maplibre-gl.txt",
            "package/dist/maplibre-gl.mjs": "maplibre-gl.mjs",
            "package/dist/maplibre-gl-worker.mjs": "maplibre-gl-worker.mjs",
            "package/dist/maplibre-gl.css": "maplibre-gl.css",
        },
    ),
    # The binding's browser build reads the globals L and maplibregl and adds L.maplibreGL.
    Package(
        spec="@maplibre/maplibre-gl-leaflet@0.1.4",
        tarball="maplibre-maplibre-gl-leaflet-0.1.4.tgz",
        integrity="sha512-k57wcndZIvq3m08g2je4pjUPGr43ffNW3j+gXbymt8Vi2l1lUERUi1UmdTZcTPN8LuDDYOMWRNBaSLwpAu02ew==",
        files={
            "package/LICENSE": "LICENSE-maplibre-gl-leaflet.txt",
            "package/leaflet-maplibre-gl.js": "leaflet-maplibre-gl.js",
        },
    ),
)


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tarballs",
        type=Path,
        nargs=len(PACKAGES),
        metavar="TGZ",
        help="the outputs of `npm pack` for " + " and ".join(p.spec for p in PACKAGES) + " (default: run it)",
    )
    parser.add_argument("--out", type=Path, default=VENDOR, help="where the files go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for index, package in enumerate(PACKAGES):
            tarball = args.tarballs[index] if args.tarballs else fetch(package, Path(scratch))
            check_integrity(package, tarball)
            extract(package, tarball, args.out)


if __name__ == "__main__":
    main()
