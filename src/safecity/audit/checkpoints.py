"""Signed checkpoints of the audit log, appended to a file away from the database.

Each line says how many rows the log held, its last row and that row's hash, and is signed with the
audit key and linked to the line before it. Someone who can rewrite the database can neither move a
checkpoint nor write one, so deleting rows, or the whole log, no longer goes unnoticed.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from safecity.audit.keys import Keyring

PURPOSE = b"safecity-audit-checkpoint"


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement: the log held `rows` rows up to `last_seq`, whose hash was `last_hash`."""

    n: int
    at: datetime
    rows: int
    last_seq: int
    last_hash: str
    legacy_until: int
    key_id: str
    prev: str
    mac: str

    def fields(self) -> dict[str, Any]:
        """Returns what the signature covers."""
        return {
            "n": self.n,
            "at": self.at.isoformat(timespec="microseconds"),
            "rows": self.rows,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "legacy_until": self.legacy_until,
            "key_id": self.key_id,
            "prev": self.prev,
        }

    def signed_by(self, keyring: Keyring) -> bool:
        """Returns whether a key of `keyring` signed exactly these fields."""
        key = keyring.get(self.key_id)
        return key is not None and hmac.compare_digest(key.sign(PURPOSE, _body(self.fields())), self.mac)

    def line(self) -> str:
        """Returns the checkpoint as one JSON line."""
        return json.dumps({**self.fields(), "mac": self.mac}, separators=(",", ":")) + "\n"


def _body(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class ReadResult:
    """The checkpoints of a file that verify, and what is wrong with the others."""

    checkpoints: list[Checkpoint]
    problems: list[str]
    exists: bool


class CheckpointFile:
    """An append-only file of signed checkpoints; appends are serialised by a file lock."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _locked(self) -> Iterator[IO[str]]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def last(self) -> Checkpoint | None:
        """Returns the newest checkpoint as written (not verified), or None."""
        if not self.path.exists():
            return None
        with self.path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            tail = handle.read().decode(errors="replace").splitlines()
        for text in reversed(tail):
            parsed = _parse(text)
            if parsed is not None:
                return parsed
        return None

    def append(
        self,
        keyring: Keyring,
        *,
        at: datetime,
        rows: int,
        last_seq: int,
        last_hash: str,
        legacy_until: int,
        first: bool = False,
    ) -> Checkpoint | None:
        """Signs and appends a checkpoint after the newest one (`first`: only into an empty file)."""
        with self._locked() as handle:
            previous = self.last()
            if first and previous is not None:
                return None
            key = keyring.current
            unsigned = Checkpoint(
                n=previous.n + 1 if previous else 1,
                at=at,
                rows=rows,
                last_seq=last_seq,
                last_hash=last_hash,
                legacy_until=legacy_until,
                key_id=key.id,
                prev=previous.mac if previous else "",
                mac="",
            )
            checkpoint = replace(unsigned, mac=key.sign(PURPOSE, _body(unsigned.fields())))
            handle.write(checkpoint.line())
            handle.flush()
            os.fsync(handle.fileno())
        return checkpoint

    def read(self, keyring: Keyring) -> ReadResult:
        """Returns every checkpoint whose signature and link hold, and names each that does not."""
        if not self.path.exists():
            return ReadResult([], [], exists=False)
        good: list[Checkpoint] = []
        problems: list[str] = []
        previous_mac = ""
        expected_n = 1
        with self.path.open() as handle:
            for number, text in enumerate(handle, 1):
                if not text.strip():
                    continue
                checkpoint = _parse(text)
                where = f"checkpoint file {self.path} line {number}"
                if checkpoint is None:
                    problems.append(f"{where} is not a checkpoint (the file was edited)")
                    continue
                if keyring.get(checkpoint.key_id) is None:
                    problems.append(
                        f"{where} (checkpoint #{checkpoint.n}) is signed with key {checkpoint.key_id}, "
                        "which the keyring does not hold"
                    )
                    continue
                if not checkpoint.signed_by(keyring):
                    problems.append(f"{where} (checkpoint #{checkpoint.n}) does not carry a valid signature")
                    continue
                if checkpoint.n != expected_n or checkpoint.prev != previous_mac:
                    problems.append(
                        f"{where}: checkpoint #{checkpoint.n} does not follow checkpoint #{expected_n - 1} "
                        "(checkpoints were removed from the file)"
                    )
                good.append(checkpoint)
                previous_mac, expected_n = checkpoint.mac, checkpoint.n + 1
        return ReadResult(good, problems, exists=True)


def _parse(text: str) -> Checkpoint | None:
    try:
        data = json.loads(text)
        return Checkpoint(
            n=int(data["n"]),
            at=datetime.fromisoformat(data["at"]),
            rows=int(data["rows"]),
            last_seq=int(data["last_seq"]),
            last_hash=str(data["last_hash"]),
            legacy_until=int(data["legacy_until"]),
            key_id=str(data["key_id"]),
            prev=str(data["prev"]),
            mac=str(data["mac"]),
        )
    except (ValueError, KeyError, TypeError):
        return None
