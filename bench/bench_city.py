"""City-scale benchmark: mixed events through NATS JetStream and PostgreSQL, at rising rates and under faults.

Runs the city mode as an operator does, on this machine, against its own PostgreSQL and NATS
(bench/city_harness.py starts them on free ports, so they can be killed): N `safecity serve
--no-workers` processes and, for the worker fault, M `safecity worker` processes. A load generator in
this process publishes the project's own events through the project's own bus API
(`NatsBus.publish`, many in flight): per 100 events, 89 plate reads of registered vehicles, 1 read of
a hot-listed plate (a plate and camera never paired before, so each must raise its own alert) and 10
speeding `ViolationCandidate`s (each must become a violation, an auto-issued challan and an SMS at
the fake gateway). Every event's `at` is its publish time, so `plate_reads.stored_at - at` and
`violations.created_at - at` are the bus→database latency.

1. Rates: for each target rate (quick: 25 … 1000, 1200, 1500/s for 10 s each; full: up to 2000/s for
   60 s), the achieved publish rate, count in vs count out after a drain deadline, p50/p95 latency,
   and CPU per event of the serve processes and of PostgreSQL (/proc utime+stime, children
   included). The ladder stops at the first rate not sustained (count in == count out and
   p95 < 1 s).
2. Faults, under steady load: two serves given the same violation at the same instant (different
   keys, same offence; and the same key twice), kill -9 of a serve (restarted), kill -9 of a worker
   (failover_s: until the lease bucket shows its cameras held by another), kill -9 of NATS
   (restarted on its store), and a PostgreSQL outage (`--pg-outage-s`, default 60). After each: lost
   (acknowledged events whose effect never appeared once JetStream held nothing more for the serves;
   effects still missing at a drain deadline with events queued are reported as unsettled instead),
   duplicate alerts (more than one per hot-listed plate and camera), duplicate challans (more than
   one per offence) and duplicate notices (more than one SMS per challan at the fake gateway, a
   repeated idempotency key counting once). SMS are counted last, once the notice queue of the whole
   run has emptied or stalled (quick: at most 300 s more), since notices may lag the challans they
   follow. The top-level figures add up every rate step and fault.

    .venv/bin/python bench/bench_city.py [--quick] [--serves 2] [--workers 2] [--notice-workers 1]
                                         [--rates 25,50,100]
                                         [--step-s 10] [--pg-outage-s 60] [--fault-rate 20] [--keep]

Prints one JSON object on stdout; progress goes to stderr. Goals (issue 15), on 2 cores: at least
1,000 mixed events/s sustained, lost 0 and duplicates 0 in every fault, failover within 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console

import safecity
from city_harness import (
    CityCluster,
    ClusterStatusUnavailable,
    EventMix,
    Fleet,
    ManagedProcess,
    MissingBinaries,
    Phase,
    Progress,
    Publisher,
    SeedPlan,
    StartupFailed,
    find_binaries,
    terminate_on_sigterm,
)
from safecity.core.bus.kv import KeyValue, open_kv
from safecity.core.clock import utcnow
from safecity.settings import Settings
from safecity.worker.leases import read_cluster

err = Console(stderr=True)

QUICK_RATES = [25, 50, 100, 200, 400, 700, 1000, 1200, 1500]
FULL_RATES = [25, 50, 75, 100, 150, 200, 300, 400, 500, 700, 1000, 1250, 1500, 2000]
SUSTAINED_P95_S = 1.0


def cpu_delta(before: dict[str, float], after: dict[str, float], events: int) -> dict[str, float | None]:
    """CPU milliseconds per event of each part between two samples."""
    return {
        part: (round((after[part] - before[part]) * 1000 / events, 2) if events else None) for part in before
    }


def verdict(drained: dict[str, Any], account: dict[str, Any], notices: dict[str, Any]) -> dict[str, int]:
    """Lost effects are those missing once nothing more could come; at a deadline they may be late.

    Reads, alerts, violations and challans settle when the phase's drain did; SMS notices when the
    notice queue of the whole run did (`notices`, from `CityCluster.wait_notices`).
    """
    core = int(account["lost_events"])
    sms = int(account["lost_notices"] or 0)
    core_settled = drained["ended"] in ("complete", "nothing pending")
    sms_settled = notices["ended"] != "deadline"
    return {
        "lost": (core if core_settled else 0) + (sms if sms_settled else 0),
        "unsettled": (0 if core_settled else core) + (0 if sms_settled else sms),
    }


def held_by(status: dict[str, Any], pid: int) -> tuple[str | None, list[str]]:
    """The id of the worker process `pid` in a cluster status, and the cameras it holds."""
    entry = next((w for w in status.get("workers", []) if w.get("pid") == pid), None)
    if entry is None:
        return None, []
    held = {c.get("id") for c in status.get("cameras", []) if c.get("holder") == entry.get("id")}
    return entry.get("id"), sorted(str(c) for c in held | set(entry.get("cameras") or []))


def plan_seed(args: argparse.Namespace) -> SeedPlan:
    """Sizes the registry so that every offence has a vehicle of its own and reads rarely repeat."""
    ladder = sum(args.rates) * args.step_s
    faults = 200 * (4 * args.fault_s + args.pg_outage_s + 20)
    events = ladder + faults
    return SeedPlan(
        anpr_cameras=60,
        fixed_cameras=4,
        ordinary_plates=min(200_000, max(20_000, int(events * 0.5))),
        offence_plates=int(events * 0.1 * 1.1) + 1_000,
        hot_plates=300,
    )


class Bench:
    """One run: the city, its load generator and the results gathered so far."""

    def __init__(self, city: CityCluster, fleet: Fleet, args: argparse.Namespace) -> None:
        self.city, self.fleet, self.args = city, fleet, args
        self.mix = EventMix(fleet)
        self.run_id = uuid.uuid4().hex[:6]
        self.pub: Publisher
        self.records: list[tuple[dict[str, Any], Phase]] = []
        # The city's processes run with the default lease settings (city_harness sets none).
        self.lease_bucket: str = Settings.model_fields["lease_bucket"].default
        self.lease_ttl_s: float = Settings.model_fields["lease_ttl_s"].default

    def phase(self, label: str) -> Phase:
        return Phase(f"{self.run_id}-{label}")

    def show(self, label: str) -> Callable[[Progress | None, int | None], None]:
        def show(progress: Progress | None, pending: int | None) -> None:
            if progress is None:
                err.print(f"  {label}: database unreachable, NATS pending {pending}")
            else:
                err.print(
                    f"  {label}: reads {progress.reads:,}  alerts {progress.alerts}  violations "
                    f"{progress.violations:,}  challans {progress.challans:,}  pending {pending}",
                    highlight=False,
                )

        return show

    async def warm_up(self) -> None:
        phase = self.phase("warm")
        await self.pub.at_rate(phase, lambda n: self.mix.mixed(phase.name, n), rate=20, seconds=3)
        await self.city.drain(self.pub, phase, deadline_s=30, quiet_s=2)

    async def rate_step(self, rate: int) -> dict[str, Any]:
        args = self.args
        phase = self.phase(f"rate{rate}")
        err.rule(f"{rate} events/s for {args.step_s:.0f} s")
        cpu0, t0 = self.city.cpu(), time.monotonic()
        await self.pub.at_rate(phase, lambda n: self.mix.mixed(phase.name, n), rate=rate, seconds=args.step_s)
        publish_s = phase.ended - phase.started
        drained = await self.city.drain(
            self.pub,
            phase,
            deadline_s=args.drain_s,
            quiet_s=3,
            stall_s=args.drain_s,
            on_poll=self.show("drain"),
        )
        cpu1 = self.city.cpu()
        account = await asyncio.to_thread(self.city.account, phase)
        achieved = phase.acked / publish_s if publish_s else 0.0
        p95 = account["latency_s"]["p95"]
        sustained = (
            account["complete"] and p95 is not None and p95 < SUSTAINED_P95_S and achieved >= 0.9 * rate
        )
        step = {
            "target_per_s": rate,
            "achieved_per_s": round(achieved, 1),
            "publish_s": round(publish_s, 1),
            "wall_s": round(time.monotonic() - t0, 1),
            **drained,
            **account,
            "cpu_ms_per_event": cpu_delta(cpu0, cpu1, phase.acked),
            "sustained": sustained,
        }
        self.records.append((step, phase))
        err.log(
            f"{rate}/s: published {achieved:.0f}/s, complete={account['complete']}, p95 {p95} s, "
            f"serve {step['cpu_ms_per_event']['serve']} ms/event, "
            f"postgres {step['cpu_ms_per_event']['postgres']} ms/event → "
            + ("sustained" if sustained else "NOT sustained")
        )
        return step

    async def under_load(
        self, label: str, rate: float, seconds: float, fault: Callable[[], Awaitable[dict[str, Any]]]
    ) -> tuple[Phase, dict[str, Any]]:
        """Publishes the mix at `rate` for `seconds` while `fault` runs; returns the phase and its notes."""
        phase = self.phase(label)
        _, notes = await asyncio.gather(
            self.pub.at_rate(phase, lambda n: self.mix.mixed(phase.name, n), rate=rate, seconds=seconds),
            fault(),
        )
        return phase, notes

    async def settle(
        self, phase: Phase, label: str, deadline_s: float, notes: dict[str, Any]
    ) -> dict[str, Any]:
        """Drains a fault's phase and mends the city; returns the fault's figures (SMS counted at the end)."""
        drained = await self.city.drain(
            self.pub, phase, deadline_s=deadline_s, quiet_s=10, stall_s=45, on_poll=self.show(label)
        )
        account = await asyncio.to_thread(self.city.account, phase)
        result = {**notes, **drained, **account, "serves_dead_at_end": self.city.dead_serves()}
        self.records.append((result, phase))
        err.log(
            f"{label}: {account['lost_events']} of {account['in']['events']} events with an effect missing, "
            f"duplicates {account['duplicates']}, drain {drained['drain_s']} s ({drained['ended']})"
        )
        await asyncio.to_thread(self.recover)
        return result

    async def count_notices(self) -> dict[str, Any]:
        """Waits for the notice queue of the whole run, then counts every phase again, SMS included."""
        err.rule("notices")
        notices = await self.city.wait_notices(deadline_s=self.args.notices_s)
        err.log(f"notices: {notices}")
        for result, phase in self.records:
            account = await asyncio.to_thread(self.city.account, phase)
            for key in ("out", "missing", "lost_events", "lost_notices", "duplicates"):
                result[key] = account[key]
            result.update(verdict(result, account, notices))
        return notices

    def recover(self) -> None:
        """Brings back whatever a fault left down, so the next fault starts from a whole city."""
        if not self.city.pg.running:
            self.city.pg.start()
        if not self.city.nats.alive:
            self.city.nats.start()
        self.city.ensure_serves(self.args.serves)

    # faults

    async def same_violation(self) -> dict[str, Any]:
        err.rule("two serves given the same violation at the same instant")
        phase = self.phase("same")
        items: list[tuple[str, Any]] = []
        pairs, same_key, hot_pairs = 40, 20, 10
        for _ in range(pairs):
            plate, at = self.mix.offence_plate(), utcnow()
            items.append(("offence", self.mix.speeding(phase.name, plate=plate, at=at, suffix="a")))
            items.append(("offence", self.mix.speeding(phase.name, plate=plate, at=at, suffix="b")))
        for _ in range(same_key):
            event = self.mix.speeding(phase.name)
            items += [("offence", event), ("offence", event.model_copy())]
        for _ in range(hot_pairs):
            combo = self.mix.hot_combo()
            items.append(("hot", self.mix.hot_read(phase.name, combo=combo, suffix="a")))
            items.append(("hot", self.mix.hot_read(phase.name, combo=combo, suffix="b")))
        await self.pub.all_at_once(phase, items)
        notes = {
            "offences_with_two_keys": pairs,
            "offences_with_one_key_published_twice": same_key,
            "hotlist_sightings_with_two_keys": hot_pairs,
        }
        return await self.settle(phase, "same violation", 60, notes)

    async def serve_kill(self, rate: float) -> dict[str, Any]:
        err.rule(f"kill -9 of a serve under {rate:.0f} events/s")
        seconds = self.args.fault_s

        async def fault() -> dict[str, Any]:
            await asyncio.sleep(seconds / 3)
            serve = self.city.serves[0]
            pid = serve.pid
            await asyncio.to_thread(serve.kill)
            err.log(f"killed {serve.name} (kill -9 of pid {pid}); restarting it")
            restart_s = await asyncio.to_thread(self.city.restart_serve, serve)
            return {"killed": serve.name, "restart_s": round(restart_s, 1)}

        phase, notes = await self.under_load("serve-kill", rate, seconds, fault)
        return await self.settle(phase, "serve kill", 120, {"load_per_s": rate, **notes})

    async def status(self) -> tuple[dict[str, Any] | None, str | None]:
        """`safecity cluster status --json` of the city, or why it could not be read."""
        try:
            return await asyncio.to_thread(self.city.cluster_status), None
        except ClusterStatusUnavailable as exc:
            return None, str(exc)

    async def holders(self, kv: KeyValue, cameras: list[str]) -> dict[str, str | None]:
        """Each camera's live holder, read from the lease bucket as the workers write it."""
        view = await read_cluster(kv, self.lease_ttl_s)
        return {camera_id: view.holder(camera_id) for camera_id in cameras}

    async def failover(self, workers: list[ManagedProcess]) -> dict[str, Any]:
        """Kills a worker holding cameras and times until every one of them is held by another.

        Who holds what is read from the lease bucket in this process every 0.1 s (the records
        `safecity cluster status` shows), so `failover_s` is exact to about that; the status
        command is run once before the kill and once after, to show the hand-over as an operator
        sees it.
        """
        victim = workers[0]
        notes: dict[str, Any] = {"workers": len(workers), "failover_s": None}
        deadline = time.monotonic() + self.args.worker_settle_s
        dead_id: str | None = None
        cameras: list[str] = []
        while not cameras and time.monotonic() < deadline:
            status, problem = await self.status()
            if status is None:
                notes["failover_note"] = f"failover not measurable: {problem}"
                break
            dead_id, cameras = held_by(status, victim.pid)
            notes["status_before"] = status
            if not cameras:
                await asyncio.sleep(1.0)
        kv = await open_kv(self.pub.bus, self.lease_bucket)
        await asyncio.to_thread(victim.kill)
        killed = time.monotonic()
        err.log(f"killed {victim.name} (kill -9 of pid {victim.pid}), which held {cameras}")
        if dead_id is None or not cameras:
            notes.setdefault("failover_note", f"{victim.name} held no cameras in `safecity cluster status`")
            return notes
        notes["victim"], notes["victim_cameras"] = dead_id, cameras
        while time.monotonic() - killed < self.args.failover_limit_s:
            holders = await self.holders(kv, cameras)
            if all(holders.get(c) not in (None, dead_id) for c in cameras):
                notes["failover_s"] = round(time.monotonic() - killed, 2)
                notes["new_holders"] = holders
                status, problem = await self.status()
                notes["status_after"] = status if status is not None else problem
                return notes
            await asyncio.sleep(0.1)
        notes["failover_note"] = (
            f"{dead_id}'s cameras were not held by another worker within {self.args.failover_limit_s:.0f} s"
        )
        return notes

    async def worker_kill(self, rate: float) -> dict[str, Any]:
        err.rule(f"kill -9 of a worker under {rate:.0f} events/s")
        workers = await asyncio.to_thread(self.city.start_workers, self.args.workers)
        try:
            phase, notes = await self.under_load(
                "worker-kill",
                rate,
                self.args.fault_s + 10,
                lambda: self.failover(workers),
            )
        finally:
            await asyncio.to_thread(self.city.stop_workers)
        return await self.settle(phase, "worker kill", 120, {"load_per_s": rate, **notes})

    async def nats_kill(self, rate: float) -> dict[str, Any]:
        err.rule(f"kill -9 of NATS under {rate:.0f} events/s")
        seconds = self.args.fault_s

        async def fault() -> dict[str, Any]:
            await asyncio.sleep(seconds / 3)
            await asyncio.to_thread(self.city.nats.kill)
            down = time.monotonic()
            err.log("killed nats-server; restarting it on the same store in 3 s")
            await asyncio.sleep(3)
            await asyncio.to_thread(self.city.nats.start)
            return {"nats_down_s": round(time.monotonic() - down, 1)}

        phase, notes = await self.under_load("nats-kill", rate, seconds, fault)
        refused = {"publishes_refused": sum(phase.failed.values()), "publish_errors": phase.errors}
        return await self.settle(phase, "NATS kill", 150, {"load_per_s": rate, **notes, **refused})

    async def pg_outage(self, rate: float) -> dict[str, Any]:
        outage = self.args.pg_outage_s
        err.rule(f"PostgreSQL down for {outage:.0f} s under {rate:.0f} events/s")
        before, after = 5.0, 10.0

        async def fault() -> dict[str, Any]:
            await asyncio.sleep(before)
            await asyncio.to_thread(self.city.pg.stop, "immediate")
            down = time.monotonic()
            err.log(f"PostgreSQL stopped (immediate); starting it again in {outage:.0f} s")
            await asyncio.sleep(outage)
            await asyncio.to_thread(self.city.pg.start)
            return {"postgres_down_s": round(time.monotonic() - down, 1)}

        phase, notes = await self.under_load("pg-outage", rate, before + outage + after, fault)
        return await self.settle(phase, "PostgreSQL outage", 120 + outage, {"load_per_s": rate, **notes})

    async def guarded(self, name: str, run: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Runs one fault; a failure of the harness itself is reported in place and the next fault goes on."""
        try:
            return await run()
        except Exception as exc:
            err.log(f"[red]{name} could not be run: {type(exc).__name__}: {exc}")
            await asyncio.to_thread(self.recover)
            return {"error": f"{type(exc).__name__}: {exc}"[:2000]}

    async def run(self) -> dict[str, Any]:
        args = self.args
        async with Publisher(self.city.nats.url) as pub:
            self.pub = pub
            await self.warm_up()
            steps: list[dict[str, Any]] = []
            for rate in args.rates:
                step = await self.rate_step(rate)
                steps.append(step)
                if not step["sustained"]:
                    break
            backlog = await self.city.wait_idle(pub, deadline_s=args.backlog_s)
            sustained = [s for s in steps if s["sustained"]]
            best = sustained[-1] if sustained else None
            fault_rate = args.fault_rate or max(
                10, min(args.max_fault_rate, round((best["achieved_per_s"] if best else 0) / 2))
            )
            faults: dict[str, Any] = {}
            if not args.skip_faults:
                faults["same_violation"] = await self.guarded("same violation", self.same_violation)
                faults["serve_kill"] = await self.guarded("serve kill", lambda: self.serve_kill(fault_rate))
                faults["worker_kill"] = await self.guarded(
                    "worker kill", lambda: self.worker_kill(fault_rate)
                )
                faults["nats_kill"] = await self.guarded("NATS kill", lambda: self.nats_kill(fault_rate))
                faults["pg_outage"] = await self.guarded(
                    "PostgreSQL outage", lambda: self.pg_outage(fault_rate)
                )
            notices = await self.count_notices()
        reference = best or (steps[0] if steps else None)
        # Every phase counts: a duplicate or a loss at a plain rate step is as real as one under a fault.
        measured = [*steps, *(f for f in faults.values() if "error" not in f)]

        def total(key: str) -> int:
            return sum(int(f["duplicates"][key]) for f in measured)

        worker = faults.get("worker_kill", {})
        return {
            "sustained_events_per_s": best["achieved_per_s"] if best else 0,
            "sustained_target_per_s": best["target_per_s"] if best else 0,
            "p95_s": reference["latency_s"]["p95"] if reference else None,
            "lost": sum(int(f["lost"]) for f in measured),
            "unsettled": sum(int(f["unsettled"]) for f in measured),
            "duplicate_alerts": total("alerts"),
            "duplicate_challans": total("challans"),
            "duplicate_notices": total("notices"),
            "failover_s": worker.get("failover_s"),
            "failover_note": worker.get("failover_note") or worker.get("error"),
            "cpu_ms_per_event": (
                {k: reference["cpu_ms_per_event"][k] for k in ("serve", "postgres", "nats", "load_generator")}
                if reference
                else None
            ),
            "cpu_ms_per_event_at": reference["target_per_s"] if reference else None,
            "rates": steps,
            "backlog_after_rates": backlog,
            "notices": notices,
            "fault_load_per_s": fault_rate,
            "faults": faults,
        }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short steps and faults (about 5-8 minutes)")
    parser.add_argument("--serves", type=int, default=2, help="safecity serve --no-workers processes")
    parser.add_argument("--workers", type=int, default=2, help="safecity worker processes (worker fault)")
    parser.add_argument(
        "--notice-workers",
        type=int,
        default=1,
        help="safecity challans notice-worker processes; 0 renders and sends notices inside the serves",
    )
    parser.add_argument("--rates", type=lambda s: [int(r) for r in s.split(",")], help="target events/s")
    parser.add_argument("--step-s", type=float, help="seconds of load at each rate")
    parser.add_argument("--drain-s", type=float, help="drain deadline after each rate step")
    parser.add_argument("--pg-outage-s", type=float, default=60.0, help="PostgreSQL outage length")
    parser.add_argument(
        "--fault-rate", type=float, help="events/s during faults (default: half the sustained)"
    )
    parser.add_argument("--fault-s", type=float, help="seconds of load around each kill")
    parser.add_argument("--skip-faults", action="store_true", help="only the rate ladder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database)")
    args = parser.parse_args()
    args.rates = args.rates or (QUICK_RATES if args.quick else FULL_RATES)
    args.step_s = args.step_s or (10.0 if args.quick else 60.0)
    args.drain_s = args.drain_s or (15.0 if args.quick else 60.0)
    args.fault_s = args.fault_s or (15.0 if args.quick else 40.0)
    args.backlog_s = 120.0 if args.quick else 600.0
    args.notices_s = 300.0 if args.quick else 900.0
    args.max_fault_rate = 100 if args.quick else 200
    args.worker_settle_s = 30.0
    args.failover_limit_s = 30.0 if args.quick else 60.0
    return args


def main() -> None:
    args = parse_args()
    # The load generator's own reconnect errors during the NATS fault are expected: not a traceback each.
    logging.getLogger("nats.aio.client").setLevel(logging.CRITICAL)
    started = time.monotonic()
    load_before = os.getloadavg()
    try:
        binaries = find_binaries()
    except MissingBinaries as exc:
        err.print(f"[yellow]skipped:[/] {exc}")
        json.dump({"bench": "city", "skipped": str(exc)}, sys.stdout)
        sys.stdout.write("\n")
        return
    plan = plan_seed(args)
    with terminate_on_sigterm(), CityCluster(binaries, keep=args.keep) as city:
        err.log(f"private PostgreSQL on {city.pg.port}, NATS on {city.nats.port}, folder {city.root}")
        with err.status(
            f"seeding {plan.ordinary_plates + plan.offence_plates + plan.hot_plates:,} vehicles…"
        ):
            fleet = city.seed(plan)
        try:
            city.notices_apart = args.notice_workers > 0
            with err.status(f"starting {args.serves} serve processes…"):
                starts = city.start_serves(args.serves)
            city.start_notice_workers(args.notice_workers)
            err.log(f"serves healthy after {', '.join(f'{s:.1f} s' for s in starts)}")
            result = asyncio.run(Bench(city, fleet, args).run())
        except StartupFailed as exc:
            err.print(f"[red]a service did not start:[/] {exc}")
            raise SystemExit(1) from exc
        except BaseException:
            err.print(city.logs_of_serves())
            raise
    result = {
        "bench": "city",
        **result,
        "setup": {
            "serve_processes": args.serves,
            "notice_worker_processes": args.notice_workers,
            "worker_processes_in_worker_fault": args.workers,
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "note": "one machine shared by the services, the load generator and other work",
            "mix": "89% plate reads, 1% hot-listed reads, 10% speeding candidates",
            "step_s": args.step_s,
            "pg_outage_s": args.pg_outage_s,
            "code": str(Path(safecity.__file__).resolve().parent),
            "seed": plan.__dict__,
        },
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
