"""Where a database's audit keys and checkpoints live, found once per database.

Embedded, both default to files beside the SQLite database (the key made on first use). A city's
PostgreSQL has no such folder, so there the key and the checkpoint file must be named explicitly.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from safecity.audit.checkpoints import CheckpointFile
from safecity.audit.keys import Keyring
from safecity.core.errors import InvalidInput
from safecity.settings import Settings, load_settings

KEY_FILE = "audit.keys"
CHECKPOINT_FILE = "audit-checkpoints.log"


@dataclass
class Anchor:
    """The keyring that signs a database's audit rows and the file its checkpoints go to."""

    keyring: Keyring
    checkpoints: CheckpointFile


_anchors: dict[str, Anchor] = {}
_lock = threading.Lock()


def resolve(settings: Settings, database_url: str) -> Anchor:
    """Returns the anchor `settings` configure for the database at `database_url`."""
    url = make_url(database_url)
    folder: Path | None = None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        folder = Path(str(url.database)).resolve().parent
    city = "set it explicitly: the city mode keeps no key beside its database"
    if settings.audit_key_file is not None and settings.audit_key is not None:
        raise InvalidInput(
            "both SAFECITY_AUDIT_KEY_FILE and SAFECITY_AUDIT_KEY are set", hint="keep the audit keys in one"
        )
    if settings.audit_key is not None:
        keyring = Keyring.from_env(settings.audit_key.get_secret_value())
    elif settings.audit_key_file is not None:
        keyring = Keyring.from_file(settings.audit_key_file, create=folder is not None)
    elif folder is not None:
        keyring = Keyring.from_file(folder / KEY_FILE, create=True)
    else:
        raise InvalidInput(
            "the audit log needs a key: SAFECITY_AUDIT_KEY_FILE (or SAFECITY_AUDIT_KEY) is not set",
            hint=f"{city}; make one with `safecity audit new-key --key-file /etc/safecity/audit.keys`",
        )
    if settings.audit_checkpoint_file is not None:
        checkpoints = CheckpointFile(settings.audit_checkpoint_file)
    elif folder is not None:
        checkpoints = CheckpointFile(folder / CHECKPOINT_FILE)
    else:
        raise InvalidInput(
            "the audit log needs a checkpoint file: SAFECITY_AUDIT_CHECKPOINT_FILE is not set",
            hint=f"{city}, on storage every serve reaches but the database's writers do not",
        )
    return Anchor(keyring, checkpoints)


def _name(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


def bind(database_url: str, settings: Settings) -> Anchor:
    """Resolves and remembers the anchor of a database from a process's settings."""
    anchor = resolve(settings, database_url)
    with _lock:
        _anchors[_name(database_url)] = anchor
    return anchor


def for_url(database_url: str) -> Anchor:
    """Returns the anchor of the database at `database_url` (resolved from the environment the first time)."""
    name = _name(database_url)
    anchor = _anchors.get(name)
    if anchor is None:
        with _lock:
            anchor = _anchors.get(name)
            if anchor is None:
                anchor = resolve(load_settings(), database_url)
                _anchors[name] = anchor
    return anchor


def for_session(session: Session) -> Anchor:
    """Returns the anchor of the session's database."""
    return for_url(session.get_bind().engine.url.render_as_string(hide_password=False))


def forget(database_url: str) -> None:
    """Drops the remembered anchor of a database (its settings changed; tests)."""
    with _lock:
        _anchors.pop(_name(database_url), None)
