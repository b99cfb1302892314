"""Fuzzing benchmark: schemathesis cases over every OpenAPI operation, and how many the server failed.

For each operation, hypothesis draws cases from schemathesis's strategies, valid data and invalid
data alike (derandomized: the same cases every run), and each case is sent through the app in
process twice: signed in as an admin, and with no credentials. A server error is any answer of 500
or more, or any answer that carries a traceback; the run never stops at one, it counts them.

    .venv/bin/python bench/bench_fuzz.py [--quick] [--examples 50] [--database-url URL]

Prints one JSON object on stdout: {"cases", "requests", "server_errors", "operations", "seconds",
"failing"}, where failing names each operation that answered 5xx with its first status. Goal (issue
16): server_errors 0. --quick draws 5 cases per mode and operation; the default 50.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans

from safecity.accounts import service as accounts
from safecity.accounts.models import Role, UserIn
from safecity.core.context import Context
from safecity.server import create_app
from safecity.settings import Settings

ADMIN = "fuzz-admin"


def fresh_token(context: Context) -> str:
    """Returns a new token of the run's admin: a fuzzed sign-out must not end the run's authority."""
    with context.db.session() as session:
        token, _ = accounts.issue_token(
            session, accounts.get_by_username(session, ADMIN), kind="api", hours=2
        )
    return token


class Fuzzer:
    """Sends cases through the app as the admin and anonymously, and counts what the server failed."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.app = create_app(context)
        self.counts = {"cases": 0, "requests": 0, "server_errors": 0, "operations": 0}
        self.failing: dict[str, int] = {}

    def send(self, label: str, case: schemathesis.Case) -> None:
        """Sends one case twice (admin, anonymous); a 5xx or a traceback counts as a server error."""
        self.counts["cases"] += 1
        for headers in ({"Authorization": f"Bearer {fresh_token(self.context)}"}, {}):
            self.counts["requests"] += 1
            try:
                response = case.call(app=self.app, base_url="http://testserver", headers=headers)
                status, text = response.status_code, response.text
            except Exception as exc:  # an unhandled error escaped the app: that is a server error too
                status, text = 500, repr(exc)
            if status >= 500 or "Traceback (most recent call last)" in text:
                self.counts["server_errors"] += 1
                if label not in self.failing:
                    print(f"{label}: {status}\n{case.as_curl_command()}\n{text[:1500]}\n", file=sys.stderr)
                self.failing.setdefault(label, status)

    def operation(self, operation: Any, mode: GenerationMode, examples: int) -> None:
        """Draws `examples` cases of one operation in one generation mode and sends each."""
        label = f"{operation.method.upper()} {operation.path}"

        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def draw(case: schemathesis.Case) -> None:
            self.send(label, case)

        try:
            draw()
        except Unsatisfiable:
            pass  # nothing in the operation can be made invalid (no parameters, no body)
        except Exception as exc:  # a strategy hypothesis cannot draw from: say so, go on
            print(f"{label} ({mode.value}): {type(exc).__name__}: {exc}", file=sys.stderr)


def run(examples: int, database_url: str | None) -> dict[str, Any]:
    """Fuzzes every operation with `examples` cases per generation mode; returns the figures."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        context = Context.create(Settings(data_dir=Path(folder) / "data", database_url=database_url))
        with context.db.session() as session:
            accounts.create_user(
                session,
                UserIn(username=ADMIN, role=Role.admin, password="fuzz-admin-password"),
                actor="bench",
            )
        fuzzer = Fuzzer(context)
        try:
            for result in schemathesis.openapi.from_dict(fuzzer.app.openapi()).get_all_operations():
                fuzzer.counts["operations"] += 1
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    fuzzer.operation(result.ok(), mode, examples)
        finally:
            shutdown_lifespans()
            context.db.dispose()
    return {**fuzzer.counts, "seconds": round(time.perf_counter() - started, 1), "failing": fuzzer.failing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 cases per mode and operation")
    parser.add_argument(
        "--examples", type=int, default=None, help="cases per mode and operation (default 50)"
    )
    parser.add_argument("--database-url", default=None, help="fuzz against this database (default: SQLite)")
    args = parser.parse_args()
    examples = args.examples or (5 if args.quick else 50)
    print(json.dumps(run(examples, args.database_url)))


if __name__ == "__main__":
    main()
