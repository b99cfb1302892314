"""A private city-scale SafeCity on one machine, for the city benchmark and the fault tests.

`CityCluster` starts its own PostgreSQL cluster (`initdb` into a temporary folder, trust auth, its own
port and socket folder) and its own `nats-server -js` on free ports, so they can be killed and
restarted without touching the shared services; a fake SMS gateway that counts posts per challan; and
then, as an operator runs the city mode, `safecity serve --no-workers` and `safecity worker`
processes with `SAFECITY_BUS=nats`, `SAFECITY_NATS_URL`, `SAFECITY_DATABASE_URL` and one shared
`SAFECITY_DATA_DIR`. It seeds through the project's own services (cameras, vehicle registry, hot
list, enforcement policy, fine schedule with the SMS gateway), publishes the project's own events
through the project's own bus (`NatsBus.publish`), and counts what came out in the database.

    with CityCluster() as city:
        fleet = city.seed(SeedPlan())
        city.start_serves(2)
        phase = asyncio.run(publish_mixed(city, EventMix(fleet), "warm-up", rate=50, seconds=5))
        print(city.account(phase))

Everything it starts is stopped and its folder removed on exit, on an exception, at interpreter exit,
and (through a reaper process) even when the process that started it is killed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import glob
import importlib.util
import json
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from safecity.core.bus.nats import NatsBus
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.events import Event, PlateRead, ViolationCandidate

HERE = Path(__file__).resolve().parent
HELPERS = HERE / "city_helpers.py"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
NOTICE_CLAIM_TIMEOUT_S = 30
# Trees from before the keyed audit log (issue 16) have no key to name: the harness runs them too,
# so that a benchmark can measure an older commit (its `src` first on PYTHONPATH).
AUDIT_KEYS = importlib.util.find_spec("safecity.audit.keys") is not None
# Likewise trees from before encryption at rest have no data key to name.
DATA_KEYS = importlib.util.find_spec("safecity.core.crypto") is not None


class MissingBinaries(RuntimeError):
    """PostgreSQL's initdb/pg_ctl or nats-server is not installed here."""


class StartupFailed(RuntimeError):
    """A service of the private city did not come up; the message carries its log."""


class ClusterStatusUnavailable(RuntimeError):
    """`safecity cluster status --json` could not be run or did not answer JSON."""


# --- binaries and processes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Binaries:
    """Where the server programs the harness runs live."""

    initdb: str
    pg_ctl: str
    nats_server: str


