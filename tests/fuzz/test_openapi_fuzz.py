"""Schemathesis over the whole OpenAPI, in process: no request, however malformed, makes the server fail.

Each generated case (schemathesis's boundary values first, then hypothesis's positive and negative
data) is sent twice through the ASGI app: signed in as an admin, who reaches every route's logic,
and with no credentials at all. No answer may be a 5xx, and none may carry a traceback. The run is
bounded and deterministic (derandomized, a fixed number of examples per operation) so that CI takes
the same minute or two every time; `bench/bench_fuzz.py` runs it wider.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import shutdown_lifespans

from safecity.accounts import service as accounts
from safecity.accounts.models import Role
from safecity.core.context import Context
from safecity.server import create_app
from safecity.settings import Settings
from tests.conftest import make_user

#: Generated examples per operation (schemathesis's boundary cases come on top); FUZZ_EXAMPLES widens it.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "6"))


def published_openapi() -> dict[str, Any]:
    """The OpenAPI document the app publishes (routes only: no database or bus is started for it)."""
    with tempfile.TemporaryDirectory() as folder:
        context = Context.create(Settings(data_dir=Path(folder)), migrate=False)
        try:
            return create_app(context).openapi()
        finally:
            context.db.dispose()


schema = schemathesis.openapi.from_dict(published_openapi())


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Context, str]]:
    """The app under fuzzing, its context and an admin's user name; its lifespan ends with the module."""
    context = Context.create(Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "data"))
    admin = make_user(context, Role.admin, "fuzz-admin")
    yield create_app(context), context, admin
    shutdown_lifespans()  # schemathesis started the app's lifespan (bus, consumers, jobs) on first call
    context.db.dispose()


def fresh_token(context: Context, username: str) -> str:
    """A new admin token per case: a fuzzed sign-out or revocation must not end the run's authority."""
    with context.db.session() as session:
        user = accounts.get_by_username(session, username)
        token, _ = accounts.issue_token(session, user, kind="api", hours=1)
    return token


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_makes_the_server_fail(
    case: schemathesis.Case, fuzz_app: tuple[Any, Context, str]
) -> None:
    app, context, admin = fuzz_app
    for who, headers in (
        ("admin", {"Authorization": f"Bearer {fresh_token(context, admin)}"}),
        ("anonymous", {}),
    ):
        response = case.call(app=app, base_url="http://testserver", headers=headers)
        assert response.status_code < 500, (
            f"{who}: {case.method} {case.formatted_path} answered {response.status_code}\n"
            f"{case.as_curl_command()}\n{response.text[:2000]}"
        )
        assert "Traceback (most recent call last)" not in response.text, f"{who}: a traceback in {case.path}"
