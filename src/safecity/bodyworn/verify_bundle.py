#!/usr/bin/env python3
"""Checks a SafeCity court bundle: every file the manifest lists is there, whole and unchanged.

Needs nothing but Python 3.8 or later. Run it in the bundle's folder, or name the folder:

    python3 verify.py [FOLDER]

It prints one line per file and the SHA-256 of manifest.json itself, which the custody report and the
sender's audit log record, so the manifest can be checked as well. Exit status 0: the bundle is
intact; 1: something is missing, changed or added (each problem is named).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
# Files that belong to the bundle without being evidence listed in the manifest.
OWN_FILES = {MANIFEST, SUMS, "verify.py", "README.txt"}


def sha256_of(path: Path) -> str:
    """Returns the SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path) -> tuple[bool, list[str]]:
    """Returns whether the bundle in `folder` is intact, and a line for each file checked or problem found."""
    lines: list[str] = []
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return False, [f"PROBLEM  {MANIFEST} is missing: this is not a SafeCity bundle, or it was emptied"]
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        listed = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return False, [f"PROBLEM  {MANIFEST} cannot be read ({exc}): it was damaged or edited"]
    lines.append(f"manifest {MANIFEST} sha256 {sha256_of(manifest_path)}")
    ok = True
    names = set()
    for entry in listed:
        name, expected = str(entry.get("path", "")), str(entry.get("sha256", ""))
        names.add(name)
        path = (folder / name).resolve()
        if folder.resolve() not in path.parents:
            ok = False
            lines.append(f"PROBLEM  {name}: the manifest points outside the bundle")
            continue
        if not path.is_file():
            ok = False
            lines.append(f"MISSING  {name}")
            continue
        found = sha256_of(path)
        size = path.stat().st_size
        if found != expected or ("bytes" in entry and entry["bytes"] != size):
            ok = False
            lines.append(f"CHANGED  {name}: sha256 {found}, the manifest says {expected}")
        else:
            lines.append(f"OK       {name}  {found}")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name not in names and name not in OWN_FILES:
            ok = False
            lines.append(f"ADDED    {name}: not in the manifest")
    sums = folder / SUMS
    if sums.is_file():
        for line in sums.read_text(encoding="utf-8").splitlines():
            digest, _, name = line.partition("  ")
            match = next((e for e in listed if e.get("path") == name), None)
            if match is None or match.get("sha256") != digest:
                ok = False
                lines.append(f"PROBLEM  {SUMS} disagrees with {MANIFEST} about {name}")
    lines.append("bundle intact" if ok else "BUNDLE NOT INTACT")
    return ok, lines


def main(argv: list[str]) -> int:
    """Checks the bundle named on the command line (default: the folder this script is in)."""
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    ok, lines = verify(folder)
    for line in lines:
        print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
