"""E-challan benchmark: issuing a backlog, rendering notices, and the citizen look-up at city scale.

1. Issue: a backlog of approved violations (default 100,000) on vehicles in an imported registry is
   issued by `challans.service.issue_pending` in batches, as `safecity challans issue-pending` does:
   owner look-up, fine, number allocation, the challan rows, the delivery outbox, the violations
   marked issued, demerit-point flags, one audit entry per batch, with the court-readiness gate on
   (each camera's calibration, road survey, clock check and signal source on record, as
   bench_enforcement.py sets them up; `held` counts what the gate kept back). Reports challans per
   second.
2. Notices: PDF notices (with an evidence photo and the QR verification code) rendered into the
   media store, reported separately as notices per second.
3. Look-up: the challans table filled to 10 million rows (bulk loaded, indexes rebuilt), then the
   citizen look-up by plate and CNIC is timed: the query alone (`find_for_citizen`) and the whole
   portal call (rate limit, access grant, audit entry).

    .venv/bin/python bench/bench_challans.py [--quick] [--backlog N] [--notices N] [--lookup-rows N]

Prints one JSON object on stdout; progress goes to stderr. Goals (issue 7): backlog under a minute,
look-ups under 50 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from sqlalchemy import insert, text

from bench_enforcement import T0, approved_violation, court_ready
from safecity.challans import notices_queue, service
from safecity.challans.models import Challan
from safecity.core.context import Context
from safecity.enforcement.models import Violation
from safecity.settings import Settings

err = Console(stderr=True)
CAMERAS = 200


def percentile(values: list[float], pct: float) -> float:
    """Returns the nearest-rank percentile of `values`."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def plate(i: int) -> str:
    return f"K{i:07d}"


def cnic(i: int) -> str:
    return f"42{i:011d}"


def registry_csv(vehicles: int) -> str:
    lines = ["plate,owner,cnic,address,make,colour"]
    lines += [f"{plate(i)},Owner {i},{cnic(i)},House {i} Karachi,Suzuki,white" for i in range(vehicles)]
    return "\n".join(lines) + "\n"


def seed_violations(ctx: Context, count: int, vehicles: int, photo: str) -> None:
    """Bulk-inserts `count` approved violations, as if reviewed and waiting to be issued, from cameras
    whose evidence is court-ready (calibration, road survey, clock check, signal source and hashed
    frames on record, as `bench_enforcement.py` sets them up), so the readiness gate lets them through.
    """
    cams = [f"cam-{i}" for i in range(CAMERAS)]
    with ctx.db.session() as session:
        calibrations = {cam: court_ready(session, ctx, cam) for cam in cams}
    now = datetime.now(UTC)
    batch = 20_000
    for start in range(0, count, batch):
        rows = [
            approved_violation(i, cams[i % CAMERAS], plate(i % vehicles), photo, calibrations, now=now)
            for i in range(start, min(count, start + batch))
        ]
        with ctx.db.session() as session:
            session.execute(insert(Violation), rows)


