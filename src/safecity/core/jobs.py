"""Periodic jobs (purges, expiry, retention, sweeps, catch-up), run by one process of the city at a time.

Every domain schedules its jobs with `ctx.jobs.every(name, seconds, fn)`. A *leased* job (the
default) runs only in the process holding the scheduler lease, a row in `job_leases` that the
holder renews every few seconds; when it stops renewing (the process died) another process takes
the lease within `lease_s` and carries on from the schedule kept in `job_runs`. Embedded, the one
process always holds it. An *unleased* job runs in every process (work shared through row claims,
such as sending queued notices). A job that fails is logged, counted and tried again at its next
turn; a job never runs twice at once in one process, and start-up never waits for one.

Work that must never run twice at once anywhere in the city (a sweep started by hand while the
scheduled one runs) takes a run lease of its own: `with exclusive(db, "media.sweep") as lease:`
raises Conflict, naming the holder, while another process holds it; `lease.renew()` keeps it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, Text, case, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from safecity.core.clock import format_moment, utcnow
from safecity.core.db import Base, Database
from safecity.core.errors import Conflict
from safecity.core.metrics import JOB_RUNS

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"


class JobLease(Base):
    """Who runs the city's periodic jobs, until when (renewed by the holder while it lives)."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]
    since: Mapped[datetime] = mapped_column(default=utcnow)


