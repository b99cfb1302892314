"""Audit and access benchmark: the role matrix, and how fast the keyed audit chain appends and verifies.

Builds a centre in a temporary folder, calls every route as every role and as a stranger against the
permission map (tests/security/matrix.py) and reports its size and any difference; then appends
audit rows (one per transaction, as requests write them, and many per transaction), signs a
checkpoint and verifies the whole chain, reporting rows per second for each.

    .venv/bin/python bench/bench_audit.py [--quick] [--rows 20000] [--db-url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from safecity.audit import anchor, keys, service  # noqa: E402
from safecity.core.context import Context  # noqa: E402
from safecity.core.db import Database  # noqa: E402
from safecity.server import create_app  # noqa: E402
from safecity.settings import Settings  # noqa: E402
from tests.security import matrix  # noqa: E402

err = Console(stderr=True)


def role_matrix(folder: Path) -> dict[str, Any]:
    """Calls every route as every role; returns the matrix's size, differences and time taken."""
    ctx = Context.create(Settings(data_dir=folder / "matrix"))
    app = create_app(ctx)
    started = time.perf_counter()
    with TestClient(app, raise_server_exceptions=False) as client:
        found = matrix.run(ctx, app, client)
    ctx.db.dispose()
    return {**found.summary(), "seconds": round(time.perf_counter() - started, 1)}


def chain(folder: Path, rows: int, db_url: str | None) -> dict[str, Any]:
    """Appends `rows` audit rows two ways, signs a checkpoint, verifies; returns rows per second."""
    url = db_url or f"sqlite:///{folder / 'audit.db'}"
    settings = Settings(data_dir=folder)
    if db_url:
        key_file = folder / "audit.keys"
        keys.write_key_file(key_file, [keys.new_key()], exclusive=True)
        settings = Settings(
            data_dir=folder, audit_key_file=key_file, audit_checkpoint_file=folder / "checkpoints.log"
        )
    db = Database(url)
    db.migrate()
    anchor.bind(url, settings)
    single = max(1, rows // 10)
    started = time.perf_counter()
    for i in range(single):
        with db.session() as session:
            service.record(session, actor="operator1", action="alert.view", target=f"a{i}", detail={"i": i})
    one_per_txn = single / (time.perf_counter() - started)
    started = time.perf_counter()
    batch = 500
    for offset in range(0, rows, batch):
        with db.session() as session:
            for i in range(offset, min(rows, offset + batch)):
                service.record(session, actor="investigator1", action="plates.search", target=f"LEA{i}")
    batched = rows / (time.perf_counter() - started)
    started = time.perf_counter()
    written = service.checkpoint(db)
    checkpoint_s = time.perf_counter() - started
    started = time.perf_counter()
    with db.session() as session:
        report = service.verify(session)
    verify_s = time.perf_counter() - started
    db.dispose()
    return {
        "database": "postgresql" if db_url else "sqlite",
        "rows": report.checked,
        "append_rows_per_s_one_per_transaction": round(one_per_txn),
        "append_rows_per_s_500_per_transaction": round(batched),
        "checkpoint_s": round(checkpoint_s, 3),
        "checkpoint_rows": written.rows if written else None,
        "verify_rows_per_s": round(report.checked / verify_s),
        "verify_ok": report.ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rows (CI)")
    parser.add_argument("--rows", type=int, default=20_000, help="audit rows to append and verify")
    parser.add_argument("--db-url", default=None, help="PostgreSQL URL of an empty database (default SQLite)")
    args = parser.parse_args()
    rows = 2_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory(prefix="safecity-bench-audit-") as tmp:
        folder = Path(tmp)
        err.print("role matrix …")
        result: dict[str, Any] = {"role_matrix": role_matrix(folder)}
        err.print(f"audit chain, {rows} rows …")
        result["audit_chain"] = chain(folder / "chain", rows, args.db_url)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
