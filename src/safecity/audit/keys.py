"""The audit log's HMAC keys: a keyring (`core/keyring.py`) of their own kind, the newest signing.

Rows store a key's id, never the key; keys given in the environment are named the same way as keys in
a file. The file is 0600 and rewritten atomically on rotation; every process notices the new file the
next time it signs a row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from safecity.core import keyring
from safecity.core.keyring import Key, KeyKind

HEADER = (
    "# SafeCity audit keys: oldest first, the newest signs new rows. Keep this file mode 0600, away\n"
    "# from the database, and back it up: without a key its rows can no longer be verified.\n"
    "# <key id> <created (UTC)> <key, base64>\n"
)
AUDIT_KEYS = KeyKind(
    name="audit key",
    id_prefix="k",
    id_label=b"safecity-audit-key-id",
    env_var="SAFECITY_AUDIT_KEY",
    file_var="SAFECITY_AUDIT_KEY_FILE",
    new_key_command="safecity audit new-key",
    header=HEADER,
)
#: One HMAC key of the audit log (`sign` makes a row's or a checkpoint's MAC).
AuditKey = Key
encode = keyring.encode


def key_id(secret: bytes) -> str:
    """Returns the public name of an audit key: a fingerprint that reveals nothing of the key itself."""
    return keyring.key_id(AUDIT_KEYS, secret)


def new_key() -> AuditKey:
    """Returns a fresh random audit key."""
    return keyring.new_key(AUDIT_KEYS)


def read_key_file(path: Path) -> list[AuditKey]:
    """Returns the keys of an audit key file, oldest first (refused when others may read it)."""
    return keyring.read_key_file(path, AUDIT_KEYS)


def write_key_file(path: Path, keys: list[AuditKey], *, exclusive: bool) -> None:
    """Writes `keys` to `path` (mode 0600) atomically; `exclusive` fails if the file exists."""
    keyring.write_key_file(path, keys, kind=AUDIT_KEYS, exclusive=exclusive)


class Keyring(keyring.Keyring):
    """The keys of the audit log, from a file or the environment; `current` signs."""

    @classmethod
    def from_env(cls, value: str, *, kind: KeyKind = AUDIT_KEYS) -> Self:
        """Returns the keys given as comma-separated base64 (oldest first)."""
        return super().from_env(value, kind=kind)

    @classmethod
    def from_file(cls, path: Path, *, kind: KeyKind = AUDIT_KEYS, create: bool) -> Self:
        """Returns the keys of `path`; `create` makes the file with one new key when there is none."""
        return super().from_file(path, kind=kind, create=create)

    def age(self, kid: str) -> int:
        """Returns the position of `kid` in the ring (0: oldest), or -1."""
        return next((i for i, k in enumerate(self.keys) if k.id == kid), -1)
