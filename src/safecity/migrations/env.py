"""Alembic environment: runs on the connection SafeCity hands it (SQLite or PostgreSQL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from safecity.models import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            from safecity.settings import get_settings

            url = get_settings().resolved_database_url
        with create_engine(url).connect() as conn:
            _run_on(conn)
            conn.commit()
    else:
        _run_on(connection)


def _only_tables(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # scripts/new_migration.py names the tables of one domain, so its revision holds only those.
    tables = config.attributes.get("only_tables")
    if not tables:
        return True
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table in tables


def _run_on(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=_only_tables,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
