"""Copies Leaflet's browser files from its npm package into `src/safecity/web/static/vendor/leaflet/`.

The map library is committed, not installed at set-up: a fresh clone then serves its maps with only
PyPI reachable (no Node.js on the servers, nothing from a CDN). This script is the only way those files
change, so anyone can check them: run it and `git diff` shows nothing.

    python scripts/vendor_leaflet.py                          # runs `npm pack leaflet@1.9.4`
    python scripts/vendor_leaflet.py --tarball leaflet-1.9.4.tgz

The tarball must match the integrity the npm registry publishes for the version (pinned below).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from npm_vendor import ROOT, Package, check_integrity, extract, fetch

VENDOR = ROOT / "src" / "safecity" / "web" / "static" / "vendor" / "leaflet"
# What a page needs: the minified script, its stylesheet and the images the stylesheet names.
LEAFLET = Package(
    spec="leaflet@1.9.4",
    tarball="leaflet-1.9.4.tgz",
    # `npm view leaflet@1.9.4 dist.integrity`
    integrity="sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==",
    files={
        "package/LICENSE": "LICENSE",
        "package/dist/leaflet.js": "leaflet.js",
        "package/dist/leaflet.css": "leaflet.css",
        "package/dist/images/layers.png": "images/layers.png",
        "package/dist/images/layers-2x.png": "images/layers-2x.png",
        "package/dist/images/marker-icon.png": "images/marker-icon.png",
        "package/dist/images/marker-icon-2x.png": "images/marker-icon-2x.png",
        "package/dist/images/marker-shadow.png": "images/marker-shadow.png",
    },
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tarball", type=Path, help="the output of `npm pack leaflet@1.9.4` (default: run it)"
    )
    parser.add_argument("--out", type=Path, default=VENDOR, help="where the files go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tarball = args.tarball or fetch(LEAFLET, Path(scratch))
        check_integrity(LEAFLET, tarball)
        extract(LEAFLET, tarball, args.out)


if __name__ == "__main__":
    main()
