"""Encryption at rest: AES-256-GCM under data keys kept outside the database, named in every ciphertext.

Camera passwords, TOTP secrets and face embeddings (columns typed `EncryptedString` or
`EncryptedVectors`), and media files are sealed with the newest data key; each ciphertext carries its
key's id, so `safecity keys rotate` can add a key, re-encrypt what older keys sealed and retire them.
The keys come from `SAFECITY_DATA_KEY_FILE` (mode 0600) or `SAFECITY_DATA_KEY`; embedded, with neither
set, `data.keys` is made in the data folder on first use. One process reads one set of data keys:
`bind(settings)` chooses it (the process context does), and columns find it here.

    cipher = bind(settings)
    blob = cipher.seal(b"secret", purpose=b"media\\x00sha256:…")    # bytes, for files
    cipher.unseal(blob, purpose=b"media\\x00sha256:…")              # b"secret"
    text = cipher.seal_text(b"secret", purpose=b"cameras.password") # "sc1:d…:…", for text columns
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import MetaData, Table, Text
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator

from safecity.core.errors import InvalidInput, SafeCityError
from safecity.core.keyring import Key, KeyKind, Keyring
from safecity.settings import Settings, load_settings

DATA_KEYS = KeyKind(
    name="data key",
    id_prefix="d",
    id_label=b"safecity-data-key-id",
    env_var="SAFECITY_DATA_KEY",
    file_var="SAFECITY_DATA_KEY_FILE",
    new_key_command="safecity keys new",
    header=(
        "# SafeCity data keys (AES-256-GCM): oldest first, the newest encrypts. Keep this file mode 0600,\n"
        "# away from the data folder and the database, and back it up: what a lost key sealed is lost.\n"
        "# <key id> <created (UTC)> <key, base64>\n"
    ),
)
KEY_FILE = "data.keys"

#: Files begin with this; text columns with TEXT_PREFIX. Both are followed by the key id.
MAGIC = b"\x89SCE1\r\n\x1a"
TEXT_PREFIX = "sc1:"
_KID_LEN = 16
_NONCE_LEN = 12
#: How often encrypting looks whether the key file changed (a key added by `safecity keys rotate`).
REFRESH_S = 1.0


class CannotDecrypt(SafeCityError):
    """Stored data could not be decrypted: its key is missing, or it was changed."""

    status_code = 500
    code = "cannot_decrypt"


class Cipher:
    """Seals and opens data with a keyring's keys; the newest seals, any key it holds opens."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._aead: dict[str, AESGCM] = {}
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    @property
    def current(self) -> Key:
        """Returns the key that seals now, noticing a key added to the file within REFRESH_S."""
        now = time.monotonic()
        if now - self._checked >= REFRESH_S:
            self._checked = now
            self.keyring.refresh()
        return self.keyring.current

    def seal(self, data: bytes, *, purpose: bytes) -> bytes:
        """Returns `data` encrypted under the current key; `purpose` must be given again to open it."""
        key = self.current
        kid = key.id.encode()
        nonce = os.urandom(_NONCE_LEN)
        body = self._aes(key).encrypt(nonce, data, _aad(kid, purpose))
        return MAGIC + kid + nonce + body

    def unseal(self, blob: bytes, *, purpose: bytes) -> bytes:
        """Returns the plaintext of a sealed blob, or raises CannotDecrypt saying why."""
        kid = sealed_key_id(blob)
        if kid is None:
            raise CannotDecrypt("the data is not sealed by SafeCity", hint="it may have been replaced")
        key = self._key(kid)
        start = len(MAGIC) + _KID_LEN
        nonce, body = blob[start : start + _NONCE_LEN], blob[start + _NONCE_LEN :]
        try:
            return self._aes(key).decrypt(nonce, body, _aad(kid.encode(), purpose))
        except InvalidTag:
            raise CannotDecrypt(
                f"sealed data under key {kid} does not authenticate: it was changed or moved",
                hint="restore it from a backup",
            ) from None

    def seal_text(self, data: bytes, *, purpose: bytes) -> str:
        """Returns `data` sealed as text: `sc1:<key id>:<base64>` (a text column can be searched by key)."""
        blob = self.seal(data, purpose=purpose)
        kid = blob[len(MAGIC) : len(MAGIC) + _KID_LEN].decode()
        return f"{TEXT_PREFIX}{kid}:{base64.b64encode(blob[len(MAGIC) + _KID_LEN :]).decode()}"

    def unseal_text(self, text: str, *, purpose: bytes) -> bytes:
        """Returns the plaintext of a value `seal_text` made."""
        kid, _, body = text.removeprefix(TEXT_PREFIX).partition(":")
        if not text.startswith(TEXT_PREFIX) or len(kid) != _KID_LEN:
            raise CannotDecrypt(
                "the stored value is not sealed by SafeCity", hint="it may have been replaced"
            )
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise CannotDecrypt(f"the sealed value under key {kid} is not base64") from None
        return self.unseal(MAGIC + kid.encode() + raw, purpose=purpose)

    def _key(self, kid: str) -> Key:
        key = self.keyring.get(kid) or _seen.get(kid)
        if key is None and self.keyring.refresh():
            key = self.keyring.get(kid)
        if key is None:
            raise CannotDecrypt(
                f"the data key {kid} is not in {self.keyring.source}",
                hint="restore the key file that holds it (`safecity keys status` lists what is needed)",
            )
        return key

    def _aes(self, key: Key) -> AESGCM:
        aead = self._aead.get(key.id)
        if aead is None:
            with self._lock:
                aead = self._aead.setdefault(key.id, AESGCM(key.secret))
        return aead


