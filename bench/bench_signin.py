"""Sign-in benchmark: Argon2 under 20 concurrent attempts, and whether the real admin gets in mid-attack.

Serves the real app (uvicorn, SQLite unless --db-url names PostgreSQL) on a loopback port behind a
"trusted proxy" (the benchmark itself), so each worker can come from addresses of its own through
X-Forwarded-For. After five sign-ins one at a time (for comparison), three runs, each with 20
workers firing sign-ins at once:
  honest        20 users signing in with the right password from 20 addresses: latency of a sign-in
                that reaches Argon2 (p50/p95 ms) and sign-ins per second;
  attack        20 attackers guessing the admin's password from a pool of addresses, while the admin
                signs in from the browser used before (device cookie) every half second, and once
                from a new browser: how the attack is answered (401 reached Argon2, 429 turned away),
                and whether the admin got in each time;
  unknown names 20 attackers typing made-up user names: audit rows written per attempt.

    .venv/bin/python bench/bench_signin.py [--quick] [--seconds 10] [--db-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from sqlalchemy import func, select

from safecity.accounts import service as accounts
from safecity.accounts.models import Role, User, UserIn
from safecity.accounts.service import PASSWORD_HASHER as argon2
from safecity.audit.models import AuditEntry
from safecity.core.context import Context
from safecity.server import create_app
from safecity.settings import Settings

err = Console(stderr=True)
WORKERS = 20
# Addresses the made-up names come from: each writes at most two audit rows a minute.
ADDRESSES = 8
PASSWORD = "the-admins-own-passphrase"


def percentile(values: list[float], pct: float) -> float | None:
    """Returns the nearest-rank percentile of `values` in milliseconds, rounded to 0.1 ms."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))] * 1000, 1)


