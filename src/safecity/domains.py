"""The domains SafeCity is made of, found by name so each one plugs in by having the usual files.

A domain's `models.py` declares tables, `api.py` a `router`, `consumer.py` an
`async def register(ctx)` that subscribes its bus handlers, `worker.py` a `def pipelines(ctx)`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator
from types import ModuleType

DOMAINS = (
    "accounts",
    "audit",
    "cameras",
    "video",
    "recordings",
    "anpr",
    "enforcement",
    "challans",
    "faces",
    "analytics",
    "alerts",
    "dispatch",
    "evidence",
    "bodyworn",
    "maintenance",
    "live",
    "maps",
)


def domain_modules(part: str) -> Iterator[ModuleType]:
    """Yields `safecity.<domain>.<part>` for every domain that has that module."""
    for domain in DOMAINS:
        name = f"safecity.{domain}.{part}"
        if importlib.util.find_spec(f"safecity.{domain}") is None:
            continue
        if importlib.util.find_spec(name) is not None:
            yield importlib.import_module(name)
