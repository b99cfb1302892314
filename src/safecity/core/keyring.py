"""Key files and keyrings: secrets kept outside the database, oldest first, the newest in use.

A key is named by an id derived from it (what it protects stores the id, never the key), so keys given
in the environment are named the same way as keys in a file. A key file is `<id> <created> <key,
base64>` per line, mode 0600 (refused when others may read it, naming the `chmod`), and rewritten
atomically when a key is added or retired; a keyring notices a replaced file at its next `refresh`.

    ring = Keyring.from_file(Path("/etc/safecity/data.keys"), kind=DATA_KEYS, create=False)
    ring.current.secret                     # the newest key: it protects new data
    ring.get("d3f0c…")                      # an older one, to read what it protected
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
from typing import Self

from safecity.core.clock import utcnow
from safecity.core.errors import InvalidInput

KEY_BYTES = 32


@dataclass(frozen=True)
class KeyKind:
    """What a keyring holds: how its ids are derived and what its messages call it."""

    name: str  # "data key"
    id_prefix: str  # one letter before the fingerprint, so ids of different kinds never look alike
    id_label: bytes  # mixed into the fingerprint, so one secret has a different id in each kind
    env_var: str  # the variable that gives the keys themselves
    file_var: str  # the variable that names the key file
    new_key_command: str  # the command that makes a key file (or prints a key)
    header: str  # the comment at the top of a key file


@dataclass(frozen=True)
class Key:
    """One secret of a keyring and its public id."""

    id: str
    secret: bytes
    created: datetime | None = None

    def sign(self, purpose: bytes, body: bytes) -> str:
        """Returns the hex HMAC-SHA256 of `body` for `purpose` (two purposes never share a MAC)."""
        return hmac.new(self.secret, purpose + b"\x00" + body, hashlib.sha256).hexdigest()


def key_id(kind: KeyKind, secret: bytes) -> str:
    """Returns the public name of a key: a fingerprint that reveals nothing of the key itself."""
    return kind.id_prefix + hashlib.sha256(kind.id_label + b"\x00" + secret).hexdigest()[:15]


def new_key(kind: KeyKind) -> Key:
    """Returns a fresh random key of `kind`."""
    secret = secrets.token_bytes(KEY_BYTES)
    return Key(key_id(kind, secret), secret, utcnow())


def encode(key: Key) -> str:
    """Returns the key as base64, the form key files and the key variables hold."""
    return base64.b64encode(key.secret).decode()


def decode(kind: KeyKind, text: str, where: str) -> bytes:
    """Returns the secret of a base64 key, or raises InvalidInput naming `where`."""
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            f"{where}: not a base64 key", hint=f"make one with `{kind.new_key_command}`"
        ) from None
    if len(secret) < KEY_BYTES:
        raise InvalidInput(
            f"{where}: a key of {len(secret)} bytes is too short (at least {KEY_BYTES})",
            hint=f"make one with `{kind.new_key_command}`",
        )
    return secret


class Keyring:
    """The keys of one kind, from a file or the environment; `current` (the newest) is in use."""

    def __init__(self, keys: list[Key], *, kind: KeyKind, path: Path | None = None, source: str = "") -> None:
        if not keys:
            raise InvalidInput(
                f"{source or path}: holds no {kind.name}", hint=f"add one with `{kind.new_key_command}`"
            )
        self.kind = kind
        self.keys = keys
        self.path = path
        self.source = source or str(path)
        self._stamp = _stamp(path) if path else None
        self._lock = threading.Lock()

    @property
    def current(self) -> Key:
        """Returns the key new data is protected with (the newest)."""
        return self.keys[-1]

    def get(self, kid: str) -> Key | None:
        """Returns the key named `kid`, or None when this keyring does not hold it."""
        return next((k for k in self.keys if k.id == kid), None)

    def refresh(self) -> bool:
        """Re-reads the key file if it was replaced (a key added or retired by another process)."""
        if self.path is None:
            return False
        with self._lock:
            stamp = _stamp(self.path)
            if stamp == self._stamp:
                return False
            self.keys = read_key_file(self.path, self.kind)
            self._stamp = stamp
        return True

    @classmethod
    def from_env(cls, value: str, *, kind: KeyKind) -> Self:
        """Returns the keys given as comma-separated base64 (oldest first)."""
        parts = [p for p in value.split(",") if p.strip()]
        secrets_ = [decode(kind, p, kind.env_var) for p in parts]
        return cls([Key(key_id(kind, s), s) for s in secrets_], kind=kind, source=kind.env_var)

    @classmethod
    def from_file(cls, path: Path, *, kind: KeyKind, create: bool) -> Self:
        """Returns the keys of `path`; `create` makes the file with one new key when there is none."""
        if create and not path.exists():
            # Another process may make it at the same moment: then theirs is used.
            with contextlib.suppress(FileExistsError):
                write_key_file(path, [new_key(kind)], kind=kind, exclusive=True)
        if not path.exists():
            raise InvalidInput(
                f"{kind.name} file {path} does not exist",
                hint=f"create it once with `{kind.new_key_command} --key-file {path}` and copy it (mode "
                "0600) to every host",
            )
        return cls(read_key_file(path, kind), kind=kind, path=path)

    def add(self) -> Key:
        """Adds a new key to the file; it is in use from now on, the older ones stay to read old data."""
        path = self._writable("add a key")
        with self._lock:
            key = new_key(self.kind)
            keys = [*read_key_file(path, self.kind), key]
            write_key_file(path, keys, kind=self.kind, exclusive=False)
            self.keys, self._stamp = keys, _stamp(path)
        return key

    def retire(self, kids: set[str]) -> list[Key]:
        """Removes the keys named `kids` from the file (never the current one); returns those removed."""
        path = self._writable("retire a key")
        with self._lock:
            keys = read_key_file(path, self.kind)
            if keys[-1].id in kids:
                raise InvalidInput(
                    f"{keys[-1].id} is the {self.kind.name} in use and cannot be retired",
                    hint="add a new key first",
                )
            gone = [k for k in keys if k.id in kids]
            kept = [k for k in keys if k.id not in kids]
            if gone:
                write_key_file(path, kept, kind=self.kind, exclusive=False)
            self.keys, self._stamp = kept, _stamp(path)
        return gone

    def _writable(self, what: str) -> Path:
        if self.path is None:
            raise InvalidInput(
                f"the {self.kind.name}s come from {self.source}, which this command cannot change",
                hint=f"to {what}, change {self.kind.env_var} on every host (a new key from "
                f"`{self.kind.new_key_command} --print` goes at the end) and restart them",
            )
        return self.path


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def read_key_file(path: Path, kind: KeyKind) -> list[Key]:
    """Reads a key file, refusing one that others may read."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(f"{kind.name} file {path} cannot be read: {exc.strerror}") from None
    if mode & 0o077:
        raise InvalidInput(
            f"{kind.name} file {path} may be read by others (mode {mode:04o}); refusing to use it",
            hint=f"chmod 600 {path}",
        )
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3:
            raise InvalidInput(f"{path} line {number}: expected '<key id> <created> <key>'")
        secret = decode(kind, fields[2], f"{path} line {number}")
        if key_id(kind, secret) != fields[0]:
            raise InvalidInput(f"{path} line {number}: the key does not match its id {fields[0]}")
        try:
            created: datetime | None = datetime.fromisoformat(fields[1])
        except ValueError:
            created = None
        keys.append(Key(fields[0], secret, created))
    return keys


def write_key_file(path: Path, keys: list[Key], *, kind: KeyKind, exclusive: bool) -> None:
    """Writes `keys` to `path` (mode 0600) atomically; `exclusive` fails if the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = kind.header + "".join(
        f"{k.id} {(k.created or utcnow()).isoformat(timespec='seconds')} {encode(k)}\n" for k in keys
    )
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".keys-")
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