def _aad(kid: bytes, purpose: bytes) -> bytes:
    # The key id and what the data is are authenticated: a password cannot be moved into another column.
    return b"safecity-sealed-v1\x00" + kid + b"\x00" + purpose


def sealed_key_id(blob: bytes) -> str | None:
    """Returns the id of the key that sealed a blob, or None when it is not sealed (plain data)."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _KID_LEN + _NONCE_LEN + 16:
        return None
    try:
        return blob[len(MAGIC) : len(MAGIC) + _KID_LEN].decode("ascii")
    except UnicodeDecodeError:
        return None


def text_key_id(text: str) -> str | None:
    """Returns the id of the key that sealed a text value, or None when it is not sealed."""
    if not text.startswith(TEXT_PREFIX):
        return None
    kid = text[len(TEXT_PREFIX) : len(TEXT_PREFIX) + _KID_LEN]
    return kid if len(kid) == _KID_LEN else None


# --- the process's keys ------------------------------------------------------------------------------

_bound: Cipher | None = None
# Every key this process has loaded, by id: data sealed under one context's keys stays readable
# while another is bound (tests run several data folders in one process).
_seen: dict[str, Key] = {}
_bind_lock = threading.Lock()


def resolve(settings: Settings) -> Keyring:
    """Returns the data keys `settings` configure: the variable, the file, or (embedded) data.keys."""
    if settings.data_key_file is not None and settings.data_key is not None:
        raise InvalidInput(
            "both SAFECITY_DATA_KEY_FILE and SAFECITY_DATA_KEY are set", hint="keep the data keys in one"
        )
    embedded = make_url(settings.resolved_database_url).get_backend_name() == "sqlite"
    if settings.data_key is not None:
        return Keyring.from_env(settings.data_key.get_secret_value(), kind=DATA_KEYS)
    if settings.data_key_file is not None:
        return Keyring.from_file(settings.data_key_file, kind=DATA_KEYS, create=embedded)
    if embedded:
        return Keyring.from_file(settings.data_dir / KEY_FILE, kind=DATA_KEYS, create=True)
    raise InvalidInput(
        "encryption at rest needs a data key: SAFECITY_DATA_KEY_FILE (or SAFECITY_DATA_KEY) is not set",
        hint="set it explicitly: the city mode keeps no key in a data folder; make one with "
        "`safecity keys new --key-file /etc/safecity/data.keys` and copy it to every serve and worker",
    )


def bind(settings: Settings) -> Cipher:
    """Makes the data keys of `settings` this process's (refusing a key file others may read)."""
    global _bound
    cipher = Cipher(resolve(settings))
    with _bind_lock:
        _seen.update({k.id: k for k in cipher.keyring.keys})
        _bound = cipher
    return cipher


def cipher() -> Cipher:
    """Returns this process's cipher, binding the environment's settings the first time."""
    found = _bound
    if found is None:
        with _bind_lock:
            found = _bound
        if found is None:
            found = bind(load_settings())
    return found


# --- columns ---------------------------------------------------------------------------------------


class EncryptedString(TypeDecorator[str]):
    """A text column stored sealed under the data key; `purpose` names it (a sealed value cannot move)."""

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return cipher().seal_text(value.encode(), purpose=self.purpose.encode())

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return cipher().unseal_text(value, purpose=self.purpose.encode()).decode()


class EncryptedVectors(TypeDecorator[list[list[float]]]):
    """Rows of float32 numbers (face embeddings) stored sealed under the data key."""

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return cipher().seal_text(pack_vectors(value), purpose=self.purpose.encode())

    def process_result_value(self, value: str | None, dialect: Any) -> list[list[float]] | None:
        if value is None:
            return None
        rows: list[list[float]] = unpack_vectors(
            cipher().unseal_text(value, purpose=self.purpose.encode())
        ).tolist()
        return rows


def pack_vectors(value: Any) -> bytes:
    """Returns rows of numbers as bytes: rows and columns (two little-endian u32), then float32s."""
    rows = np.asarray(value, dtype="<f4")
    if rows.ndim != 2:
        raise InvalidInput(f"expected rows of numbers, got an array of shape {rows.shape}")
    return struct.pack("<II", *rows.shape) + rows.tobytes()


def unpack_vectors(data: bytes) -> np.ndarray:
    """Returns the (rows, columns) float32 array `pack_vectors` made."""
    n, d = struct.unpack_from("<II", data)
    return np.frombuffer(data, dtype="<f4", offset=8, count=n * d).reshape(n, d)


def encrypted_columns(metadata: MetaData) -> Iterator[tuple[Table, str, str]]:
    """Yields (table, column name, purpose) of every sealed column: what a key rotation re-encrypts."""
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedString | EncryptedVectors):
                yield table, column.name, column.type.purpose


def seal_file(path: Path, data: bytes, *, purpose: bytes, sealer: Cipher | None) -> None:
    """Writes `data` to `path` (0600, atomically), sealed when a cipher is given."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = sealer.seal(data, purpose=purpose) if sealer is not None else data
    tmp = path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(body)
    os.replace(tmp, path)
