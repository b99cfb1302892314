"""The HTTP perimeter: the secret key, CSRF tokens, signed tickets, security headers and body limits.

Three ASGI middlewares wrap the app (outermost first): `SecurityHeaders` puts a strict policy on every
response, errors included; `CsrfGuard` refuses a state change that a page of another origin could have
sent; `BodyLimit` answers 413 before reading a body larger than its route allows, counting streamed
bytes too, and checks the credentials of a large upload before a byte of it is spooled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from safecity.core.errors import InvalidInput, Unauthorized
from safecity.core.http import client_address, is_https, public_host, request_scheme
from safecity.settings import Settings

log = logging.getLogger(__name__)

# --- the secret key ---------------------------------------------------------------------------------

SECRET_FILE = "secret.key"
CITY_KEY_MIN = 32
# Values from examples and habits; a key anyone can read in a repository signs nothing.
EXAMPLE_KEYS = frozenset(
    {"secret", "secret-key", "secretkey", "changeme", "change-me", "safecity", "password", "dev", "test"}
)
KEY_HINT = (
    "set SAFECITY_SECRET_KEY to a long random string, the same on every serve "
    "(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
)


def secret_key(settings: Settings) -> bytes:
    """Returns the key that signs CSRF tokens and live tickets; refuses one that protects nothing.

    Embedded, an empty setting means a key generated once into the data folder (mode 0600). A city
    (bus=nats) runs several serves that must agree, so it needs the setting, 32 characters or more.
    An example value (`CHANGE-ME…`, `secret`…) is refused everywhere; the demo passes none.
    """
    key = _plain(settings.secret_key)
    city = settings.bus == "nats"
    if key:
        if key.strip().lower() in EXAMPLE_KEYS or key.strip().upper().startswith("CHANGE-ME"):
            raise InvalidInput("SAFECITY_SECRET_KEY is an example value, known to anyone", hint=KEY_HINT)
        if city and len(key) < CITY_KEY_MIN:
            raise InvalidInput(
                f"SAFECITY_SECRET_KEY has {len(key)} characters; a city needs {CITY_KEY_MIN} or more",
                hint=KEY_HINT,
            )
        return key.encode()
    if city:
        raise InvalidInput(
            "SAFECITY_SECRET_KEY is not set: the serves of a city must sign with one shared key",
            hint=KEY_HINT,
        )
    return _generated_key(settings)


def metrics_token(settings: Settings) -> str | None:
    """Returns the token that reads /metrics (None: none); refuses an example value."""
    token = _plain(settings.metrics_token)
    if token and token.strip().upper().startswith("CHANGE-ME"):
        raise InvalidInput(
            "SAFECITY_METRICS_TOKEN is an example value, known to anyone",
            hint="set it to a long random string and give Prometheus the same",
        )
    return token or None


def _plain(value: object) -> str:
    """Returns a setting's text, whether it is a plain string or a pydantic SecretStr."""
    if value is None:
        return ""
    reveal = getattr(value, "get_secret_value", None)
    return str(reveal() if callable(reveal) else value)


def _generated_key(settings: Settings) -> bytes:
    path = settings.data_dir / SECRET_FILE
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        if len(key) < CITY_KEY_MIN:
            raise InvalidInput(
                f"{path} holds no usable key ({len(key)} bytes)", hint="delete it to have a new one made"
            ) from None
        return key
    with os.fdopen(fd, "wb") as handle:
        key = secrets.token_urlsafe(48).encode()
        handle.write(key + b"\n")
    return key


# --- tokens and tickets -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, data: bytes) -> bytes:
    return hmac.new(key, purpose.encode() + b"\0" + data, hashlib.sha256).digest()


def csrf_token(key: bytes, session_token: str) -> str:
    """Returns the CSRF token of a web session: an HMAC of the session, so it changes with each sign-in."""
    return _b64(_mac(key, "csrf", session_token.encode()))


def csrf_valid(key: bytes, session_token: str, presented: str) -> bool:
    """Returns whether `presented` is the CSRF token of `session_token` (compared in constant time)."""
    return bool(presented) and hmac.compare_digest(csrf_token(key, session_token), presented)


def sign(key: bytes, purpose: str, payload: dict[str, Any], *, ttl_s: float) -> str:
    """Returns `payload` signed for `purpose`, valid for `ttl_s` seconds (base64url JSON and its HMAC)."""
    body = json.dumps({**payload, "exp": int(time.time() + ttl_s)}, separators=(",", ":")).encode()
    return f"{_b64(body)}.{_b64(_mac(key, purpose, body))}"


