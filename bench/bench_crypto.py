"""Encryption at rest: what AES-256-GCM costs the media store and the watch-list index load.

media        MB/s storing and reading objects through `MediaStore`, plain and sealed, for crops
             (~30 KB JPEGs), frames (~250 KB) and notices (~1 MB PDFs): put (hash, seal, write 0600,
             rename) and get (read, open);
index load   the watch-list photos' embeddings read from SQLite as the worker's `WorkerWatchlist.load`
             reads them: the old JSON column against the sealed float32 column, per photo and total;
columns      µs to seal and open one camera password (the registry opens them once per load).

  .venv/bin/python bench/bench_crypto.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from sqlalchemy import JSON, Column, Integer, MetaData, Table, create_engine, insert, select

from safecity.core import crypto
from safecity.core.media import MediaStore
from safecity.settings import Settings

err = Console(stderr=True)
SIZES = {"crop_30k": 30_000, "frame_250k": 250_000, "notice_1m": 1_000_000}
ROUNDS = 4


def objects(size: int, count: int, seed: int) -> list[bytes]:
    """Returns `count` distinct random objects of `size` bytes (random: nothing compresses or repeats)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size, dtype=np.uint8).tobytes() for _ in range(count)]


def one_round(root: Path, cipher: crypto.Cipher | None, data: list[bytes]) -> tuple[float, float]:
    """Returns the seconds to put every object into a fresh store, and to read them all back."""
    store = MediaStore(root, cipher=cipher)
    start = time.perf_counter()
    refs = [store.put(d, "bin") for d in data]
    put_s = time.perf_counter() - start
    start = time.perf_counter()
    for ref in refs:
        store.get(ref)
    return put_s, time.perf_counter() - start


def bench_media(folder: Path, cipher: crypto.Cipher, megabytes: int) -> dict[str, Any]:
    """MB/s plain and sealed per object size: the best of ROUNDS rounds, the two taking turns first."""
    out: dict[str, Any] = {}
    for name, size in SIZES.items():
        count = max(4, megabytes * 1_000_000 // size // len(SIZES))
        data = objects(size, count, len(out))
        best = {"plain": [float("inf")] * 2, "sealed": [float("inf")] * 2}
        for round_ in range(ROUNDS):
            modes = [("plain", None), ("sealed", cipher)]
            for mode, sealer in modes if round_ % 2 == 0 else modes[::-1]:
                times = one_round(folder / f"{name}-{mode}-{round_}", sealer, data)
                best[mode] = [min(a, b) for a, b in zip(best[mode], times, strict=True)]
        total = sum(len(d) for d in data) / 1e6
        rates = {
            mode: {"put_mb_s": round(total / put_s, 1), "get_mb_s": round(total / get_s, 1)}
            for mode, (put_s, get_s) in best.items()
        }
        out[name] = {
            "objects": count,
            **rates,
            "put_cost_pct": round(100 * (rates["plain"]["put_mb_s"] / rates["sealed"]["put_mb_s"] - 1), 1),
            "get_cost_pct": round(100 * (rates["plain"]["get_mb_s"] / rates["sealed"]["get_mb_s"] - 1), 1),
        }
    return out


def bench_index_load(folder: Path, photos: int, views: int) -> dict[str, Any]:
    """Times reading every photo's embeddings into one float32 matrix, JSON column against sealed."""
    engine = create_engine(f"sqlite:///{folder / 'index.db'}")
    meta = MetaData()
    plain = Table("plain", meta, Column("id", Integer, primary_key=True), Column("embeddings", JSON))
    sealed = Table(
        "sealed",
        meta,
        Column("id", Integer, primary_key=True),
        Column("embeddings", crypto.EncryptedVectors("faces.embeddings")),
    )
    meta.create_all(engine)
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(photos, views, 128)).astype(np.float32)
    with engine.begin() as connection:
        connection.execute(insert(plain), [{"embeddings": v.tolist()} for v in vectors])
        connection.execute(insert(sealed), [{"embeddings": v.tolist()} for v in vectors])

    def load(table: Table) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            with engine.connect() as connection:
                rows = [row for (e,) in connection.execute(select(table.c.embeddings)) for row in e]
            matrix = np.asarray(rows, dtype=np.float32)
            best = min(best, time.perf_counter() - start)
        assert matrix.shape == (photos * views, 128)
        return best

    json_s, sealed_s = load(plain), load(sealed)
    engine.dispose()
    return {
        "photos": photos,
        "embeddings_per_photo": views,
        "json_ms": round(json_s * 1000, 1),
        "sealed_ms": round(sealed_s * 1000, 1),
        "json_us_per_photo": round(json_s / photos * 1e6, 1),
        "sealed_us_per_photo": round(sealed_s / photos * 1e6, 1),
        "cost_pct": round(100 * (sealed_s / json_s - 1), 1),
        "bytes_per_photo": {
            "json": len(json.dumps(vectors[0].tolist())),
            "sealed": len(crypto.cipher().seal_text(crypto.pack_vectors(vectors[0]), purpose=b"x")),
        },
    }


def bench_columns(cipher: crypto.Cipher, n: int) -> dict[str, float]:
    purpose = b"cameras.password"
    start = time.perf_counter()
    sealed = [cipher.seal_text(b"camera-password-%d" % i, purpose=purpose) for i in range(n)]
    seal_s = time.perf_counter() - start
    start = time.perf_counter()
    for text in sealed:
        cipher.unseal_text(text, purpose=purpose)
    open_s = time.perf_counter() - start
    return {"seal_us": round(seal_s / n * 1e6, 2), "open_us": round(open_s / n * 1e6, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (about 30 s)")
    args = parser.parse_args()
    megabytes, photos = (90, 2_000) if args.quick else (600, 20_000)
    with tempfile.TemporaryDirectory(prefix="safecity-bench-crypto-") as tmp:
        folder = Path(tmp)
        cipher = crypto.bind(Settings(data_dir=folder / "data"))
        err.print(f"media: {megabytes} MB each way, plain and sealed")
        media = bench_media(folder, cipher, megabytes)
        err.print(f"index load: {photos} photos")
        index = bench_index_load(folder, photos, views=3)
        columns = bench_columns(cipher, 20_000)
    report = {
        "benchmark": "crypto",
        "quick": args.quick,
        "cpu_count": os.cpu_count(),
        "media": media,
        "index_load": index,
        "camera_password": columns,
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