def bench_issue(ctx: Context, backlog: int, batch: int) -> dict[str, Any]:
    vehicles = max(1000, backlog // 2)
    photo = ctx.media.put_image(np.full((360, 640, 3), 100, np.uint8))
    err.print(f"issue: importing a registry of {vehicles:,} vehicles and {backlog:,} approved violations…")
    with ctx.db.session() as session:
        assert not service.import_registry(session, registry_csv(vehicles), actor="bench").errors
    seed_violations(ctx, backlog, vehicles, photo)
    issued = held = 0
    batches: list[float] = []
    started = time.perf_counter()
    while True:
        t = time.perf_counter()
        with ctx.db.session() as session:
            # An hour after the violations: their cameras' clock checks are still fresh.
            report = service.issue_pending(session, limit=batch, now=T0 + timedelta(hours=2))
        batches.append(time.perf_counter() - t)
        issued, held = issued + report.issued, held + report.held
        err.print(f"  issued {issued:,} ({report.issued / batches[-1]:,.0f}/s this batch)")
        if report.issued + report.held < batch:
            break
    total = time.perf_counter() - started
    return {
        "backlog": backlog,
        "issued": issued,
        "held": held,
        "batch": batch,
        "total_s": round(total, 2),
        "challans_per_s": round(issued / total, 1),
        "batch_median_s": round(statistics.median(batches), 3),
        "goal_total_s": 60,
    }


def bench_notices(ctx: Context, count: int) -> dict[str, Any]:
    err.print(f"notices: rendering {count} PDFs…")
    started = time.perf_counter()
    rendered = notices_queue.render_due_notices(ctx, count)
    total = time.perf_counter() - started
    sizes = []
    with ctx.db.session() as session:
        for challan in session.query(Challan).filter(Challan.notice_ref.is_not(None)).limit(20):
            sizes.append(ctx.media.path(challan.notice_ref or "").stat().st_size)
    return {
        "rendered": rendered,
        "total_s": round(total, 2),
        "notices_per_s": round(rendered / total, 1),
        "median_pdf_kb": round(statistics.median(sizes) / 1024, 1) if sizes else None,
    }


def bulk_load_challans(ctx: Context, rows: int, people: int) -> float:
    """Fills the challans table to `rows` with raw batched inserts, indexes rebuilt afterwards."""
    columns = (
        "id, number, violation_id, plate, cnic, owner, address, offence, camera_id, offence_at, issued_at, "
        "fine, points, status, paused_s, verification_code, evidence"
    )
    started = time.perf_counter()
    with ctx.db.engine.begin() as connection:
        indexes = connection.execute(
            text(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type='index' AND tbl_name='challans' AND sql IS NOT NULL"
            )
        ).all()
        for name, _ in indexes:
            connection.execute(text(f'DROP INDEX "{name}"'))
    raw = ctx.db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA cache_size=-1000000")
        cursor.execute("PRAGMA synchronous=OFF")
        sql = f"INSERT INTO challans ({columns}) VALUES ({', '.join('?' * 17)})"
        issued = T0.isoformat(sep=" ")
        batch = 100_000
        for start in range(0, rows, batch):
            values = []
            for i in range(start, min(rows, start + batch)):
                who = i % people
                values.append(
                    (
                        f"b{i:025d}",
                        f"BEN-2025-{i:09d}",
                        f"bv{i:024d}",
                        plate(who),
                        cnic(who),
                        "Owner",
                        "Karachi",
                        "speeding",
                        "cam-1",
                        issued,
                        issued,
                        10000,
                        6,
                        "unpaid",
                        0.0,
                        f"Z{i:09d}",
                        "{}",
                    )
                )
            cursor.executemany(sql, values)
            raw.commit()
            if (start // batch) % 10 == 0:
                err.print(
                    f"  loaded {start + len(values):,} challans ({time.perf_counter() - started:,.0f} s)"
                )
        err.print("  rebuilding indexes…")
        for _, sql_text in indexes:
            cursor.execute(sql_text)
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def bench_lookup(ctx: Context, rows: int, queries: int) -> dict[str, Any]:
    people = max(1, rows // 3)  # about three challans per owner, as in a real ledger
    err.print(f"look-up: loading {rows:,} challans for {people:,} owners…")
    load_s = bulk_load_challans(ctx, rows, people)
    rng = random.Random(7)
    query_ms: list[float] = []
    found = 0
    with ctx.db.session() as session:
        for _ in range(queries):
            who = rng.randrange(people)
            t = time.perf_counter()
            found += len(service.find_for_citizen(session, plate=plate(who), cnic=cnic(who)))
            query_ms.append((time.perf_counter() - t) * 1000)
        miss_ms = []
        for _ in range(queries):
            who = rng.randrange(people)
            t = time.perf_counter()
            service.find_for_citizen(session, plate=plate(who), cnic=cnic(who + 1))
            miss_ms.append((time.perf_counter() - t) * 1000)
    portal_ms = []
    for n in range(min(queries, 200)):
        who = rng.randrange(people)
        t = time.perf_counter()
        with ctx.db.session() as session:
            service.portal_lookup(
                session, plate=plate(who), cnic=cnic(who), client=f"10.0.{n // 250}.{n % 250}"
            )
        portal_ms.append((time.perf_counter() - t) * 1000)
    return {
        "challans_on_record": rows,
        "load_s": round(load_s, 1),
        "queries": queries,
        "challans_found_per_query": round(found / queries, 2),
        "query_median_ms": round(statistics.median(query_ms), 3),
        "query_p95_ms": round(percentile(query_ms, 95), 3),
        "no_match_median_ms": round(statistics.median(miss_ms), 3),
        "portal_call_median_ms": round(statistics.median(portal_ms), 2),
        "portal_call_p95_ms": round(percentile(portal_ms, 95), 2),
        "goal_ms": 50,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes for a fast check")
    parser.add_argument("--backlog", type=int, default=None, help="approved violations to issue (100,000)")
    parser.add_argument("--batch", type=int, default=5_000, help="violations per issue transaction")
    parser.add_argument("--notices", type=int, default=None, help="notices to render (200)")
    parser.add_argument(
        "--lookup-rows", type=int, default=None, help="challans on record for look-ups (10,000,000)"
    )
    parser.add_argument("--queries", type=int, default=500, help="look-ups to time")
    parser.add_argument("--skip-lookup", action="store_true", help="skip the 10-million-row part")
    args = parser.parse_args()
    backlog = args.backlog or (10_000 if args.quick else 100_000)
    notices = args.notices or (30 if args.quick else 200)
    lookup_rows = args.lookup_rows or (300_000 if args.quick else 10_000_000)
    result: dict[str, Any] = {"benchmark": "challans", "quick": args.quick, "database": "sqlite"}
    with tempfile.TemporaryDirectory(prefix="bench-challans-") as tmp:
        ctx = Context.create(Settings(data_dir=Path(tmp) / "issue"))
        result["issue"] = bench_issue(ctx, backlog, args.batch)
        result["notices"] = bench_notices(ctx, notices)
        ctx.db.dispose()
        if not args.skip_lookup:
            ctx = Context.create(Settings(data_dir=Path(tmp) / "lookup"))
            result["lookup"] = bench_lookup(ctx, lookup_rows, args.queries)
            ctx.db.dispose()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