def find_binaries() -> Binaries:
    """Returns the PostgreSQL and NATS programs (newest PostgreSQL first), or says what is missing."""
    pg_dirs = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0,
        reverse=True,
    )

    def pick(name: str, extra: Iterable[str]) -> str | None:
        for folder in pg_dirs:
            if os.access(Path(folder) / name, os.X_OK):
                return str(Path(folder) / name)
        for candidate in extra:
            if candidate and os.access(candidate, os.X_OK):
                return candidate
        return None

    initdb = pick("initdb", [shutil.which("initdb") or ""])
    pg_ctl = pick("pg_ctl", [shutil.which("pg_ctl") or ""])
    nats = next(
        (
            c
            for c in (shutil.which("nats-server") or "", "/usr/sbin/nats-server")
            if c and os.access(c, os.X_OK)
        ),
        None,
    )
    missing = [
        what
        for what, found in (
            ("PostgreSQL's initdb", initdb),
            ("PostgreSQL's pg_ctl", pg_ctl),
            ("nats-server", nats),
        )
        if found is None
    ]
    if os.geteuid() == 0 and not shutil.which("runuser"):
        missing.append("runuser (initdb refuses to run as root)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing.append("a 'postgres' user to run PostgreSQL as (initdb refuses to run as root)")
    if missing:
        raise MissingBinaries(
            f"the city harness needs {', '.join(missing)}: install postgresql (server) and nats-server "
            "(scripts/install-system-deps.sh does, as root)"
        )
    assert initdb and pg_ctl and nats
    return Binaries(initdb=initdb, pg_ctl=pg_ctl, nats_server=nats)


def free_port() -> int:
    """Returns a TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float, *, alive: Callable[[], bool] = lambda: True) -> bool:
    """Waits until something accepts connections on the loopback port; False on timeout or death."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


def _process_table() -> dict[int, tuple[int, float]]:
    """Returns pid -> (parent pid, CPU seconds of the process and of its children already reaped)."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        # Fields 4 (ppid) and 14-17 (utime, stime, cutime, cstime) of proc(5), counted from 3 here.
        ppid = int(fields[1])
        ticks = sum(int(v) for v in fields[11:15])
        table[int(entry)] = (ppid, ticks / CLOCK_TICKS)
    return table


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) of these processes, their live descendants and reaped children."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack, seen = 0.0, [p for p in pids if p in table], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += table[pid][1]
        stack.extend(children.get(pid, ()))
    return total


def self_cpu_seconds() -> float:
    """CPU seconds of this process (every thread), e.g. the load generator."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ManagedProcess:
    """A child process in its own session, its output appended to a log file; start, kill -9, restart."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log_path: Path, on_start: Callable[[int], None]
    ) -> None:
        self.name, self.argv, self.env, self.log_path = name, argv, env, log_path
        self._on_start = on_start
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Starts the process (again, after a kill, with the same command and environment)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n--- {self.name} start #{self.starts + 1} at {utcnow().isoformat()}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(HERE.parent),
                start_new_session=True,
            )
        self.starts += 1
        self._on_start(self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else -1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """kill -9 of the process (and anything it started in its session)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def stop(self, timeout: float = 10.0) -> None:
        """Asks the process to stop (SIGTERM), then kills it if it has not within `timeout`."""
        if not self.alive:
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds([self.pid]) if self.alive else 0.0

    def log_tail(self, lines: int = 40) -> str:
        """The end of the log: lines cut at 300 characters, without the HTTP client's line per SMS."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        kept = [line[:300] for line in text.splitlines() if "httpx: HTTP Request" not in line]
        return "\n".join(kept[-lines:])


class ServeProcess(ManagedProcess):
    """One `safecity serve --no-workers` on its own port."""

    def __init__(
        self, name: str, port: int, env: dict[str, str], log_path: Path, on_start: Callable[[int], None]
    ):
        argv = [sys.executable, "-m", "safecity.cli", "serve", "--no-workers", "--port", str(port)]
        super().__init__(name, argv, {**env, "SAFECITY_PORT": str(port)}, log_path, on_start)
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 120.0) -> float:
        """Waits for GET /healthz to answer 200; returns the seconds waited; StartupFailed carries the log."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.alive:
                raise StartupFailed(
                    f"{self.name} exited with status {self.returncode} while starting:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2.0).status_code == 200:
                    return time.monotonic() - start
            time.sleep(0.2)
        raise StartupFailed(f"{self.name} did not answer /healthz within {timeout:.0f} s:\n{self.log_tail()}")


class PostgresCluster:
    """A private PostgreSQL cluster: initdb, start, stop (fast or immediate, i.e. a crash), start again."""

    def __init__(self, root: Path, binaries: Binaries, port: int) -> None:
        self.root, self.binaries, self.port = root, binaries, port
        self.data = root / "data"
        self.log = root / "postgres.log"
        # initdb refuses to run as root: run the server programs as the postgres user then.
        self.owner = "postgres" if os.geteuid() == 0 else ""
        self.as_owner = ["runuser", "-u", self.owner, "--"] if self.owner else []

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/safecity"

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=safecity connect_timeout=5"

    def _run(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.as_owner, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise StartupFailed(
                f"{Path(args[0]).name} failed ({done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}\n{self.log_tail()}"
            )
        return done

    def init(self) -> None:
        """Creates the cluster (C collation: key ranges use the indexes), starts it, adds `safecity`."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.owner:
            user = pwd.getpwnam(self.owner)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(
            self.binaries.initdb,
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\n# city harness\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nmax_connections = 400\n"
                "shared_buffers = 256MB\n"
            )
        self.start()
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE safecity")

    def start(self) -> float:
        """Starts the server and waits until it accepts connections; returns the seconds it took."""
        start = time.monotonic()
        self._run(self.binaries.pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "120", "start")
        return time.monotonic() - start

    def stop(self, mode: str = "fast") -> None:
        """Stops the server; mode 'immediate' ends every backend at once, as a crash would."""
        self._run(
            self.binaries.pg_ctl, "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False
        )

    @property
    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    @property
    def running(self) -> bool:
        pid = self.postmaster_pid
        return pid is not None and Path(f"/proc/{pid}").exists()

    def cpu_seconds(self) -> float:
        pid = self.postmaster_pid
        return tree_cpu_seconds([pid]) if pid else 0.0

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, autocommit=True)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return "(no PostgreSQL log)"


class NatsServer(ManagedProcess):
    """A private `nats-server -js` on its own port and store folder: kill -9 and restart on the same store."""

    def __init__(
        self, root: Path, binaries: Binaries, port: int, env: dict[str, str], on_start: Callable[[int], None]
    ):
        self.port, self.store = port, root / "nats"
        argv = [binaries.nats_server, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(self.store)]
        super().__init__("nats", argv, env, root / "logs" / "nats.log", on_start)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        if not wait_port(self.port, 20, alive=lambda: self.alive):
            raise StartupFailed(f"nats-server did not listen on {self.port}:\n{self.log_tail()}")


# --- what the city is seeded with ----------------------------------------------------------------------


@dataclass(frozen=True)
class SeedPlan:
    """How big the seeded city is: cameras, registered vehicles (plain, for offences), hot-listed plates."""

    anpr_cameras: int = 40
    fixed_cameras: int = 4
    ordinary_plates: int = 5_000
    offence_plates: int = 3_000
    hot_plates: int = 200


@dataclass(frozen=True)
class Fleet:
    """What seeding created, from which the load is made.

    Plates come in three disjoint shapes no OCR look-alike rule can confuse: ordinary vehicles `KR…`,
    vehicles that commit one offence each `KV…`, hot-listed vehicles `HX…` (one character shorter).
    All are registered with a phone number, so every challan is sent by SMS. ANPR cameras stand within
    a few hundred metres of each other, so no read looks like a cloned plate.
    """

    plan: SeedPlan
    anpr_cameras: list[str]
    fixed_cameras: list[str]
    evidence_ref: str
    calibrations: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def ordinary_plate(i: int) -> str:
        return f"KR{i:06d}"

    @staticmethod
    def offence_plate(k: int) -> str:
        return f"KV{k:06d}"

    @staticmethod
    def hot_plate(j: int) -> str:
        return f"HX{j:05d}"


@dataclass
class Phase:
    """What one stretch of load published, as JetStream acknowledged it, for counting what came out."""

    name: str
    reads: list[str] = field(default_factory=list)
    hot: dict[str, str] = field(default_factory=dict)
    offences: dict[str, str] = field(default_factory=dict)
    failed: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0

    @property
    def acked(self) -> int:
        return len(self.reads) + len(self.hot) + len(self.offences)

    @property
    def read_keys(self) -> set[str]:
        return {*self.reads, *self.hot}

    def note(self, kind: str, event: Event) -> None:
        """Records an event JetStream acknowledged."""
        if kind == "hot":
            assert isinstance(event, PlateRead)
            self.hot[event.key] = f"hotlist:{event.plate}:{event.camera_id}"
        elif kind == "offence":
            assert isinstance(event, ViolationCandidate) and event.plate
            self.offences[event.key] = event.plate
        else:
            self.reads.append(event.key)

    def fail(self, kind: str, exc: BaseException) -> None:
        self.failed[kind] += 1
        if len(self.errors) < 5:
            self.errors.append(f"{type(exc).__name__}: {exc}"[:200])


CALIBRATION_IMAGE = [[170.0, 0.0], [470.0, 0.0], [470.0, 360.0], [170.0, 360.0]]


def court_ready(session: Any, media: Any, camera_ids: list[str]) -> dict[str, int]:
    """Records what the court-readiness gate asks of each camera (a calibration with its certificate,
    a compliant road survey, a clock check); returns each camera's calibration id."""
    from datetime import timedelta

    from safecity.enforcement.calibrations import service as calibrations
    from safecity.enforcement.calibrations.models import CalibrationIn, ReferenceMeasurement
    from safecity.enforcement.readiness import service as readiness
    from safecity.enforcement.readiness.models import ClockCheckIn, RoadSurveyIn

    now = utcnow()
    certificate = media.put(b"%PDF-1.4 city benchmark calibration certificate", "pdf")
    out = {}
    for camera_id in camera_ids:
        calibration = CalibrationIn(
            image_points=[(p[0], p[1]) for p in CALIBRATION_IMAGE],
            ground_points=[(0, 0), (25, 0), (25, 30), (0, 30)],
            references=[ReferenceMeasurement(image_from=(170, 0), image_to=(470, 0), metres=25.0)],
            measured_by="city harness",
            measured_at=now - timedelta(days=2),
            certificate_ref=certificate,
            certificate_number=f"BENCH-{camera_id}",
            certificate_expires=(now + timedelta(days=365)).date(),
        )
        out[camera_id] = calibrations.record(
            session, camera_id, calibration, media=media, actor="city-harness"
        ).id
        survey = RoadSurveyIn(
            lane_markings=True,
            stop_lines=True,
            signals=True,
            surveyed_by="city harness",
            surveyed_at=now - timedelta(days=1),
        )
        readiness.record_survey(session, camera_id, survey, actor="city-harness")
        check = ClockCheckIn(offset_s=0.02, measured_at=now - timedelta(minutes=1), method="ntp_query")
        readiness.record_clock_check(session, camera_id, check, actor="city-harness")
    return out


class EventMix:
    """Hands out unique events: ordinary reads, hot-listed reads (one per plate and camera), speeding.

    The mix is 89 ordinary reads, 1 hot-listed read and 10 speeding candidates in every 100 events.
    Keys start with the phase name, so what a phase published can be found again by key range.
    """

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.read_i = 0
        self.offence_k = 0
        self.hot_j = 0

    def _camera(self, n: int) -> str:
        return self.fleet.anpr_cameras[n % len(self.fleet.anpr_cameras)]

    def read(self, phase: str) -> PlateRead:
        i = self.read_i
        self.read_i += 1
        return PlateRead(
            key=f"{phase}:r:{i}",
            camera_id=self._camera(i),
            plate=self.fleet.ordinary_plate(i % self.fleet.plan.ordinary_plates),
            confidence=0.97,
            vehicle_class="car",
        )

    def hot_combo(self) -> tuple[str, str]:
        """Returns a hot-listed plate and a camera never used together before (so no alert folds)."""
        j = self.hot_j
        self.hot_j += 1
        plates, cameras = self.fleet.plan.hot_plates, len(self.fleet.anpr_cameras)
        if j >= plates * cameras:
            raise RuntimeError(
                f"all {plates * cameras} hot-listed plate and camera pairs are used: seed more"
            )
        return self.fleet.hot_plate(j % plates), self.fleet.anpr_cameras[(j // plates) % cameras]

    def hot_read(self, phase: str, *, combo: tuple[str, str] | None = None, suffix: str = "") -> PlateRead:
        plate, camera = combo or self.hot_combo()
        return PlateRead(
            key=f"{phase}:h:{self.hot_j}{suffix}", camera_id=camera, plate=plate, confidence=0.96
        )

    def offence_plate(self) -> str:
        k = self.offence_k
        self.offence_k += 1
        if k >= self.fleet.plan.offence_plates:
            raise RuntimeError(f"all {k} offence plates are used: seed more")
        return self.fleet.offence_plate(k)

    def speeding(
        self, phase: str, *, plate: str | None = None, at: datetime | None = None, suffix: str = ""
    ) -> ViolationCandidate:
        plate = plate or self.offence_plate()
        number = int(plate[2:])
        camera = self._camera(number)
        return ViolationCandidate(
            key=f"{phase}:v:{number}{suffix}",
            camera_id=camera,
            at=at or utcnow(),
            offence="speeding",
            plate=plate,
            confidence=0.99,
            measured=97.0,
            limit=60.0,
            evidence_refs=[self.fleet.evidence_ref],
            detail={
                "unit": "km/h",
                "vehicle_class": "car",
                "calibration_id": self.fleet.calibrations.get(camera),
                "calibration": {"image_points": CALIBRATION_IMAGE},
            },
        )

    def mixed(self, phase: str, n: int) -> tuple[str, Event]:
        """The n-th event of a phase: 1 hot-listed read, 10 speeding and 89 ordinary reads per 100."""
        slot = n % 100
        if slot == 50:
            return "hot", self.hot_read(phase)
        if slot % 10 == 5:
            return "offence", self.speeding(phase)
        return "read", self.read(phase)


# --- publishing through the project's own bus ----------------------------------------------------------


class Publisher:
    """Publishes through `NatsBus.publish` (what workers use), many publishes in flight, at a set rate."""

    def __init__(self, url: str, *, max_in_flight: int = 2_000) -> None:
        self.bus = NatsBus(url)
        self.max_in_flight = max_in_flight

    async def __aenter__(self) -> Publisher:
        await self.bus.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.bus.close()

    async def _one(self, phase: Phase, kind: str, event: Event, gate: asyncio.Semaphore) -> None:
        try:
            await self.bus.publish(event)
        except Exception as exc:
            phase.fail(kind, exc)
        else:
            phase.note(kind, event)
        finally:
            gate.release()

    async def at_rate(
        self, phase: Phase, make: Callable[[int], tuple[str, Event]], *, rate: float, seconds: float
    ) -> Phase:
        """Publishes `make(n)` for n = 0, 1, … at `rate` a second for `seconds`; `at` is the publish time."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(self.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        phase.started = time.monotonic()
        start, sent = loop.time(), 0
        while (elapsed := loop.time() - start) < seconds:
            due = min(int(rate * elapsed) + 1, int(rate * seconds)) - sent
            for _ in range(max(0, due)):
                await gate.acquire()
                kind, event = make(sent)
                task = asyncio.create_task(self._one(phase, kind, event, gate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks)
        phase.ended = time.monotonic()
        return phase

    async def all_at_once(self, phase: Phase, items: list[tuple[str, Event]]) -> Phase:
        """Publishes every item concurrently (the same instant, as far as one process can)."""
        gate = asyncio.Semaphore(len(items) or 1)
        for _ in items:
            await gate.acquire()
        phase.started = time.monotonic()
        await asyncio.gather(*(self._one(phase, kind, event, gate) for kind, event in items))
        phase.ended = time.monotonic()
        return phase

    async def raw(self, subject: str, data: bytes, msg_id: str) -> None:
        """Publishes bytes straight onto the stream (a malformed event, as a broken worker might)."""
        await self.bus.js.publish(subject, data, headers={"Nats-Msg-Id": msg_id})

    async def pending(self) -> int | None:
        """Messages not yet delivered or not yet acknowledged, over the durable consumers of every stream.

        Key-value buckets (streams `KV_…`) and short-lived consumers (watchers, scans) are not work.
        """
        try:
            total = 0
            for stream in await self.bus.js.streams_info():
                if stream.config.name.startswith(("KV_", "OBJ_")):
                    continue
                for consumer in await self.bus.js.consumers_info(stream.config.name):
                    if consumer.config.durable_name or not consumer.config.inactive_threshold:
                        total += (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
            return total
        except Exception:
            return None


# --- counting what came out ----------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def _summary(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": _round(percentile(values, 50)),
        "p95": _round(percentile(values, 95)),
        "max": _round(max(values) if values else None),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _range(phase: Phase) -> tuple[str, str]:
    # ';' sorts right after ':' under the C collation, so this range is exactly the keys "<phase>:…".
    return f"{phase.name}:", f"{phase.name};"


@dataclass
class Progress:
    """Counts polled while a phase drains (cheap: counts only)."""

    reads: int = 0
    alerts: int = 0
    violations: int = 0
    challans: int = 0
    sms: int = 0
    # Every SMS the gateway took, for any phase: notices of older phases still leaving mean the
    # notice queue is busy, not finished.
    sms_posts_total: int = 0

    def complete(self, phase: Phase, *, sms: bool) -> bool:
        plates = len(set(phase.offences.values()))
        done = (
            self.reads >= len(phase.read_keys)
            and self.alerts >= len(set(phase.hot.values()))
            and self.violations >= plates
            and self.challans >= plates
        )
        return done and (not sms or self.sms >= plates)


# --- the private city -------------------------------------------------------------------------------


class CityCluster:
    """PostgreSQL, NATS, a fake SMS gateway, N serve and M worker processes, all private and disposable."""

    def __init__(self, binaries: Binaries | None = None, *, keep: bool = False) -> None:
        self.binaries = binaries or find_binaries()
        self.keep = keep
        self.root = Path(tempfile.mkdtemp(prefix="safecity-city-"))
        self.root.chmod(0o755)  # the postgres user must reach its folder inside
        self.data_dir = self.root / "data"
        self.logs = self.root / "logs"
        self.pidfile = self.root / "pids"
        self.secret = uuid.uuid4().hex
        # The audit key and checkpoint file a city must name, shared by every process of it.
        self.audit_key_file = self.root / "audit" / "audit.keys"
        self.audit_checkpoints = self.root / "audit" / "checkpoints.log"
        if AUDIT_KEYS:
            from safecity.audit import keys

            keys.write_key_file(self.audit_key_file, [keys.new_key()], exclusive=True)
        # The data key (encryption at rest) a city must name, the same for every serve and worker.
        self.data_key_file = self.root / "keys" / "data.keys"
        if DATA_KEYS:
            from safecity.core import crypto, keyring

            keyring.write_key_file(
                self.data_key_file, [keyring.new_key(crypto.DATA_KEYS)], kind=crypto.DATA_KEYS, exclusive=True
            )
        self.pg = PostgresCluster(self.root / "pg", self.binaries, free_port())
        self.nats = NatsServer(self.root, self.binaries, free_port(), self._base_env(), self._remember)
        self.gateway_port = free_port()
        self.gateway = ManagedProcess(
            "sms-gateway",
            [sys.executable, str(HELPERS), "sms-gateway", "--port", str(self.gateway_port)],
            self._base_env(),
            self.logs / "sms-gateway.log",
            self._remember,
        )
        self.serves: list[ServeProcess] = []
        self.workers: list[ManagedProcess] = []
        self.notice_workers: list[ManagedProcess] = []
        self.notices_apart = False
        self._reaper: subprocess.Popen[bytes] | None = None
        self._closed = False
        self.notice_claim_timeout_s = 0.0

    # life cycle

    def __enter__(self) -> CityCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Starts the reaper, PostgreSQL, NATS and the SMS gateway."""
        atexit.register(self.close)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pidfile.touch()
        self._reaper = subprocess.Popen(
            [
                sys.executable,
                str(HELPERS),
                "reaper",
                "--watch",
                str(os.getpid()),
                "--root",
                str(self.root),
                "--pidfile",
                str(self.pidfile),
                "--pg-ctl",
                self.binaries.pg_ctl,
                "--pg-data",
                str(self.pg.data),
                "--as-user",
                self.pg.owner,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pg.init()
        self.nats.start()
        self.gateway.start()
        if not wait_port(self.gateway_port, 20, alive=lambda: self.gateway.alive):
            raise StartupFailed(f"the fake SMS gateway did not start:\n{self.gateway.log_tail()}")

    def close(self) -> None:
        """Stops everything this cluster started and removes its folder (unless kept); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for process in [*self.workers, *self.notice_workers, *self.serves, self.gateway, self.nats]:
            with contextlib.suppress(Exception):
                process.kill()
        with contextlib.suppress(Exception):
            if self.pg.running:
                self.pg.stop("immediate")
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        if self._reaper is not None:
            with contextlib.suppress(Exception):
                self._reaper.kill()
                self._reaper.wait(5)
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)

    def _remember(self, pid: int) -> None:
        with self.pidfile.open("a") as handle:
            handle.write(f"{pid}\n")

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFECITY_")}
        env["CITY_HARNESS_ROOT"] = str(self.root)  # lets the reaper recognise our processes
        return env

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a city-mode process: NATS bus, private PostgreSQL, shared data folder."""
        return {
            **self._base_env(),
            "SAFECITY_BUS": "nats",
            "SAFECITY_NATS_URL": self.nats.url,
            "SAFECITY_DATABASE_URL": self.pg.url,
            "SAFECITY_DATA_DIR": str(self.data_dir),
            "SAFECITY_SECRET_KEY": self.secret,
            # A city prints its public address on notices and refuses to render them without one.
            "SAFECITY_PUBLIC_BASE_URL": "https://echallan.city.test",
            **self._audit_env(),
            "SAFECITY_HOST": "127.0.0.1",
            "SAFECITY_LOG_LEVEL": "INFO",
            # As docs/city-mode.md deploys it: notices in processes of their own, away from intake.
            **({"SAFECITY_NOTICES_IN_SERVE": "false"} if self.notices_apart else {}),
            **extra,
        }

    def _audit_env(self) -> dict[str, str]:
        data = {"SAFECITY_DATA_KEY_FILE": str(self.data_key_file)} if DATA_KEYS else {}
        if not AUDIT_KEYS:
            return data
        return {
            **data,
            "SAFECITY_AUDIT_KEY_FILE": str(self.audit_key_file),
            "SAFECITY_AUDIT_CHECKPOINT_FILE": str(self.audit_checkpoints),
        }

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    # seeding

    @contextlib.contextmanager
    def context(self) -> Iterator[Context]:
        """A SafeCity context on this city's database and data folder (in-process bus), for seeding."""
        from safecity.settings import Settings

        audit: dict[str, Any] = (
            {"audit_key_file": self.audit_key_file, "audit_checkpoint_file": self.audit_checkpoints}
            if AUDIT_KEYS
            else {}
        )
        if DATA_KEYS:
            audit["data_key_file"] = self.data_key_file
        settings = Settings(
            data_dir=self.data_dir, database_url=self.pg.url, bus="memory", secret_key=self.secret, **audit
        )
        ctx = Context.create(settings)
        if AUDIT_KEYS:
            from safecity.audit import anchor

            anchor.bind(self.pg.url, settings)
        try:
            yield ctx
        finally:
            ctx.db.dispose()

    def seed(self, plan: SeedPlan) -> Fleet:
        """Migrates and seeds through the project's own services; returns what the load is made from."""
        import numpy as np

        from safecity.anpr import service as anpr
        from safecity.cameras import service as cameras
        from safecity.cameras.models import CameraIn
        from safecity.challans import service as challans
        from safecity.challans.models import ChallanRules, DeliveryConfig
        from safecity.enforcement import service as enforcement
        from safecity.enforcement.models import EnforcementPolicy

        with self.context() as ctx:
            anpr_ids = [f"city-anpr-{i:03d}" for i in range(plan.anpr_cameras)]
            fixed_ids = [f"city-fixed-{i:02d}" for i in range(plan.fixed_cameras)]
            with ctx.db.session() as session:
                for i, camera_id in enumerate(anpr_ids):
                    # A 44 m grid near Shahrah-e-Faisal: all within 1 km, closer than a cloned plate can be.
                    cameras.create(
                        session,
                        CameraIn(
                            id=camera_id,
                            name=f"ANPR {i}",
                            kind="anpr",
                            district="Saddar",
                            latitude=24.8607 + (i % 8) * 0.0004,
                            longitude=67.0299 + (i // 8 % 8) * 0.0004,
                        ),
                        actor="city-harness",
                    )
                for i, camera_id in enumerate(fixed_ids):
                    cameras.create(
                        session,
                        CameraIn(
                            id=camera_id,
                            name=f"Fixed {i}",
                            kind="fixed",
                            district="Saddar",
                            latitude=24.87 + i * 0.001,
                            longitude=67.03,
                            stream_url=f"synthetic://road/{camera_id}?fps=1&seed={i + 1}",
                        ),
                        actor="city-harness",
                    )
            rows = ["plate,owner,cnic,address,make,colour,phone"]
            plates = [
                *(Fleet.ordinary_plate(i) for i in range(plan.ordinary_plates)),
                *(Fleet.offence_plate(k) for k in range(plan.offence_plates)),
                *(Fleet.hot_plate(j) for j in range(plan.hot_plates)),
            ]
            for n, plate in enumerate(plates):
                rows.append(
                    f"{plate},Owner {n},42{n:011d},House {n} Block 2 Karachi,Suzuki,white,+92300{n:07d}"
                )
            with ctx.db.session() as session:
                report = challans.import_registry(session, "\n".join(rows) + "\n", actor="city-harness")
            if report.errors:
                raise StartupFailed(f"registry import failed: {report.errors[:3]}")
            with ctx.db.session() as session:
                for j in range(plan.hot_plates):
                    anpr.add_hotlist_entry(
                        session,
                        plate=Fleet.hot_plate(j),
                        list_name="stolen",
                        reason="city benchmark",
                        actor="city-harness",
                    )
            with ctx.db.session() as session:
                enforcement.set_policy(
                    session,
                    EnforcementPolicy(auto_issue_confidence=0.9, auto_issue_offences=["speeding"]),
                    actor="city-harness",
                )
                delivery: dict[str, Any] = {
                    "sms_gateway_url": f"{self.gateway_url}/sms",
                    "post_spool_dir": str(self.root / "post"),
                }
                if "claim_timeout_s" in DeliveryConfig.model_fields:
                    # Where a notice queue exists, a notice claimed by a killed serve is taken again
                    # after this: its shortest, so a fault's drain need not wait the default 5 min.
                    delivery["claim_timeout_s"] = NOTICE_CLAIM_TIMEOUT_S
                    self.notice_claim_timeout_s = NOTICE_CLAIM_TIMEOUT_S
                challans.set_rules(
                    session, ChallanRules(delivery=DeliveryConfig(**delivery)), actor="city-harness"
                )
            frame = np.full((360, 640, 3), 90, np.uint8)
            frame[150:210, 250:390] = 230  # a plate-sized bright patch, so the notice has a photo
            evidence = ctx.media.put_image(frame)
            with ctx.db.session() as session:
                calibrations = court_ready(session, ctx.media, anpr_ids)
        return Fleet(
            plan=plan,
            anpr_cameras=anpr_ids,
            fixed_cameras=fixed_ids,
            evidence_ref=evidence,
            calibrations=calibrations,
        )

    # serve and worker processes

    def add_serve(self) -> ServeProcess:
        index = len(self.serves)
        serve = ServeProcess(
            f"serve-{index}", free_port(), self.env(), self.logs / f"serve-{index}.log", self._remember
        )
        self.serves.append(serve)
        return serve

    def start_serves(self, n: int, *, timeout: float = 120.0) -> list[float]:
        """Starts `n` more serve processes at once and waits for each /healthz; returns their start times."""
        new = [self.add_serve() for _ in range(n)]
        for serve in new:
            serve.start()
        return [serve.wait_healthy(timeout) for serve in new]

    def ensure_serves(self, n: int) -> None:
        """Makes `n` serve processes run (and the notice workers): restarts dead ones, adds missing ones."""
        self.ensure_notice_workers()
        restarted = [s for s in self.serves[:n] if not s.alive]
        for serve in restarted:
            serve.start()
        for serve in restarted:
            serve.wait_healthy()
        if len(self.serves) < n:
            self.start_serves(n - len(self.serves))

    def stop_serves(self) -> None:
        for serve in self.serves:
            serve.stop()

    def restart_serve(self, serve: ServeProcess) -> float:
        """Starts a serve again (after a kill) and returns the seconds until /healthz answered."""
        serve.start()
        return serve.wait_healthy()

    def start_notice_workers(self, n: int) -> list[ManagedProcess]:
        """Starts `n` `safecity challans notice-worker` processes: notices away from the serves' intake."""
        started = []
        for _ in range(n):
            index = len(self.notice_workers)
            argv = [sys.executable, "-m", "safecity.cli", "challans", "notice-worker", "--every", "0.5"]
            process = ManagedProcess(
                f"notices-{index}", argv, self.env(), self.logs / f"notices-{index}.log", self._remember
            )
            process.start()
            self.notice_workers.append(process)
            started.append(process)
        return started

    def ensure_notice_workers(self) -> None:
        """Restarts notice workers that died (the PostgreSQL outage may stop one)."""
        for process in self.notice_workers:
            if not process.alive:
                process.start()

    def start_workers(self, m: int, *, cameras: list[list[str]] | None = None) -> list[ManagedProcess]:
        """Starts `m` `safecity worker` processes (each with its cameras, or none named: the default)."""
        started = []
        for i in range(m):
            index = len(self.workers)
            argv = [sys.executable, "-m", "safecity.cli", "worker"]
            for camera in cameras[i] if cameras else []:
                argv += ["--camera", camera]
            worker = ManagedProcess(
                f"worker-{index}", argv, self.env(), self.logs / f"worker-{index}.log", self._remember
            )
            worker.start()
            self.workers.append(worker)
            started.append(worker)
        return started

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def dead_serves(self) -> list[str]:
        """Names and log tails of serve processes that died without being killed on purpose."""
        return [f"{s.name} (exit {s.returncode}):\n{s.log_tail(25)}" for s in self.serves if not s.alive]

    def logs_of_serves(self, lines: int = 25) -> str:
        return "\n".join(f"== {s.name}\n{s.log_tail(lines)}" for s in self.serves)

    def cluster_status(self) -> dict[str, Any]:
        """Runs `safecity cluster status --json` against this city; raises ClusterStatusUnavailable."""
        try:
            done = subprocess.run(
                [sys.executable, "-m", "safecity.cli", "cluster", "status", "--json"],
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=60,
                cwd=str(HERE.parent),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ClusterStatusUnavailable("`safecity cluster status --json` did not answer in 60 s") from exc
        if done.returncode != 0:
            # Typer draws its errors in a box: keep the words.
            said = " ".join(re.sub(r"[─│╭╮╰╯]", " ", done.stderr or done.stdout).split())
            raise ClusterStatusUnavailable(
                f"`safecity cluster status --json` exited {done.returncode}: {said[-300:]}"
            )
        try:
            status = json.loads(done.stdout)
        except ValueError as exc:
            raise ClusterStatusUnavailable(
                f"`safecity cluster status --json` printed no JSON: {exc}"
            ) from exc
        if not isinstance(status, dict):
            raise ClusterStatusUnavailable(
                "`safecity cluster status --json` printed JSON that is not an object"
            )
        return status

    # measuring

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each part: serves, PostgreSQL, NATS, workers, gateway, this process."""
        return {
            "serve": tree_cpu_seconds([s.pid for s in self.serves if s.alive]),
            "postgres": self.pg.cpu_seconds() if self.pg.running else 0.0,
            "nats": self.nats.cpu_seconds(),
            "workers": tree_cpu_seconds([w.pid for w in self.workers if w.alive]),
            "notice_workers": tree_cpu_seconds([n.pid for n in self.notice_workers if n.alive]),
            "sms_gateway": self.gateway.cpu_seconds(),
            "load_generator": self_cpu_seconds(),
        }

    def sms_counts(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.gateway_url}/counts", timeout=30).json())

    def progress(self, phase: Phase, *, sms: bool = False) -> Progress | None:
        """Cheap counts of what a phase produced so far; None while the database is unreachable."""
        lo, hi = _range(phase)
        plates = sorted(set(phase.offences.values()))
        dedup = sorted(set(phase.hot.values()))
        try:
            with self.pg.connect() as conn:
                row = conn.execute(
                    """
                    SELECT
                      (SELECT count(*) FROM plate_reads WHERE event_key >= %(lo)s AND event_key < %(hi)s),
                      (SELECT count(DISTINCT dedup_key) FROM alerts
                         WHERE kind = 'hotlist' AND dedup_key = ANY(%(dedup)s)),
                      (SELECT count(DISTINCT plate) FROM violations
                         WHERE offence = 'speeding' AND plate = ANY(%(plates)s)),
                      (SELECT count(DISTINCT plate) FROM challans WHERE plate = ANY(%(plates)s))
                    """,
                    {"lo": lo, "hi": hi, "dedup": dedup, "plates": plates},
                ).fetchone()
                numbers = (
                    [
                        r[0]
                        for r in conn.execute("SELECT number FROM challans WHERE plate = ANY(%s)", [plates])
                    ]
                    if sms
                    else []
                )
        except psycopg.Error:
            return None
        assert row is not None
        progress = Progress(reads=row[0], alerts=row[1], violations=row[2], challans=row[3])
        if sms:
            with contextlib.suppress(httpx.HTTPError):
                counts = self.sms_counts()
                progress.sms_posts_total = int(counts["posts"])
                progress.sms = sum(1 for n in numbers if counts["sent_by_number"].get(n))
        return progress

    async def drain(
        self,
        publisher: Publisher,
        phase: Phase,
        *,
        deadline_s: float,
        quiet_s: float = 5.0,
        stall_s: float = 45.0,
        sms: bool = False,
        on_poll: Callable[[Progress | None, int | None], None] | None = None,
    ) -> dict[str, Any]:
        """Waits until everything a phase published came out, or nothing more can come, or the deadline.

        Nothing more can come when JetStream holds nothing pending or unacknowledged and the counts
        have been still for `quiet_s`; a stall (counts still for `stall_s`, longer than the
        redelivery wait after a crash) or the deadline also ends the wait.
        """
        if sms:
            # A notice a killed process had claimed leaves only when its claim times out.
            quiet_s = max(quiet_s, self.notice_claim_timeout_s + 10)
            stall_s = max(stall_s, quiet_s)
        start = time.monotonic()
        last: Progress | None = None
        last_change = start
        pending: int | None = None
        reason = "deadline"
        while True:
            progress = await asyncio.to_thread(self.progress, phase, sms=sms)
            pending = await publisher.pending()
            if on_poll is not None:
                on_poll(progress, pending)
            now = time.monotonic()
            if progress is not None and progress != last:
                last, last_change = progress, now
            if progress is not None and progress.complete(phase, sms=sms):
                reason = "complete"
                break
            if pending == 0 and now - last_change >= quiet_s:
                reason = "nothing pending"
                break
            if now - last_change >= stall_s:
                reason = "stalled"
                break
            if now - start >= deadline_s:
                break
            await asyncio.sleep(1.0)
        return {"drain_s": round(time.monotonic() - start, 1), "ended": reason, "nats_pending": pending}

    async def wait_idle(self, publisher: Publisher, *, deadline_s: float) -> dict[str, Any]:
        """Waits until JetStream holds nothing pending or unacknowledged (a backlog has drained)."""
        start = time.monotonic()
        pending = await publisher.pending()
        while pending != 0 and time.monotonic() - start < deadline_s:
            await asyncio.sleep(1.0)
            pending = await publisher.pending()
        return {"waited_s": round(time.monotonic() - start, 1), "nats_pending": pending}

    async def wait_notices(self, *, deadline_s: float, stall_s: float = 45.0) -> dict[str, Any]:
        """Waits until every challan issued so far has had an SMS, the notices stall, or the deadline.

        A stall (no new SMS for `stall_s`, longer than a dead process's notice claim lasts) means the
        missing ones will not come; at the deadline they may still be on their way. `sms_per_s` is
        the notice workers' rate while they worked through what was left (the SMS sent while waiting,
        over the time to the last one).
        """
        start = last_change = time.monotonic()
        last: tuple[int, int] | None = None
        first_sms: int | None = None
        while True:
            with self.pg.connect() as conn:
                row = conn.execute("SELECT count(*) FROM challans").fetchone()
            counts = await asyncio.to_thread(self.sms_counts)
            now_counts = (int(row[0]) if row else 0, len(counts["sent_by_number"]))
            now = time.monotonic()
            first_sms = now_counts[1] if first_sms is None else first_sms
            if now_counts != last:
                last, last_change = now_counts, now
            if now_counts[1] >= now_counts[0]:
                ended = "complete"
            elif now - last_change >= stall_s:
                ended = "stalled"
            elif now - start >= deadline_s:
                ended = "deadline"
            else:
                await asyncio.sleep(1.0)
                continue
            sent = now_counts[1] - first_sms
            working_s = last_change - start
            return {
                "waited_s": round(now - start, 1),
                "ended": ended,
                "challans": now_counts[0],
                "with_sms": now_counts[1],
                "sms_sent_while_waiting": sent,
                "sms_per_s": round(sent / working_s, 1) if sent and working_s > 0 else None,
            }

    def account(self, phase: Phase, *, sms: bool = True) -> dict[str, Any]:
        """Counts in and out for a phase: what is missing, what is doubled, and the bus→database latency."""
        lo, hi = _range(phase)
        plates = sorted(set(phase.offences.values()))
        dedup = sorted(set(phase.hot.values()))
        with self.pg.connect() as conn:
            reads = {
                key: float(latency)
                for key, latency in conn.execute(
                    "SELECT event_key, extract(epoch FROM stored_at - at) FROM plate_reads"
                    " WHERE event_key >= %s AND event_key < %s",
                    [lo, hi],
                )
            }
            violations: dict[str, list[float]] = {}
            for plate, latency in conn.execute(
                "SELECT plate, extract(epoch FROM created_at - at) FROM violations"
                " WHERE offence = 'speeding' AND plate = ANY(%s)",
                [plates],
            ):
                violations.setdefault(plate, []).append(float(latency))
            challans: dict[str, list[tuple[str, float]]] = {}
            for plate, number, latency in conn.execute(
                "SELECT plate, number, extract(epoch FROM issued_at - offence_at) FROM challans"
                " WHERE plate = ANY(%s)",
                [plates],
            ):
                challans.setdefault(plate, []).append((number, float(latency)))
            alerts = dict(
                conn.execute(
                    "SELECT dedup_key, count(*) FROM alerts WHERE kind = 'hotlist' AND dedup_key = ANY(%s)"
                    " GROUP BY dedup_key",
                    [dedup],
                ).fetchall()
            )
        posts: dict[str, int] = {}
        sent: dict[str, int] = {}
        if sms:
            counts = self.sms_counts()
            posts, sent = counts["by_number"], counts["sent_by_number"]
        read_keys = phase.read_keys
        missing_reads = read_keys - reads.keys()
        missing_alerts = {d for d in dedup if not alerts.get(d)}
        missing_violations = {p for p in plates if p not in violations}
        missing_challans = {p for p in plates if p not in challans}
        numbers = [number for plate in plates for number, _ in challans.get(plate, [])]
        missing_sms = {n for n in numbers if not sent.get(n)} if sms else set()
        # An event is lost when an effect of its own is missing: the read, else its alert, else the
        # violation or challan of its offence. A missing SMS is counted apart: notices may lag.
        stored_sightings = {d for key, d in phase.hot.items() if key not in missing_reads}
        lost_events = (
            len(missing_reads)
            + len(missing_alerts & stored_sightings)
            + len(missing_violations | missing_challans)
        )
        read_latency = [reads[k] for k in read_keys if k in reads]
        violation_latency = [min(v) for v in violations.values()]
        challan_latency = [min(lat for _, lat in c) for c in challans.values()]
        return {
            "in": {
                "events": phase.acked,
                "reads": len(read_keys),
                "hotlist_reads": len(phase.hot),
                "offences": len(plates),
                "not_acknowledged": sum(phase.failed.values()),
            },
            "out": {
                "reads_stored": len(read_keys & reads.keys()),
                "hotlist_alerts": sum(alerts.values()),
                "violations": sum(len(v) for v in violations.values()),
                "challans": sum(len(c) for c in challans.values()),
                "sms_sent": sum(sent.get(n, 0) for n in numbers) if sms else None,
            },
            "missing": {
                "reads": len(missing_reads),
                "hotlist_alerts": len(missing_alerts),
                "violations": len(missing_violations),
                "challans": len(missing_challans),
                "sms": len(missing_sms) if sms else None,
            },
            "lost_events": lost_events,
            "lost_notices": len(missing_sms) if sms else None,
            "duplicates": {
                "alerts": sum(n - 1 for n in alerts.values() if n > 1),
                "violations": sum(len(v) - 1 for v in violations.values() if len(v) > 1),
                "challans": sum(len(c) - 1 for c in challans.values() if len(c) > 1),
                "notices": sum(sent.get(n, 0) - 1 for n in numbers if sent.get(n, 0) > 1),
                "sms_posts_repeated_with_same_key": sum(posts.get(n, 0) - sent.get(n, 0) for n in numbers),
            },
            "complete": not (missing_reads or missing_alerts or missing_violations or missing_challans),
            "latency_s": {
                "p50": _round(percentile(read_latency + violation_latency, 50)),
                "p95": _round(percentile(read_latency + violation_latency, 95)),
                "reads": _summary(read_latency),
                "violations": _summary(violation_latency),
                "challans": _summary(challan_latency),
            },
        }


# --- helpers for tests and the benchmark ---------------------------------------------------------------


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turns SIGTERM into SystemExit, so `with CityCluster()` cleans up when the run is stopped."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
