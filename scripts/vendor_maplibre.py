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
import tempfile
from pathlib import Path

from npm_vendor import ROOT, Package, check_integrity, extract, fetch

VENDOR = ROOT / "src" / "safecity" / "web" / "static" / "vendor" / "maplibre"


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
