"""Benchmark of ANPR storage: hot-list matching at 100k plates, plate search over 1M reads, read intake.

Synthetic Karachi-style plates (AAA999, AA9999, AAA9999). Reports, as medians:
- hot-list index build time and look-up latency (exact, one look-alike away, edit distance 1);
- search latency over N stored reads: exact plate, wildcard with a prefix (LE?45*), partial (contains,
  through the dictionary of plates seen), a leading wildcard (*4521), one camera over one hour;
- intake: plate reads per second through `process_read` (store, hot-list check, area log, clone check).
Prints one JSON object on stdout (progress on stderr).

    .venv/bin/python bench/bench_anpr_store.py            # 100k hot list, 1M reads (minutes on 2 cores)
    .venv/bin/python bench/bench_anpr_store.py --quick    # 20k hot list, 100k reads
    .venv/bin/python bench/bench_anpr_store.py --db-url postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import insert, text

from safecity.anpr import service
from safecity.anpr.hotlist import CONFUSION_GROUPS, HotlistIndex
from safecity.anpr.models import HotlistEntry, PlateReadRow, SearchQuery
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import PlateRead
from safecity.core.ids import new_id
from safecity.settings import Settings

console = Console(stderr=True)
LOOKALIKE = {ch: group for group in CONFUSION_GROUPS for ch in group}


def random_plate(rng: random.Random) -> str:
    """Returns a plate in one of the common Sindh/Punjab formats."""
    letters = rng.choice((3, 2, 3))
    digits = rng.choice((3, 4, 4))
    return "".join(rng.choices(string.ascii_uppercase, k=letters)) + "".join(
        rng.choices(string.digits, k=digits)
    )


def misread(plate: str, rng: random.Random) -> str:
    """Returns the plate with one character swapped for a look-alike (when it has one)."""
    spots = [i for i, ch in enumerate(plate) if len(LOOKALIKE.get(ch, "")) > 1]
    if not spots:
        return plate
    i = rng.choice(spots)
    other = rng.choice([c for c in LOOKALIKE[plate[i]] if c != plate[i]])
    return plate[:i] + other + plate[i + 1 :]


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Returns the median wall time of `fn` in milliseconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples) * 1000, 3)


def bench_index(size: int, rng: random.Random) -> dict[str, Any]:
    """Builds a hot-list index of `size` plates and times look-ups of each kind."""
    plates = list({random_plate(rng) for _ in range(size)})
    start = time.perf_counter()
    index = HotlistIndex((str(i), p) for i, p in enumerate(plates))
    build_s = time.perf_counter() - start
    probes = rng.sample(plates, 1000)
    misreads = [misread(p, rng) for p in probes]
    strangers = [random_plate(rng) for _ in range(1000)]

    def per_lookup_us(reads: list[str], **options: Any) -> float:
        start = time.perf_counter()
        for plate in reads:
            index.lookup(plate, **options)
        return round((time.perf_counter() - start) / len(reads) * 1e6, 2)

    start = time.perf_counter()
    index.lookup(probes[0], edit_distance=True)
    deletion_build_s = time.perf_counter() - start
    found = sum(bool(index.lookup(p, max_confusions=1)) for p in misreads)
    false_hits = sum(bool(index.lookup(p, max_confusions=1)) for p in strangers)
    false_hits_edit = sum(bool(index.lookup(p, max_confusions=1, edit_distance=True)) for p in strangers)
    return {
        "plates": len(plates),
        "build_s": round(build_s, 3),
        "edit_index_build_s": round(deletion_build_s, 3),
        "lookup_us_exact": per_lookup_us(probes, max_confusions=0),
        "lookup_us_confusion": per_lookup_us(misreads, max_confusions=1),
        "lookup_us_confusion_and_edit": per_lookup_us(misreads, max_confusions=1, edit_distance=True),
        "misreads_found": found / len(misreads),
        "random_plates_matching_confusion": false_hits / len(strangers),
        "random_plates_matching_confusion_or_edit": false_hits_edit / len(strangers),
    }


def fill_reads(ctx: Context, count: int, rng: random.Random) -> tuple[list[str], str]:
    """Stores `count` reads over 30 days at 200 cameras; returns some stored plates and a busy camera."""
    now = utcnow()
    plates = [random_plate(rng) for _ in range(max(1000, count // 20))]
    batch = 20_000
    with console.status("storing reads") as status:
        for start in range(0, count, batch):
            rows = [
                {
                    "id": new_id(),
                    "event_key": f"bench:{start + i}",
                    "plate": rng.choice(plates),
                    "region": "pk",
                    "confidence": 0.9,
                    "camera_id": f"cam-{rng.randrange(200):03d}",
                    "latitude": 24.8 + rng.random() * 0.2,
                    "longitude": 67.0 + rng.random() * 0.2,
                    "at": now - timedelta(seconds=rng.randrange(30 * 86400)),
                    "stored_at": now,
                }
                for i in range(min(batch, count - start))
            ]
            with ctx.db.session() as session:
                session.execute(insert(PlateReadRow), rows)
            status.update(f"storing reads: {start + len(rows):,}/{count:,}")
    with ctx.db.session() as session:
        # The dictionary of plates seen, as store_read keeps it read by read.
        session.execute(
            text(
                "INSERT INTO plates_seen (plate, last_at, reads) "
                "SELECT plate, MAX(at), COUNT(*) FROM plate_reads GROUP BY plate"
            )
        )
    return plates, "cam-007"


def bench_search(ctx: Context, count: int, rng: random.Random, repeats: int) -> dict[str, Any]:
    """Times investigators' searches over `count` stored reads."""
    start = time.perf_counter()
    plates, camera = fill_reads(ctx, count, rng)
    fill_s = time.perf_counter() - start
    now = utcnow()

    def run(**fields: Any) -> Callable[[], object]:
        def search() -> object:
            with ctx.db.session() as session:
                return service.search_reads(session, SearchQuery(reason="bench", **fields), actor="bench")

        return search

    target = plates[0]
    return {
        "reads": count,
        "fill_s": round(fill_s, 1),
        "search_ms_exact": median_ms(run(plate=target), repeats),
        "search_ms_wildcard_prefix": median_ms(run(plate=target[:2] + "?" + target[3:5] + "*"), repeats),
        "search_ms_partial": median_ms(
            run(plate=target[-4:], match="partial", limit=100), max(3, repeats // 4)
        ),
        "search_ms_wildcard_leading": median_ms(
            run(plate="*" + target[-4:], limit=100), max(3, repeats // 4)
        ),
        "search_ms_camera_hour": median_ms(
            run(camera_id=camera, since=now - timedelta(hours=25), until=now - timedelta(hours=24)), repeats
        ),
    }


def bench_intake(ctx: Context, reads: int, hotlist: int, rng: random.Random) -> dict[str, Any]:
    """Times `process_read` per read with a hot list of `hotlist` plates in place."""
    now = utcnow()
    with ctx.db.session() as session:
        for i in range(20):
            data = CameraIn.model_validate(
                {
                    "id": f"intake-{i}",
                    "name": f"intake {i}",
                    "kind": "anpr",
                    "district": "South",
                    "latitude": 24.8 + i * 0.01,
                    "longitude": 67.0 + i * 0.01,
                }
            )
            cameras.create(session, data, actor="bench")
        listed = list({random_plate(rng) for _ in range(hotlist)})
        session.execute(
            insert(HotlistEntry),
            [
                {
                    "id": new_id(),
                    "plate": p,
                    "list_name": "stolen",
                    "reason": "bench",
                    "vehicle": "",
                    "reference": "",
                    "added_by": "bench",
                    "created_at": now,
                    "updated_by": "bench",
                    "updated_at": now,
                }
                for p in listed
            ],
        )
        service._bump_revision(session)
    events = [
        PlateRead(
            key=f"intake:{i}",
            camera_id=f"intake-{rng.randrange(20)}",
            at=now - timedelta(seconds=reads - i),
            plate=rng.choice(listed) if i % 50 == 0 else random_plate(rng),
            confidence=0.9,
        )
        for i in range(reads)
    ]
    with ctx.db.session() as session:
        service.hotlist_index(session)  # the first read after a change rebuilds the index; time it apart
    start = time.perf_counter()
    for event in events:
        with ctx.db.session() as session:
            service.process_read(session, event)
    elapsed = time.perf_counter() - start
    return {"reads": reads, "hotlist": len(listed), "reads_per_s": round(reads / elapsed, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20k hot list, 100k reads, 300 intake reads")
    parser.add_argument("--hotlist", type=int, default=None, help="hot-list size (default 100000)")
    parser.add_argument("--reads", type=int, default=None, help="stored reads (default 1000000)")
    parser.add_argument("--repeats", type=int, default=20, help="runs per search figure (median reported)")
    parser.add_argument("--db-url", default=None, help="database URL (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    hotlist = args.hotlist or (20_000 if args.quick else 100_000)
    reads = args.reads or (100_000 if args.quick else 1_000_000)
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context.create(Settings(data_dir=Path(tmp), database_url=args.db_url))
        console.print(f"hot-list index: {hotlist:,} plates")
        index = bench_index(hotlist, rng)
        console.print(f"search: {reads:,} reads")
        search = bench_search(ctx, reads, rng, args.repeats)
        console.print("intake through process_read")
        intake = bench_intake(ctx, 300 if args.quick else 1000, hotlist, rng)
        database = ctx.db.engine.dialect.name
        ctx.db.dispose()
    result = {
        "bench": "anpr_store",
        "database": database,
        "hotlist_index": index,
        "search": search,
        "intake": intake,
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
