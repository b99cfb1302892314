"""Body limits: a body over its route's limit gets 413 before it is read; a stranger's upload is refused
before a byte of it is spooled.

Issue 16: a 200 MB anonymous JSON body to the portal was parsed in full; 300 MB anonymous multipart
uploads were spooled to disk before the 401. These tests talk HTTP over a socket to the real server,
send only the headers (or a few chunks), and read the answer that comes back meanwhile.
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from safecity.core.context import Context
from tests.browser import LiveServer
from tests.conftest import auth_headers
from tests.security.conftest import page_token, sign_in


def exchange(
    server: LiveServer, head: str, chunks: list[bytes] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Sends a request head (and optional chunks of a chunked body), returns the answer's status,
    headers and body; stops sending as soon as the server answers."""
    where = urlsplit(server.url)
    with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode())
        sock.settimeout(0.2)
        answer = b""
        for chunk in chunks or []:
            try:
                answer += sock.recv(65536)
                break  # answered: the server stopped reading
            except TimeoutError:
                pass
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(10)
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
    head_bytes, _, body = answer.partition(b"\r\n\r\n")
    lines = head_bytes.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def request_head(method: str, path: str, server: LiveServer, *lines: str) -> str:
    host = urlsplit(server.url).netloc
    return "\n".join([f"{method} {path} HTTP/1.1", f"Host: {host}", *lines, ""]) + "\n"


def test_a_declared_200_mb_anonymous_body_to_the_portal_gets_413_unread(live_server: LiveServer) -> None:
    head = request_head(
        "POST",
        "/api/portal/lookup",
        live_server,
        "Content-Type: application/json",
        f"Content-Length: {200 * 1024**2}",
    )
    status, headers, body = exchange(live_server, head)  # not one byte of the body sent
    assert status == 413
    assert "not signed in" in json.loads(body)["detail"] and headers.get("connection") == "close"


def test_a_chunked_anonymous_body_is_cut_off_at_the_limit(live_server: LiveServer) -> None:
    head = request_head(
        "POST",
        "/api/portal/lookup",
        live_server,
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
    )
    chunks = [b"[" + b"1," * 4095] * 2000  # 16 MB offered in 8 KiB chunks
    status, _, body = exchange(live_server, head, chunks)
    assert status == 413 and json.loads(body)["error"] == "body_too_large"


def test_an_anonymous_300_mb_upload_is_refused_before_it_is_spooled(live_server: LiveServer) -> None:
    status, _, _ = exchange(
        live_server,
        request_head(
            "POST",
            "/api/plates/hotlist/import",
            live_server,
            "Content-Type: multipart/form-data; boundary=x",
            f"Content-Length: {300 * 1024**2}",
        ),
    )
    assert status == 413
    # With a made-up session cookie (and a made-up bearer token) the credentials are checked first.
    for credentials in ("Cookie: safecity_session=made-up", "Authorization: Bearer made-up"):
        lines = [
            "Content-Type: multipart/form-data; boundary=x",
            f"Content-Length: {30 * 1024**2}",
            credentials,
        ]
        if credentials.startswith("Cookie"):
            lines.append("X-CSRF-Token: whatever")
        status, _, body = exchange(
            live_server, request_head("POST", "/api/faces/search", live_server, *lines)
        )
        assert status in (401, 403), (credentials, status, body)


def test_a_forged_cookie_upload_is_refused_before_it_is_read(live_server: LiveServer) -> None:
    from safecity.core import security

    # A cookie that passes the CSRF check (its token made with the real key) but is no session at all.
    key = security.secret_key(live_server.ctx.settings)
    lines = [
        "Content-Type: multipart/form-data; boundary=x",
        f"Content-Length: {30 * 1024**2}",
        "Cookie: safecity_session=made-up",
        f"X-CSRF-Token: {security.csrf_token(key, 'made-up')}",
    ]
    status, _, body = exchange(live_server, request_head("POST", "/api/faces/search", live_server, *lines))
    assert status == 401 and "before an upload" in json.loads(body)["detail"]


def test_signed_in_limits_by_route(ctx: Context, client: TestClient) -> None:
    headers = auth_headers(ctx, "supervisor")
    big_json = client.post("/api/plates/hotlist", content=b"{" + b" " * (2 * 1024**2) + b"}", headers=headers)
    assert big_json.status_code == 413 and "SAFECITY_MAX_BODY_BYTES" in big_json.json()["hint"]
    # An upload route takes more than a JSON route: a 2 MB CSV is read (and judged on its content).
    csv = b"plate,list_name,reason\n" + b"LEA4521,stolen,FIR 1\n" * 100_000
    upload = client.post("/api/plates/hotlist/import", files={"file": ("list.csv", csv)}, headers=headers)
    assert upload.status_code != 413, upload.text
    assert client.post("/api/portal/lookup", content=b"x" * 20_000, headers=headers).status_code == 413


def test_a_signed_in_page_upload_with_its_token_passes_the_limits(ctx: Context, client: TestClient) -> None:
    sign_in(client, ctx, "supervisor")
    token = page_token(client, "/plates")
    csv = b"plate,list_name,reason\nLEA4521,stolen,FIR 1\n"
    upload = client.post(
        "/api/plates/hotlist/import", files={"file": ("l.csv", csv)}, headers={"X-CSRF-Token": token}
    )
    assert upload.status_code == 200, upload.text


def test_a_content_length_that_is_no_number_gets_400(live_server: LiveServer) -> None:
    status, _, _ = exchange(
        live_server, request_head("POST", "/api/portal/lookup", live_server, "Content-Length: lots")
    )
    assert status == 400
