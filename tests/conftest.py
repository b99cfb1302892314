"""Fixtures shared by every test: a fresh data folder and context, a running app, real services."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safecity.accounts import service as accounts
from safecity.accounts.models import Role, UserIn
from safecity.core.context import Context
from safecity.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("SAFECITY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("SAFECITY_TEST_NATS", "nats://127.0.0.1:4222")
PASSWORD = "correct-horse-battery"

# The browser harness (live_server, chromium, page) serves every page test, whatever its folder.
pytest_plugins = ["tests.browser"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Keeps the city-scale tests on one worker when the suite runs in parallel (`pytest -n 2`).

    They share one session-wide cluster (PostgreSQL, NATS, serves, workers): one worker starts it
    once, rather than each worker starting its own beside the other's.
    """
    for item in items:
        if "/tests/city/" in str(item.path):
            item.add_marker(pytest.mark.xdist_group("city"))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skips (or, under CI=true, fails) when a real service the test needs is not running."""
    if _reachable(host, port):
        return
    message = f"{name} is not running on {host}:{port}; start it to run the city-scale tests"
    if IN_CI:
        pytest.fail(f"{message} (CI=true requires it)")
    pytest.skip(message)


def need_shared_data(*parts: str) -> Path:
    """Returns a path under ../shared/data, or skips when that folder is absent (CI always has it)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared test data sits beside the repository)")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def ctx(settings: Settings) -> Iterator[Context]:
    context = Context.create(settings)
    yield context
    context.db.dispose()


@pytest.fixture
def app(ctx: Context):  # type: ignore[no-untyped-def]
    from safecity.server import create_app

    return create_app(ctx)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        yield test_client


def make_user(ctx: Context, role: Role | str, username: str | None = None) -> str:
    """Creates a user with `role` and returns its user name (password: PASSWORD)."""
    role = Role(role)
    name = username or f"{role.value}-{uuid.uuid4().hex[:6]}"
    with ctx.db.session() as session:
        accounts.create_user(session, UserIn(username=name, role=role, password=PASSWORD), actor="test")
    return name


def auth_headers(ctx: Context, role: Role | str, username: str | None = None) -> dict[str, str]:
    """Returns an Authorization header for a new user with `role`."""
    name = make_user(ctx, role, username)
    with ctx.db.session() as session:
        user = accounts.get_by_username(session, name)
        token, _ = accounts.issue_token(session, user, kind="api", hours=1)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(ctx: Context) -> dict[str, str]:
    return auth_headers(ctx, Role.admin)


def audit_anchor_env(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names an audit key file (made now) and a checkpoint file in `folder`, as a city must."""
    from safecity.audit import keys

    key_file = folder / "audit.keys"
    if not key_file.exists():
        keys.write_key_file(key_file, [keys.new_key()], exclusive=True)
    monkeypatch.setenv("SAFECITY_AUDIT_KEY_FILE", str(key_file))
    monkeypatch.setenv("SAFECITY_AUDIT_CHECKPOINT_FILE", str(folder / "audit-checkpoints.log"))


def data_key_env(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Names a data key file (made now, 0600) in `folder`, as a city must; returns its path."""
    from safecity.core import crypto, keyring

    key_file = folder / crypto.KEY_FILE
    if not key_file.exists():
        keyring.write_key_file(
            key_file, [keyring.new_key(crypto.DATA_KEYS)], kind=crypto.DATA_KEYS, exclusive=True
        )
    monkeypatch.setenv("SAFECITY_DATA_KEY_FILE", str(key_file))
    return key_file


@pytest.fixture
def pg_url(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards (with its audit and data keys)."""
    need_service("PostgreSQL", "127.0.0.1", 5432)
    from sqlalchemy import create_engine, text

    audit_anchor_env(tmp_path_factory.mktemp("audit"), monkeypatch)
    data_key_env(tmp_path_factory.mktemp("keys"), monkeypatch)

    name = f"safecity_test_{uuid.uuid4().hex[:10]}"
    admin_engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin_engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


@pytest.fixture
def nats_url() -> str:
    need_service("NATS", "127.0.0.1", 4222)
    return NATS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each supported database (PostgreSQL skips only where it is not running)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'any.db'}"
    return str(request.getfixturevalue("pg_url"))
