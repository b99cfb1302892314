"""The secret key signs something real and cannot be a known one; `serve` speaks HTTPS when given a
certificate, with Secure cookies and HSTS.

Issue 16: `secret_key` was unused, a default key went unnoticed, and `serve` had no TLS option.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from safecity.cli import app as cli
from safecity.core import security
from safecity.core.context import Context
from safecity.core.errors import InvalidInput, SafeCityError
from safecity.settings import Settings
from tests.browser import free_port
from tests.conftest import PASSWORD, make_user

GOOD_KEY = "Xq3v" * 12


def test_embedded_makes_a_key_once_in_the_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first = security.secret_key(settings)
    assert len(first) >= 32 and first == security.secret_key(settings)
    mode = stat.S_IMODE((tmp_path / "data" / security.SECRET_FILE).stat().st_mode)
    assert mode == 0o600
    assert security.secret_key(Settings(data_dir=tmp_path / "other")) != first


@pytest.mark.parametrize("bus", ["memory", "nats"])
def test_example_keys_are_refused_everywhere(tmp_path: Path, bus: str) -> None:
    for example in ("CHANGE-ME-long-random-string", "secret", "changeme"):
        with pytest.raises(InvalidInput, match="example value") as caught:
            security.secret_key(Settings(data_dir=tmp_path, bus=bus, secret_key=example))  # type: ignore[arg-type]
        assert "SAFECITY_SECRET_KEY" in str(caught.value) and "token_urlsafe" in str(caught.value)


def test_a_city_needs_its_own_long_key(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not set"):
        security.secret_key(Settings(data_dir=tmp_path, bus="nats"))
    with pytest.raises(InvalidInput, match="32 or more"):
        security.secret_key(Settings(data_dir=tmp_path, bus="nats", secret_key="short-but-not-example"))
    assert (
        security.secret_key(Settings(data_dir=tmp_path, bus="nats", secret_key=GOOD_KEY)) == GOOD_KEY.encode()
    )


def test_serve_in_a_city_without_a_key_stops_with_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SAFECITY_BUS", "nats")
    monkeypatch.delenv("SAFECITY_SECRET_KEY", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--no-workers", "--port", str(free_port())])
    assert result.exit_code == 1
    assert "SAFECITY_SECRET_KEY is not set" in result.output and "token_urlsafe" in result.output


def test_the_key_signs_csrf_tokens_and_tickets(tmp_path: Path) -> None:
    key = security.secret_key(Settings(data_dir=tmp_path))
    assert security.csrf_valid(key, "session-a", security.csrf_token(key, "session-a"))
    assert not security.csrf_valid(key, "session-b", security.csrf_token(key, "session-a"))
    assert not security.csrf_valid(b"another key" * 4, "session-a", security.csrf_token(key, "session-a"))
    signed = security.sign(key, "live", {"u": "ali"}, ttl_s=30)
    assert security.unsign(key, "live", signed)["u"] == "ali"
    with pytest.raises(SafeCityError, match="not one SafeCity issued"):  # signed for another purpose
        security.unsign(key, "other", signed)


def test_half_a_tls_pair_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["serve", "--no-workers", "--ssl-certfile", str(tmp_path / "cert.pem")])
    assert result.exit_code == 1 and "both a certificate and its private key" in result.output
    (tmp_path / "cert.pem").write_text("x")
    result = CliRunner().invoke(
        cli,
        ["serve", "--no-workers", "--ssl-certfile", str(tmp_path / "cert.pem"), "--ssl-keyfile", "/nope.pem"],
    )
    assert result.exit_code == 1 and "/nope.pem does not exist" in result.output


@pytest.fixture
def https_serve(tmp_path: Path) -> Iterator[str]:
    """`safecity serve --ssl-certfile … --ssl-keyfile …` on a free port, with a self-signed certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    data = tmp_path / "data"
    ctx = Context.create(Settings(data_dir=data))
    make_user(ctx, "operator", "tls.user")
    ctx.db.dispose()
    port = free_port()
    env = {**os.environ, "SAFECITY_DATA_DIR": str(data), "SAFECITY_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "safecity.cli", "serve", "--no-workers", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz", verify=False, timeout=2)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"serve did not start: {process.stderr.read() if process.stderr else ''}"
                    ) from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(20)


def test_serve_speaks_https_with_secure_cookies_and_hsts(https_serve: str) -> None:
    url = https_serve
    with httpx.Client(verify=False, base_url=url) as client:
        health = client.get("/healthz")
        assert health.status_code == 200 and "max-age=" in health.headers["strict-transport-security"]
        signed = client.post("/api/login", json={"username": "tls.user", "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        cookie = next(
            v for k, v in signed.headers.multi_items() if k == "set-cookie" and "safecity_session" in v
        )
        assert "Secure" in cookie and "HttpOnly" in cookie
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets nothing
        httpx.get(url.replace("https", "http") + "/healthz", timeout=5).raise_for_status()
