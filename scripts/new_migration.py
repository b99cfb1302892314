"""Writes a new Alembic revision for one domain's tables, on that domain's own branch.

    .venv/bin/python scripts/new_migration.py --branch anpr --tables plate_reads,hotlists -m "plate reads"

A domain's first revision branches off the foundation; later ones follow the domain's own head.
Only the named tables are compared, so work in progress in other domains never leaks in.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from safecity.core.db import alembic_config


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--branch", required=True, help="domain name, e.g. anpr")
    parser.add_argument("--tables", required=True, help="comma-separated table names of this domain")
    parser.add_argument("-m", "--message", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = alembic_config()
        config.set_main_option("sqlalchemy.url", f"sqlite:///{Path(tmp) / 'gen.db'}")
        config.attributes["only_tables"] = set(args.tables.split(","))
        command.upgrade(config, "heads")
        script = ScriptDirectory.from_config(config)
        labels = {label for rev in script.walk_revisions() for label in (rev.branch_labels or ())}
        existing = [r for r in script.walk_revisions() if r.revision.endswith(f"_{args.branch}")]
        number = len(existing) + 1
        rev_id = f"{number:04d}_{args.branch}"
        if args.branch in labels:
            command.revision(
                config, message=args.message, autogenerate=True, rev_id=rev_id, head=f"{args.branch}@head"
            )
        else:
            command.revision(
                config,
                message=args.message,
                autogenerate=True,
                rev_id=rev_id,
                head="0001_foundation",
                splice=True,
                branch_label=args.branch,
                depends_on=None,
            )
    generated = sorted((Path(script.dir) / "versions").glob(f"{rev_id}_*.py"))
    for path in generated:
        path.rename(path.with_name(f"{rev_id}.py"))
        print(f"wrote {path.with_name(f'{rev_id}.py')}")


if __name__ == "__main__":
    main()
