"""The audit log's HMAC keys: kept outside the database, oldest first, the newest signing.

A key is named by an id derived from it (rows store the id, never the key), so keys given in the
environment are named the same way as keys in a file. A key file is 0600 and rewritten atomically on
rotation; every process notices the new file the next time it signs a row.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from safecity.core.clock import utcnow
from safecity.core.errors import InvalidInput

KEY_BYTES = 32
HEADER = (
    "# SafeCity audit keys: oldest first, the newest signs new rows. Keep this file mode 0600, away\n"
    "# from the database, and back it up: without a key its rows can no longer be verified.\n"
    "# <key id> <created (UTC)> <key, base64>\n"
)


def key_id(secret: bytes) -> str:
    """Returns the public name of a key: a fingerprint that reveals nothing of the key itself."""
    return "k" + hashlib.sha256(b"safecity-audit-key-id\x00" + secret).hexdigest()[:15]


@dataclass(frozen=True)
class AuditKey:
    """One HMAC key of the audit log."""

    id: str
    secret: bytes
    created: datetime | None = None

    def sign(self, purpose: bytes, body: bytes) -> str:
        """Returns the hex HMAC-SHA256 of `body` for `purpose` (rows and checkpoints never share a MAC)."""
        return hmac.new(self.secret, purpose + b"\x00" + body, hashlib.sha256).hexdigest()


def new_key() -> AuditKey:
    """Returns a fresh random key."""
    secret = secrets.token_bytes(KEY_BYTES)
    return AuditKey(key_id(secret), secret, utcnow())


def encode(key: AuditKey) -> str:
    """Returns the key as base64, the form SAFECITY_AUDIT_KEY and key files hold."""
    return base64.b64encode(key.secret).decode()


def _decode(text: str, where: str) -> bytes:
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            f"{where}: not a base64 key", hint="make one with `safecity audit new-key`"
        ) from None
    if len(secret) < KEY_BYTES:
        raise InvalidInput(
            f"{where}: a key of {len(secret)} bytes is too short (at least {KEY_BYTES})",
            hint="make one with `safecity audit new-key`",
        )
    return secret


class Keyring:
    """The keys of the audit log, from a file or the environment; `current` signs."""

    def __init__(self, keys: list[AuditKey], *, path: Path | None = None, source: str = "") -> None:
        if not keys:
            raise InvalidInput(
                f"{source or path}: holds no audit key", hint="add one with `safecity audit new-key`"
            )
        self.keys = keys
        self.path = path
        self.source = source or str(path)
        self._stamp = _stamp(path) if path else None
        self._lock = threading.Lock()

    @property
    def current(self) -> AuditKey:
        """Returns the key new rows are signed with (the newest)."""
        return self.keys[-1]

    def get(self, kid: str) -> AuditKey | None:
        """Returns the key named `kid`, or None when this keyring does not hold it."""
        return next((k for k in self.keys if k.id == kid), None)

    def age(self, kid: str) -> int:
        """Returns the position of `kid` in the ring (0: oldest), or -1."""
        return next((i for i, k in enumerate(self.keys) if k.id == kid), -1)

    def refresh(self) -> None:
        """Re-reads the key file if it was replaced (a rotation by another process)."""
        if self.path is None:
            return
        with self._lock:
            stamp = _stamp(self.path)
            if stamp != self._stamp:
                self.keys = read_key_file(self.path)
                self._stamp = stamp

    @classmethod
    def from_env(cls, value: str) -> Keyring:
        """Returns the keys given as comma-separated base64 (oldest first)."""
        parts = [p for p in value.split(",") if p.strip()]
        keys = [AuditKey(key_id(s), s) for s in (_decode(p, "SAFECITY_AUDIT_KEY") for p in parts)]
        return cls(keys, source="SAFECITY_AUDIT_KEY")

    @classmethod
    def from_file(cls, path: Path, *, create: bool) -> Keyring:
        """Returns the keys of `path`; `create` makes the file with one new key when there is none."""
        if create and not path.exists():
            # Another process may make it at the same moment: then theirs is used.
            with contextlib.suppress(FileExistsError):
                write_key_file(path, [new_key()], exclusive=True)
        if not path.exists():
            raise InvalidInput(
                f"audit key file {path} does not exist",
                hint=f"create it once with `safecity audit new-key --key-file {path}` and copy it (mode "
                "0600) to every serve host",
            )
        return cls(read_key_file(path), path=path)

    def rotate(self) -> AuditKey:
        """Adds a new key to the file; it signs from now on, the older ones stay to verify old rows."""
        if self.path is None:
            raise InvalidInput(
                f"the audit keys come from {self.source}, which this command cannot change",
                hint="add a key from `safecity audit new-key --print` at the end of SAFECITY_AUDIT_KEY on "
                "every host and restart them",
            )
        with self._lock:
            key = new_key()
            keys = [*read_key_file(self.path), key]
            write_key_file(self.path, keys, exclusive=False)
            self.keys = keys
            self._stamp = _stamp(self.path)
        return key


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def read_key_file(path: Path) -> list[AuditKey]:
    """Reads a key file, refusing one that others may read."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"audit key file {path} cannot be read: {exc.strerror}") from None
    if mode & 0o077:
        raise InvalidInput(
            f"audit key file {path} may be read by others (mode {mode:04o})", hint=f"chmod 600 {path}"
        )
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3:
            raise InvalidInput(f"{path} line {number}: expected '<key id> <created> <key>'")
        secret = _decode(fields[2], f"{path} line {number}")
        if key_id(secret) != fields[0]:
            raise InvalidInput(f"{path} line {number}: the key does not match its id {fields[0]}")
        try:
            created: datetime | None = datetime.fromisoformat(fields[1])
        except ValueError:
            created = None
        keys.append(AuditKey(fields[0], secret, created))
    return keys


def write_key_file(path: Path, keys: list[AuditKey], *, exclusive: bool) -> None:
    """Writes `keys` to `path` (mode 0600) atomically; `exclusive` fails if the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = HEADER + "".join(
        f"{k.id} {(k.created or utcnow()).isoformat(timespec='seconds')} {encode(k)}\n" for k in keys
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-keys-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if another process made the file meanwhile
        else:
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
