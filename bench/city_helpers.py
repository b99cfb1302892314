"""Small stdlib-only processes the city harness runs beside the services: a fake SMS gateway and a reaper.

    python bench/city_helpers.py sms-gateway --port 18080
    python bench/city_helpers.py reaper --watch PID --root DIR --pidfile FILE --pg-ctl PATH --pg-data DIR

The gateway stands in for the operator's SMSC bridge (`challans.delivery.SmsAdapter` posts JSON
`{to, text}`, and an idempotency key in the body or an `Idempotency-Key` header): it answers every
POST and counts them per challan number (read from the text) and per key, sending a repeated key's
message once, as a real gateway that honours such keys would. `GET /counts` returns the
counts; `GET /summary` only the totals. The reaper outlives the harness: when the harness process
disappears without cleaning up (kill -9, a hung test killed by its runner), it kills the processes
the harness started, stops the private PostgreSQL and removes the temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHALLAN_NUMBER = re.compile(r"e-Challan (\S+?):")


class SmsCounts:
    """What the fake gateway received: posts per challan number and per idempotency key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts = 0
        self.by_number: Counter[str] = Counter()
        self.sent_by_number: Counter[str] = Counter()
        self.by_key: Counter[str] = Counter()

    def record(self, text: str, key: str) -> int:
        match = CHALLAN_NUMBER.search(text)
        number = match.group(1) if match else "?"
        with self.lock:
            self.posts += 1
            self.by_number[number] += 1
            if key:
                self.by_key[key] += 1
            # A gateway that honours idempotency keys sends a repeated key's message once.
            if not key or self.by_key[key] == 1:
                self.sent_by_number[number] += 1
            return self.posts

    def snapshot(self, *, full: bool) -> dict[str, object]:
        with self.lock:
            data: dict[str, object] = {
                "posts": self.posts,
                "numbers": len(self.by_number),
                "keys": len(self.by_key),
            }
            if full:
                data["by_number"] = dict(self.by_number)
                data["sent_by_number"] = dict(self.sent_by_number)
                data["repeated_keys"] = {k: n for k, n in self.by_key.items() if n > 1}
            return data


def serve_sms_gateway(port: int) -> None:
    counts = SmsCounts()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so a pooled client reuses its connection
        # The headers and the body leave in two writes: with Nagle's algorithm the body waited for the
        # client's delayed ACK of the headers, 40 ms a message (the notice workers' SMS rate was 22/s).
        disable_nagle_algorithm = True

        def _reply(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
                text, key = str(body.get("text", "")), str(body.get("idempotency_key") or "")
            except (ValueError, AttributeError):
                self._reply(400, {"error": "body must be JSON {to, text}"})
                return
            n = counts.record(text, self.headers.get("Idempotency-Key") or key)
            self._reply(200, {"id": f"sms-{n}", "status": "queued"})

        def do_GET(self) -> None:
            if self.path.startswith("/counts"):
                self._reply(200, counts.snapshot(full=True))
            elif self.path.startswith("/summary"):
                self._reply(200, counts.snapshot(full=False))
            else:
                self._reply(404, {"error": "POST a message, or GET /counts or /summary"})

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(pid: int, root: str) -> bool:
    """True when the process still names our folder in its command line or environment (no pid reuse)."""
    for name in ("cmdline", "environ"):
        try:
            if root.encode() in Path(f"/proc/{pid}/{name}").read_bytes():
                return True
        except OSError:
            continue
    return False


def reap(watch: int, root: Path, pidfile: Path, pg_ctl: str, pg_data: Path, as_user: list[str]) -> None:
    while _alive(watch) and root.exists():
        time.sleep(1.0)
    if not root.exists():
        return
    if pg_ctl and (pg_data / "postmaster.pid").exists():
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(pg_data), "-m", "immediate", "-w", "-t", "20", "stop"],
            capture_output=True,
            check=False,
        )
    if pidfile.exists():
        for line in pidfile.read_text().split():
            pid = int(line)
            if _alive(pid) and _ours(pid, str(root)):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gateway = sub.add_parser("sms-gateway", help="fake SMS gateway counting posts per challan")
    gateway.add_argument("--port", type=int, required=True)
    reaper = sub.add_parser("reaper", help="clean up after a harness that died")
    reaper.add_argument("--watch", type=int, required=True)
    reaper.add_argument("--root", type=Path, required=True)
    reaper.add_argument("--pidfile", type=Path, required=True)
    reaper.add_argument("--pg-ctl", default="")
    reaper.add_argument("--pg-data", type=Path, default=Path("/nonexistent"))
    reaper.add_argument("--as-user", default="", help="run pg_ctl as this user (through runuser)")
    args = parser.parse_args()
    if args.command == "sms-gateway":
        serve_sms_gateway(args.port)
    else:
        as_user = ["runuser", "-u", args.as_user, "--"] if args.as_user else []
        reap(args.watch, args.root, args.pidfile, args.pg_ctl, args.pg_data, as_user)
    sys.exit(0)


if __name__ == "__main__":
    main()
