"""The media sweep and the size report on a generated store: objects/s and GB/s examined and removed.

The store holds `--objects` files (100,000; 10,000 with --quick) of plate crops (~6 KB), frames
(~40 KB) and notices (~120 KB), written two days ago, in the data folder's SQLite database:

  claimed   half of them, by plate reads inside their retention;
  expired   a tenth, by plate reads past their retention (the sweep drops those claims first);
  orphans   the rest, claimed by nothing (the frames a tracker kept, crops of reads purged long ago).

Two sweeps run as in production, the grace apart: the first drops the expired claims and records
every unclaimed object; the second, a grace later, removes them (set aside, claims read again, audit
entry per batch, file removed). Then the size report walks what is left.

  .venv/bin/python bench/bench_media.py [--quick] [--objects 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from sqlalchemy import Table

from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.db import insert_many
from safecity.evidence import retention
from safecity.evidence.models import MediaOwner
from safecity.settings import Settings

err = Console(stderr=True)
# (share of objects, bytes each): crops, frames, notices.
MIX = ((0.70, 6_000), (0.27, 40_000), (0.03, 120_000))
GRACE_H = 24.0
RETENTION_DAYS = 90


def generate(ctx: Context, count: int, *, seed: int = 7) -> dict[str, int]:
    """Writes `count` distinct objects straight into the store's layout and claims them; returns the split."""
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, max(size for _, size in MIX) + count, dtype=np.uint8).tobytes()
    sizes = rng.choice([size for _, size in MIX], size=count, p=[share for share, _ in MIX])
    fate = rng.choice(["claimed", "expired", "orphan"], size=count, p=[0.5, 0.1, 0.4])
    two_days_ago = time.time() - 2 * 86400
    now = utcnow()
    claims: list[dict[str, Any]] = []
    for i in range(count):
        # Distinct bytes per object: a window of the pool with the index in front (content addressing).
        data = i.to_bytes(8, "big") + pool[i : i + int(sizes[i])]
        digest = hashlib.sha256(data).hexdigest()
        folder = ctx.media.root / digest[:2] / digest[2:4]
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / f"{digest}.bin"
        path.write_bytes(data)
        os.utime(path, (two_days_ago, two_days_ago))
        if fate[i] != "orphan":
            age = timedelta(days=1 if fate[i] == "claimed" else RETENTION_DAYS + 5)
            claims.append(
                {"ref": f"sha256:{digest}.bin", "kind": "plate_read", "owner": f"r{i}", "at": now - age}
            )
    table = MediaOwner.__table__
    assert isinstance(table, Table)
    with ctx.db.session() as session:
        for start in range(0, len(claims), 5000):
            insert_many(
                session, table, claims[start : start + 5000], skip_conflicts_on=["ref", "kind", "owner"]
            )
    return {
        "claimed": int((fate == "claimed").sum()),
        "expired": int((fate == "expired").sum()),
        "orphans": int((fate == "orphan").sum()),
        "bytes": int(sizes.sum()) + 8 * count,
    }


def rates(objects: int, size: int, seconds: float) -> dict[str, float]:
    """Returns objects/s and GB/s for `objects` of `size` bytes in `seconds`."""
    return {
        "objects_per_s": round(objects / seconds, 1) if seconds else 0.0,
        "gb_per_s": round(size / 1e9 / seconds, 3) if seconds else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10,000 objects instead of 100,000")
    parser.add_argument("--objects", type=int, default=None, help="objects in the generated store")
    args = parser.parse_args()
    count = args.objects or (10_000 if args.quick else 100_000)
    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            media_orphan_grace_hours=GRACE_H,
            plate_read_retention_days=RETENTION_DAYS,
        )
        ctx = Context.create(settings)
        err.print(f"writing {count:,} objects…")
        started = time.perf_counter()
        split = generate(ctx, count)
        err.print(f"written in {time.perf_counter() - started:.1f} s; sweeping…")

        first = retention.sweep(ctx.db, ctx.media, settings, actor="bench")
        second = retention.sweep(
            ctx.db, ctx.media, settings, actor="bench", now=utcnow() + timedelta(hours=GRACE_H + 1)
        )
        started = time.perf_counter()
        report = retention.store_report(ctx.db, ctx.media, settings)
        report_s = time.perf_counter() - started
        left = sum(1 for _ in ctx.media.root.rglob("*.bin"))
        ctx.db.dispose()
    removed_expected = split["orphans"] + split["expired"]
    out = {
        "bench": "media",
        "objects": count,
        "store_bytes": split["bytes"],
        "split": {k: v for k, v in split.items() if k != "bytes"},
        "grace_hours": GRACE_H,
        "first_sweep": {
            "seconds": first.seconds,
            "examined": first.examined,
            "claims_expired": first.claims_expired,
            "waiting": first.waiting,
            "removed": first.removed,
            "examined_rate": rates(first.examined, first.examined_bytes, first.seconds),
        },
        "second_sweep": {
            "seconds": second.seconds,
            "examined": second.examined,
            "removed": second.removed,
            "removed_bytes": second.removed_bytes,
            "examined_rate": rates(second.examined, second.examined_bytes, second.seconds),
            "removed_rate": rates(second.removed, second.removed_bytes, second.seconds),
        },
        "size_report": {
            "seconds": round(report_s, 3),
            **rates(report.objects, report.bytes, report_s),
            "by_class": {
                c.name: {"objects": c.objects, "bytes": c.bytes} for c in report.classes if c.objects
            },
            "unclaimed_objects": report.unclaimed_objects,
        },
        "correct": second.removed == removed_expected and left == split["claimed"] == report.objects,
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