def unsign(key: bytes, purpose: str, signed: str) -> dict[str, Any]:
    """Returns the payload of a value `sign` made for `purpose`; raises Unauthorized if forged or expired."""
    try:
        body_text, mac_text = signed.split(".", 1)
        body = _unb64(body_text)
        good = hmac.compare_digest(_mac(key, purpose, body), _unb64(mac_text))
        payload = json.loads(body) if good else None
    except (ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        raise Unauthorized("this ticket is not one SafeCity issued", hint="ask for a new one")
    if not isinstance(payload.get("exp"), int) or payload["exp"] < time.time():
        raise Unauthorized("this ticket has expired", hint="ask for a new one (they last seconds)")
    return payload


# --- where a request comes from ---------------------------------------------------------------------

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _host_port(netloc: str, scheme: str) -> tuple[str, int | None]:
    parts = urlsplit(f"//{netloc}")
    try:
        port = parts.port
    except ValueError:
        return netloc, None
    return (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


def foreign_origin(connection: HTTPConnection) -> str | None:
    """Returns the other origin (or site) a browser says this request comes from; None if from ours.

    Browsers send Origin on every cross-origin POST and WebSocket; a page on another port of the same
    host is another origin. Without Origin, Sec-Fetch-Site still tells; a client that sends neither is
    not a browser, and has no cookies of our users to abuse.
    """
    origin = connection.headers.get("origin")
    if origin is not None:
        if origin.strip().lower() == "null":
            return "an opaque origin (null)"
        theirs = urlsplit(origin.strip())
        scheme = request_scheme(connection)
        ours = _host_port(public_host(connection), scheme)
        if not theirs.netloc or _host_port(theirs.netloc, theirs.scheme or scheme) != ours:
            return origin
        return None
    site = connection.headers.get("sec-fetch-site", "").lower()
    if site in ("cross-site", "same-site"):
        return f"a {site} page"
    return None


# --- responses made here ----------------------------------------------------------------------------


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: Iterable[tuple[str, str]] = ()
) -> None:
    """Sends a complete JSON response (for middleware that answers before the app)."""
    content = json.dumps(body).encode()
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
        *((k.encode(), v.encode()) for k, v in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


# --- security headers -------------------------------------------------------------------------------

CSP = (
    # blob: for live video: Media Source Extensions play from a blob URL, and pictures come as blobs.
    # data: images for the map: Leaflet empties a tile it stops loading with a 1-pixel data: GIF.
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "media-src 'self' blob:; "
    "connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    # same-origin keeps the Origin header on our own POSTs (no-referrer would turn it into "null").
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)
# The one page that may ask for the position: the officer's phone reports where its unit is.
GEOLOCATION_POLICY = "camera=(), microphone=(), geolocation=(self), payment=()"
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """Puts the security headers on every HTTP response (a response's own CSP wins), HSTS under TLS.

    An exception escaping the app is answered here with a JSON 500 carrying the same headers, then
    re-raised for the server's log.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = is_https(HTTPConnection(scope))
        api = scope.get("path", "").startswith("/api/")
        started = False

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS:
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("strict-transport-security", HSTS)
                if api:  # personal data in API answers: never kept by a browser or a proxy
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        try:
            await self.app(scope, receive, with_headers)
        except Exception:
            if not started:
                await send_json(
                    with_headers,
                    500,
                    {
                        "error": "internal_error",
                        "detail": "the server failed on this request; the cause is in its log",
                        "hint": "try again; if it keeps failing, tell the administrator",
                    },
                )
            raise


def docs_csp(html: str) -> str:
    """Returns the CSP of an API documentation page: its own inline scripts by hash, its own assets only.

    The assets are served by the app (`/static/apidocs`), so the page reaches nothing outside it.
    """
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, flags=re.S)
    ]
    return (
        f"default-src 'self'; script-src 'self' {' '.join(hashes)}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
        "worker-src 'self' blob:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


class RedactSecretsInAccessLog(logging.Filter):
    """Blanks tickets and tokens in the query strings the access log writes (uvicorn.access)."""

    PARAMS = re.compile(r"([?&](?:ticket|token|t|access_token)=)[^&\s]*", flags=re.I)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], self.PARAMS.sub(r"\1…", args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    """Installs `RedactSecretsInAccessLog` on uvicorn's access log, once."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSecretsInAccessLog) for f in logger.filters):
        logger.addFilter(RedactSecretsInAccessLog())


# --- CSRF -------------------------------------------------------------------------------------------

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "x-csrf-token"


def bearer_token(connection: HTTPConnection) -> str:
    """Returns the bearer token of the Authorization header ('' without one)."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class CsrfGuard:
    """Refuses a state change that a page of another origin could have made in a user's name.

    A request with a bearer token passes (no browser adds one to a cross-origin request). Any other
    POST/PUT/PATCH/DELETE must not come from another origin, and, when it carries the session cookie,
    must carry the session's CSRF token in X-CSRF-Token (the pages read it from their
    `<meta name="csrf-token">`). `token_free` paths (sign-in) need only the origin check.
    """

    def __init__(self, app: ASGIApp, *, key: bytes, cookie: str, token_free: frozenset[str]) -> None:
        self.app = app
        self.key = key
        self.cookie = cookie
        self.token_free = token_free

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if bearer_token(connection):
            await self.app(scope, receive, send)
            return
        foreign = foreign_origin(connection)
        if foreign is not None:
            self._refused(connection, f"sent from {foreign}")
            await send_json(
                send,
                403,
                {
                    "error": "cross_origin",
                    "detail": f"a change sent from another site is refused (it came from {foreign})",
                    "hint": "use the SafeCity pages themselves; behind a reverse proxy, list it in "
                    "SAFECITY_TRUSTED_PROXIES and pass the Host header",
                },
            )
            return
        session = connection.cookies.get(self.cookie)
        presented = connection.headers.get(CSRF_HEADER, "")
        if session and scope["path"] not in self.token_free and not csrf_valid(self.key, session, presented):
            self._refused(connection, "no valid CSRF token")
            await send_json(
                send,
                403,
                {
                    "error": "csrf_failed",
                    "detail": "the page's security token (X-CSRF-Token) is missing or is another sign-in's",
                    "hint": "reload the page and try again; API clients send Authorization: Bearer <token>",
                },
            )
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _refused(connection: HTTPConnection, why: str) -> None:
        # A forged request is an attack on a user: the log says on whom and from where.
        log.warning(
            "refused %s %s from %s: %s",
            connection.scope["method"],
            connection.url.path,
            client_address(connection),
            why,
        )


# --- body limits ------------------------------------------------------------------------------------


class BodyTooLarge(HTTPException):
    """The body grew past the route's limit while being read."""


@dataclass
class BodyPolicy:
    """How much body a request may send, decided from its headers and its route before reading it.

    `routes(scope)` returns whether the route is anonymous (needs no sign-in) and whether it takes
    uploads; `credentials(connection)` whether the request carries any; `verify(connection)` whether
    they are valid (checked before an upload is read, so a stranger's file is never spooled).
    """

    json_bytes: int
    upload_bytes: int
    anonymous_bytes: int
    routes: Callable[[Scope], tuple[bool, bool]]
    credentials: Callable[[HTTPConnection], bool]
    verify: Callable[[HTTPConnection], Awaitable[bool]]

    def limit(self, scope: Scope, connection: HTTPConnection) -> tuple[int, str, bool]:
        """Returns (limit, what it is, whether credentials must be verified before reading)."""
        anonymous_route, upload = self.routes(scope)
        if anonymous_route or not self.credentials(connection):
            return self.anonymous_bytes, "anonymous", False
        if upload:
            return self.upload_bytes, "upload", True
        return self.json_bytes, "json", False


LIMIT_HINTS = {
    "anonymous": "sign in first; requests without credentials may send only a small body "
    "(SAFECITY_MAX_ANONYMOUS_BODY_BYTES)",
    "upload": "send a smaller file, or split it (the limit is SAFECITY_MAX_UPLOAD_BYTES)",
    "json": "send less at once, e.g. in pages (the limit is SAFECITY_MAX_BODY_BYTES)",
}


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


class BodyLimit:
    """Answers 413 before reading a body over its route's limit; counts chunked bodies as they stream."""

    def __init__(self, app: ASGIApp, *, policy: BodyPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        length_header = connection.headers.get("content-length")
        chunked = "chunked" in connection.headers.get("transfer-encoding", "").lower()
        if length_header is None and not chunked:
            await self.app(scope, receive, send)  # no body
            return
        try:
            length = int(length_header) if length_header is not None else None
        except ValueError:
            length = -1
        if length is not None and length < 0:
            await send_json(
                send,
                400,
                {"error": "invalid_input", "detail": "Content-Length is not a byte count", "hint": "fix it"},
            )
            return
        if length == 0:
            await self.app(scope, receive, send)
            return
        limit, kind, verify = self.policy.limit(scope, connection)
        too_large = {
            "error": "body_too_large",
            "detail": f"the request body is over {_size(limit)}, the most this route takes"
            + (" from a caller who is not signed in" if kind == "anonymous" else ""),
            "hint": LIMIT_HINTS[kind],
        }
        if length is not None and length > limit:
            await send_json(send, 413, too_large, [("connection", "close")])
            return
        large = length is None or length > self.policy.anonymous_bytes
        if verify and large and not await self.policy.verify(connection):
            await send_json(
                send,
                401,
                {
                    "error": "unauthorized",
                    "detail": "sign-in required before an upload (your session or token is not valid)",
                    "hint": "sign in again, or send a valid 'Authorization: Bearer <token>'",
                },
                [("connection", "close")],
            )
            return
        received = 0
        exceeded = False
        answered = False
        started = False

        async def counted() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge(413, too_large["detail"])
            return message

        async def guarded(message: Message) -> None:
            nonlocal answered, started
            if not exceeded:
                started = started or message["type"] == "http.response.start"
                await send(message)
            elif not answered and message["type"] == "http.response.start":
                answered = True  # the app's own answer to the aborted read is replaced by ours
                await send_json(send, 413, too_large, [("connection", "close")])

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not answered and not started:
            await send_json(send, 413, too_large, [("connection", "close")])
