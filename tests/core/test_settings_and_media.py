"""Configuration that names the wrong field, and the content-addressed media store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from safecity.core.errors import InvalidInput
from safecity.core.media import MediaStore
from safecity.settings import load_settings


def test_invalid_setting_names_the_field_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFECITY_PORT", "eighty")
    with pytest.raises(InvalidInput) as err:
        load_settings()
    assert "SAFECITY_PORT" in str(err.value)


def test_yaml_file_sets_values_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "safecity.yaml"
    config.write_text("port: 9000\nbus: nats\n")
    monkeypatch.setenv("SAFECITY_CONFIG", str(config))
    monkeypatch.setenv("SAFECITY_BUS", "memory")
    settings = load_settings()
    assert settings.port == 9000
    assert settings.bus == "memory"


def test_unknown_yaml_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "safecity.yaml"
    config.write_text("prot: 9000\n")
    monkeypatch.setenv("SAFECITY_CONFIG", str(config))
    with pytest.raises(InvalidInput) as err:
        load_settings()
    assert "prot" in str(err.value)


def test_same_bytes_are_stored_once_under_their_hash(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    a = store.put(b"evidence", "jpg")
    assert store.put(b"evidence", "jpg") == a
    assert a.startswith("sha256:") and a.endswith(".jpg")
    assert store.get(a) == b"evidence"
    assert store.verify(a)
    store.path(a).write_bytes(b"tampered")
    assert not store.verify(a)


def test_images_are_stored_as_jpeg(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    ref = store.put_image(np.zeros((20, 30, 3), np.uint8))
    assert store.get(ref)[:2] == b"\xff\xd8"


def test_bad_refs_are_refused(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    with pytest.raises(InvalidInput):
        store.path("../../etc/passwd")
    with pytest.raises(InvalidInput):
        store.put(b"x", "exe")
