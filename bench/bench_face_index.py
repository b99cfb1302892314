"""Benchmark of 1:N face search: exact numpy search against the HNSW index at 10k, 100k and 1M entries.

Data are synthetic 128-d unit vectors with clustered structure: 1,000 broad groups (faces of one
kind look alike: entries of a group have cosine ~0.6 to each other), one entry per person around its
group's centre, and queries that are fresh "photos" of enrolled people (cosine ~0.9 to their entry,
as for the same person in dlib's space). Reports build time, single-threaded p50/p99 query latency
and recall@1 of HNSW against exact search for each search breadth `ef`, from one build. Prints one
JSON object on stdout.

    .venv/bin/python bench/bench_face_index.py                 # 10k, 100k, 1M (1M: ~5-10 min on 2 cores)
    .venv/bin/python bench/bench_face_index.py --sizes 10000   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# Single-threaded search is the figure asked for: keep BLAS on one core (set before numpy loads).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402

from safecity.faces.index import (  # noqa: E402
    EXACT_SEARCH_LIMIT,
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    ExactIndex,
    HnswIndex,
)

DIM = 128
console = Console(stderr=True)


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """Returns the rows scaled to unit length."""
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def synthetic_gallery(n: int, rng: np.random.Generator) -> np.ndarray:
    """Returns n unit vectors, one per person, around 1,000 group centres (cosine ~0.6 within a group)."""
    centres = unit_rows(rng.standard_normal((1000, DIM)).astype(np.float32))
    spread = rng.standard_normal((n, DIM)).astype(np.float32) * (1.1 / np.sqrt(DIM))
    return unit_rows(centres[rng.integers(0, len(centres), n)] + spread)


def percentiles(samples: list[float]) -> tuple[float, float]:
    """Returns p50 and p99 of samples in milliseconds."""
    values = np.array(samples) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def run_size(
    n: int, queries: int, efs: list[int], rng: np.random.Generator, m: int, ef_construction: int
) -> dict[str, object]:
    """Builds both indexes over n entries and measures them on the same queries."""
    gallery = synthetic_gallery(n, rng)
    picks = rng.integers(0, n, queries)
    # Another photo of the person: cosine ~0.9 to the enrolled embedding.
    noise = rng.standard_normal((queries, DIM)).astype(np.float32) * (0.48 / np.sqrt(DIM))
    probe = unit_rows(gallery[picks] + noise)
    ids = [f"e{i}" for i in range(n)]

    started = time.perf_counter()
    exact = ExactIndex(dim=DIM)
    exact._rows = gallery  # bulk load: add() per entry would copy the matrix n times
    exact._owners = ids
    exact._per_entry = dict.fromkeys(ids, 1)
    exact._most_rows = 1
    exact_build = time.perf_counter() - started

    started = time.perf_counter()
    hnsw = HnswIndex(dim=DIM, capacity=n, m=m, ef_construction=ef_construction)
    hnsw.set_num_threads(os.cpu_count() or 1)
    hnsw.add_many(ids, gallery)
    hnsw.set_num_threads(1)
    hnsw_build = time.perf_counter() - started
    console.log(f"{n}: built hnsw in {hnsw_build:.1f} s")

    exact_times, truths = [], []
    for query in probe:
        t0 = time.perf_counter()
        truths.append(exact.search(query, k=1)[0][0])
        exact_times.append(time.perf_counter() - t0)
    exact_p50, exact_p99 = percentiles(exact_times)
    sweeps = []
    for ef in efs:
        hnsw.ef = ef
        times, hits = [], 0
        for query, truth in zip(probe, truths, strict=True):
            t0 = time.perf_counter()
            found = hnsw.search(query, k=1)
            times.append(time.perf_counter() - t0)
            hits += bool(found) and found[0][0] == truth
        p50, p99 = percentiles(times)
        sweeps.append(
            {"ef": ef, "p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "recall_at_1": hits / queries}
        )
    return {
        "entries": n,
        "queries": queries,
        "exact": {
            "build_s": round(exact_build, 3),
            "p50_ms": round(exact_p50, 3),
            "p99_ms": round(exact_p99, 3),
        },
        "hnsw": {
            "build_s": round(hnsw_build, 1),
            "build_threads": os.cpu_count(),
            "m": m,
            "ef_construction": ef_construction,
            "search": sweeps,
        },
    }


def main() -> None:
    """Parses the options, runs every size and prints the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated gallery sizes")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ef", default="64,256", help="HNSW search breadths to measure (comma-separated)")
    parser.add_argument("--m", type=int, default=HNSW_M, help="HNSW links per node")
    parser.add_argument(
        "--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION, help="HNSW build breadth"
    )
    parser.add_argument("--quick", action="store_true", help="10k entries and 200 queries only")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.queries = "10000", 200
    rng = np.random.default_rng(7)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        console.log(f"size {size} …")
        efs = [int(e) for e in args.ef.split(",")]
        results.append(run_size(size, args.queries, efs, rng, args.m, args.ef_construction))
    json.dump(
        {"benchmark": "face_index", "dim": DIM, "exact_search_limit": EXACT_SEARCH_LIMIT, "results": results},
        sys.stdout,
        indent=2,
    )
    print()


if __name__ == "__main__":
    main()