def start_server(ctx: Context) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Serves the app on a free loopback port in a background thread."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def run_workers(seconds: float, work: Callable[[int, httpx.Client], None], base: str) -> float:
    """Runs `work(worker, client)` in a loop in 20 threads for `seconds`; returns the wall time."""
    stop = time.monotonic() + seconds

    def loop(worker: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            while time.monotonic() < stop:
                work(worker, http)

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(WORKERS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def post_login(
    http: httpx.Client, username: str, password: str, address: str
) -> tuple[httpx.Response, float]:
    """One sign-in from `address`; returns the answer and the seconds it took."""
    started = time.perf_counter()
    res = http.post(
        "/api/login", json={"username": username, "password": password}, headers={"X-Forwarded-For": address}
    )
    return res, time.perf_counter() - started


def sign_in(http: httpx.Client, username: str, password: str, address: str) -> tuple[int, float]:
    """One sign-in from `address`; returns the status and the seconds it took."""
    res, took = post_login(http, username, password, address)
    return res.status_code, took


def honest(base: str, users: list[str], seconds: float) -> dict[str, Any]:
    """20 users sign in with the right password, over and over, each from an address of its own."""
    times: list[float] = []
    codes: Counter[int] = Counter()
    lock = threading.Lock()

    def work(worker: int, http: httpx.Client) -> None:
        http.cookies.clear()
        code, took = sign_in(http, users[worker], PASSWORD, f"10.20.0.{worker + 1}")
        with lock:
            codes[code] += 1
            times.append(took)

    wall = run_workers(seconds, work, base)
    return {
        "workers": WORKERS,
        "attempts": len(times),
        "signed_in": codes[200],
        "answers": {str(k): v for k, v in sorted(codes.items())},
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "attempts_per_s": round(len(times) / wall, 1),
    }


def one_at_a_time(base: str, username: str, count: int) -> dict[str, Any]:
    """The same sign-in with nobody else around, for comparison."""
    times = []
    with httpx.Client(base_url=base, timeout=60) as http:
        for _ in range(count):
            http.cookies.clear()
            code, took = sign_in(http, username, PASSWORD, "10.10.0.1")
            assert code == 200, code
            times.append(took)
    return {"attempts": count, "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}


def attack(base: str, ctx: Context, seconds: float) -> dict[str, Any]:
    """20 attackers guess the admin's password while the admin signs in from a known browser."""
    admin_browser = httpx.Client(base_url=base, timeout=60)
    code, _ = sign_in(admin_browser, "admin", PASSWORD, "10.30.0.1")  # the admin's browser, known from now
    assert code == 200, code
    times: list[float] = []
    codes: Counter[int] = Counter()
    admin_times: list[float] = []
    admin_codes: Counter[int] = Counter()
    lock = threading.Lock()
    counter = iter(range(10**9))

    def work(worker: int, http: httpx.Client) -> None:
        n = next(counter)
        # A botnet's worth of addresses: 250 of them, each used again only every 250 guesses.
        address = f"198.18.0.{n % 250 + 1}"
        code, took = sign_in(http, "admin", f"guess-{n}", address)
        with lock:
            codes[code] += 1
            times.append(took)

    stop_admin = threading.Event()

    def admin_signs_in() -> None:
        while not stop_admin.wait(0.5):
            code, took = sign_in(admin_browser, "admin", PASSWORD, "10.30.0.1")
            admin_codes[code] += 1
            admin_times.append(took)

    admin_thread = threading.Thread(target=admin_signs_in)
    admin_thread.start()
    wall = run_workers(seconds, work, base)
    stop_admin.set()
    admin_thread.join()
    with httpx.Client(base_url=base, timeout=60) as new_browser:
        new_answer, _ = post_login(new_browser, "admin", PASSWORD, "10.30.0.2")
    admin_browser.close()
    with ctx.db.session() as session:
        failures = session.scalar(select(User.failed_logins).where(User.username == "admin"))
    return {
        "workers": WORKERS,
        "attempts": len(times),
        "answers": {str(k): v for k, v in sorted(codes.items())},
        "reached_argon2": codes[401],
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "attempts_per_s": round(len(times) / wall, 1),
        "admin_known_browser": {
            "tries": sum(admin_codes.values()),
            "signed_in": admin_codes[200],
            "p50_ms": percentile(admin_times, 50),
            "p95_ms": percentile(admin_times, 95),
        },
        "admin_new_browser": {"status": new_answer.status_code, "hint": new_answer.json().get("hint")},
        "admin_failed_logins_after": failures,
    }


def unknown_names(base: str, ctx: Context, seconds: float) -> dict[str, Any]:
    """20 attackers type made-up names from a few addresses: what it costs the audit log."""
    with ctx.db.session() as session:
        before = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    codes: Counter[int] = Counter()
    lock = threading.Lock()
    counter = iter(range(10**9))

    def work(worker: int, http: httpx.Client) -> None:
        n = next(counter)
        code, _ = sign_in(http, f"made-up-{n:07d}", "whatever", f"203.0.113.{n % ADDRESSES + 1}")
        with lock:
            codes[code] += 1

    run_workers(seconds, work, base)
    with ctx.db.session() as session:
        after = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    attempts = sum(codes.values())
    return {
        "attempts": attempts,
        "distinct_names": attempts,
        "addresses": ADDRESSES,
        "audit_rows_bound": "2 per address and minute (no row per name)",
        "answers": {str(k): v for k, v in sorted(codes.items())},
        "audit_rows": after - before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 seconds per run")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--db-url", default=None, help="PostgreSQL URL (default: SQLite in a temp folder)")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data",
            database_url=args.db_url,
            trusted_proxies=["127.0.0.1/32"],
            login_attempts_per_minute=5,
        )
        ctx = Context.create(settings)
        users = [f"officer.{i:02d}" for i in range(WORKERS)]
        with ctx.db.session() as session:
            for name in [*users, "admin"]:
                role = Role.admin if name == "admin" else Role.operator
                accounts.create_user(
                    session, UserIn(username=name, role=role, password=PASSWORD), actor="bench"
                )
        started = time.perf_counter()
        probe = argon2.hash(PASSWORD)
        for _ in range(5):
            argon2.verify(probe, PASSWORD)
        single_ms = round((time.perf_counter() - started) / 6 * 1000, 1)
        server, thread, base = start_server(ctx)
        try:
            with err.status("sign-ins one at a time…"):
                alone = one_at_a_time(base, users[0], 5)
            with err.status("20 honest sign-ins at a time…"):
                honest_run = honest(base, users, seconds)
            err.log(f"honest: p50 {honest_run['p50_ms']} ms, {honest_run['attempts_per_s']}/s")
            with err.status("20 attackers on the admin, the admin signing in meanwhile…"):
                attack_run = attack(base, ctx, seconds)
            err.log(f"attack: admin signed in {attack_run['admin_known_browser']['signed_in']} times")
            with err.status("20 attackers typing made-up names…"):
                unknown_run = unknown_names(base, ctx, seconds)
        finally:
            server.should_exit = True
            thread.join(15)
            ctx.db.dispose()
    result = {
        "benchmark": "signin",
        "database": "postgresql" if args.db_url else "sqlite",
        "cpus": os.cpu_count(),
        "seconds_per_run": seconds,
        "argon2": {
            "time_cost": argon2.time_cost,
            "memory_kib": argon2.memory_cost,
            "parallelism": argon2.parallelism,
            "one_check_ms": single_ms,
        },
        "one_at_a_time": alone,
        "honest": honest_run,
        "attack": attack_run,
        "unknown_names": unknown_run,
        "correct_password_gets_in_during_attack": attack_run["admin_known_browser"]["signed_in"]
        == attack_run["admin_known_browser"]["tries"]
        > 0,
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