class JobRun(Base):
    """When a leased job last ran and how it ended, so a new lease holder keeps the schedule."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(default=0)


JobFn = Callable[[], Any]


@dataclass
class Job:
    """One periodic job of this process."""

    name: str
    seconds: float
    fn: JobFn
    leased: bool
    at_start: bool = False
    due: float = 0.0
    running: bool = False
    runs: int = 0
    failures: int = 0


def process_id() -> str:
    """Names this process uniquely across the city: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Jobs:
    """The periodic jobs of one process and the scheduler lease that elects who runs the leased ones."""

    def __init__(self, db: Database, *, lease_s: float = 15.0, tick_s: float = 0.5) -> None:
        self.db = db
        self.lease_s = lease_s
        self.tick_s = tick_s
        self.holder = process_id()
        self.jobs: dict[str, Job] = {}
        self.leader = False
        self._lease_checked = 0.0
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def every(
        self, name: str, seconds: float, fn: JobFn, *, leased: bool = True, at_start: bool = False
    ) -> None:
        """Runs `fn` every `seconds` (`leased`: only in the lease holder; `at_start`: first thing too)."""
        if name in self.jobs:
            return  # a domain registered twice (two apps on one context in tests): one schedule
        due = 0.0 if at_start else time.monotonic() + seconds
        self.jobs[name] = Job(name, seconds, fn, leased, at_start, due=due)

    async def start(self) -> None:
        """Starts the schedule in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="jobs")

    async def stop(self) -> None:
        """Stops the schedule and hands the lease back, so another process takes over at once."""
        tasks = [t for t in [self._task, *self._running] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        self._running.clear()
        if self.leader:
            try:
                await asyncio.to_thread(self._release)
            except Exception as exc:  # the database is away: the lease simply expires
                log.debug("could not hand the job lease back: %s", exc)
            self.leader = False

    async def run_now(self, name: str) -> Any:
        """Runs one job at once in this process (operators' commands and tests)."""
        return await _call(self.jobs[name].fn)

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            if (
                any(job.leased for job in self.jobs.values())
                and now - self._lease_checked >= self.lease_s / 3
            ):
                self._lease_checked = now
                await self._check_lease()
            for job in self.jobs.values():
                if job.running or now < job.due or (job.leased and not self.leader):
                    continue
                job.running = True
                task = asyncio.create_task(self._run_job(job), name=f"job:{job.name}")
                self._running.add(task)
                task.add_done_callback(self._running.discard)
            await asyncio.sleep(self.tick_s)

    async def _check_lease(self) -> None:
        try:
            held = await asyncio.to_thread(self._hold)
        except Exception as exc:  # the database is away: stop running leased jobs until it is back
            log.warning("job lease check failed: %s", str(exc).splitlines()[0][:200])
            held = False
        if held and not self.leader:
            log.info("this process (%s) now runs the periodic jobs", self.holder)
            await asyncio.to_thread(self._resume_schedule)
        elif not held and self.leader:
            log.warning("this process (%s) no longer runs the periodic jobs", self.holder)
        self.leader = held

    async def _run_job(self, job: Job) -> None:
        started = utcnow()
        error: str | None = None
        try:
            await _call(job.fn)
            JOB_RUNS.labels(job.name, "ok").inc()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the next turn tries again
            error = f"{type(exc).__name__}: {exc}"[:2000]
            job.failures += 1
            JOB_RUNS.labels(job.name, "failed").inc()
            log.warning("job %s failed: %s", job.name, error.splitlines()[0])
        finally:
            job.runs += 1
            job.due = time.monotonic() + job.seconds
            job.running = False
        if job.leased:
            try:
                await asyncio.to_thread(self._record_run, job.name, started, error)
            except Exception as exc:
                log.debug("could not record the run of %s: %s", job.name, exc)

    # --- the lease and the schedule in the database ------------------------------------------------

    def _hold(self) -> bool:
        """Takes or renews the scheduler lease; returns whether this process holds it now."""
        return take_lease(self.db, SCHEDULER, self.holder, self.lease_s)

    def _release(self) -> None:
        release_lease(self.db, SCHEDULER, self.holder)

    def _resume_schedule(self) -> None:
        """Sets each leased job's next turn from when it last ran anywhere in the city."""
        with self.db.session() as session:
            last = {r.name: r.started_at for r in session.scalars(select(JobRun))}
        now_wall = utcnow()
        now = time.monotonic()
        for job in self.jobs.values():
            if job.leased and job.name in last and not (job.at_start and job.runs == 0):
                waited = (now_wall - last[job.name]).total_seconds()
                job.due = now + max(0.0, job.seconds - waited)

    def _record_run(self, name: str, started: datetime, error: str | None) -> None:
        with self.db.session() as session:
            row = session.get(JobRun, name)
            if row is None:
                session.add(
                    JobRun(
                        name=name,
                        holder=self.holder,
                        started_at=started,
                        finished_at=utcnow(),
                        error=error,
                        runs=1,
                    )
                )
            else:
                row.holder, row.started_at, row.finished_at = self.holder, started, utcnow()
                row.error, row.runs = error, row.runs + 1

    def status(self) -> dict[str, Any]:
        """Returns who runs the jobs and how each job of this process did (for /metrics and the CLI)."""
        return {
            "holder": self.holder,
            "leader": self.leader,
            "jobs": {
                j.name: {"every_s": j.seconds, "leased": j.leased, "runs": j.runs, "failures": j.failures}
                for j in self.jobs.values()
            },
        }


def take_lease(db: Database, name: str, holder: str, lease_s: float) -> bool:
    """Takes or renews the lease `name` for `holder`; returns whether `holder` holds it now."""
    now = utcnow()
    expires = now + timedelta(seconds=lease_s)
    with db.session() as session:
        renewed = session.execute(
            update(JobLease)
            .where(JobLease.name == name, (JobLease.holder == holder) | (JobLease.expires_at < now))
            .values(
                holder=holder,
                expires_at=expires,
                since=case((JobLease.holder == holder, JobLease.since), else_=now),
            )
            .execution_options(synchronize_session=False)
        )
        if renewed.rowcount:  # type: ignore[attr-defined]
            return True
        postgres = session.get_bind().dialect.name == "postgresql"
        stmt = (pg_insert if postgres else sqlite_insert)(JobLease).values(
            name=name, holder=holder, expires_at=expires, since=now
        )
        inserted = session.scalar(
            stmt.on_conflict_do_nothing(index_elements=["name"]).returning(JobLease.name)
        )
        return inserted is not None


def release_lease(db: Database, name: str, holder: str) -> None:
    """Hands the lease `name` back (if `holder` holds it), so another process may take it at once."""
    with db.session() as session:
        session.execute(
            update(JobLease)
            .where(JobLease.name == name, JobLease.holder == holder)
            .values(expires_at=utcnow() - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )


@dataclass
class RunLease:
    """A run lease held by this process: `renew()` it more often than every `lease_s` seconds."""

    db: Database
    name: str
    holder: str
    lease_s: float

    def renew(self) -> None:
        """Extends the lease; raises Conflict when it was lost (this process stalled past its end)."""
        if not take_lease(self.db, self.name, self.holder, self.lease_s):
            raise Conflict(f"{self.name} lost its run lease to another process", hint="it carries on there")


@contextmanager
def exclusive(db: Database, name: str, *, lease_s: float = 120.0) -> Iterator[RunLease]:
    """Runs a block in one process of the city at a time; raises Conflict while another holds `name`."""
    lease = RunLease(db, f"run:{name}", process_id(), lease_s)
    if not take_lease(db, lease.name, lease.holder, lease_s):
        with db.session() as session:
            row = session.get(JobLease, lease.name)
            who = f"{row.holder} since {format_moment(row.since, 'seconds')}" if row else "another process"
        raise Conflict(f"{name} is already running ({who})", hint="wait for it to finish, then run it again")
    try:
        yield lease
    finally:
        try:
            release_lease(db, lease.name, lease.holder)
        except Exception as exc:  # the database is away: the lease simply expires
            log.debug("could not hand %s back: %s", lease.name, exc)


async def _call(fn: JobFn) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn()
    return await asyncio.to_thread(fn)
