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
import base64
import hashlib
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "src" / "safecity" / "web" / "static" / "vendor" / "leaflet"
PACKAGE = "leaflet@1.9.4"
# `npm view leaflet@1.9.4 dist.integrity`
INTEGRITY = "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="
# What a page needs: the minified script, its stylesheet and the images the stylesheet names.
FILES = {
    "package/LICENSE": "LICENSE",
    "package/dist/leaflet.js": "leaflet.js",
    "package/dist/leaflet.css": "leaflet.css",
    "package/dist/images/layers.png": "images/layers.png",
    "package/dist/images/layers-2x.png": "images/layers-2x.png",
    "package/dist/images/marker-icon.png": "images/marker-icon.png",
    "package/dist/images/marker-icon-2x.png": "images/marker-icon-2x.png",
    "package/dist/images/marker-shadow.png": "images/marker-shadow.png",
}


def fetch(scratch: Path) -> Path:
    """Runs `npm pack` for the pinned version in `scratch` and returns the tarball."""
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=scratch, check=True, stdout=subprocess.DEVNULL)
    return scratch / "leaflet-1.9.4.tgz"


def check_integrity(tarball: Path) -> None:
    """Stops unless `tarball` is byte for byte the one the registry publishes."""
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != INTEGRITY:
        raise SystemExit(f"{tarball} is not {PACKAGE} as published: integrity {digest}, expected {INTEGRITY}")


def extract(tarball: Path, into: Path) -> None:
    """Writes the files a page needs from `tarball` under `into`."""
    with tarfile.open(tarball) as archive:
        for member, target in FILES.items():
            source = archive.extractfile(member)
            if source is None:
                raise SystemExit(f"{tarball} has no file {member}")
            path = into / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(source.read())
            print(f"{path.relative_to(ROOT)}  {hashlib.sha256(path.read_bytes()).hexdigest()}")


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
        tarball = args.tarball or fetch(Path(scratch))
        check_integrity(tarball)
        extract(tarball, args.out)


if __name__ == "__main__":
    main()
