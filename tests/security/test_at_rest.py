"""Secrets and personal data at rest (issue 16, finding 10): sealed with AES-256-GCM under a data key kept
out of the database, never shown back, files 0600 in folders 0700, photos without EXIF, keys rotated."""

from __future__ import annotations

import io
import json
import stat
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pyotp
import pytest
from alembic import command
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text
from typer.testing import CliRunner

from safecity.accounts import service as accounts
from safecity.accounts.totp import service as totp
from safecity.cameras import service as cameras
from safecity.challans import delivery
from safecity.cli import app as cli
from safecity.core import crypto, keyring
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.db import Database, alembic_config
from safecity.core.errors import InvalidInput
from safecity.core.media import MediaStore
from safecity.faces import service as faces
from safecity.settings import Settings
from safecity.video.sources import with_credentials
from tests.conftest import auth_headers, make_user

CAMERA = {
    "id": "khi-saddar-001",
    "name": "Saddar, Empress Market",
    "kind": "anpr",
    "district": "South",
    "latitude": 24.8607,
    "longitude": 67.0292,
    "stream_url": "rtsp://admin:s3cret%40x@10.0.0.5:554/stream1",
}


def raw(ctx: Context, sql: str) -> list[tuple[object, ...]]:
    """Returns rows as the database holds them, past every column type."""
    with ctx.db.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def stand_in_encoder(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Two 128-d embeddings per photo (full size and a street-camera view), fixed by the photo's shade."""
    rng = np.random.default_rng(int(np.median(image)))
    rows = rng.normal(size=(2, 128)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def jpeg_with_exif(orientation: int = 1) -> bytes:
    """Returns a 160x120 JPEG carrying EXIF: GPS position, camera make, orientation and a comment."""
    image = Image.new("RGB", (160, 120), (90, 120, 150))
    image.paste((200, 40, 40), (0, 0, 40, 30))  # a mark, so a turned picture is told apart
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (24.0, 51.0, 38.5), 3: "E", 4: (67.0, 1.0, 45.1)}  # GPS: Karachi
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=92, comment=b"taken at home")
    return out.getvalue()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- camera credentials --------------------------------------------------------------------------


def test_an_auditor_listing_cameras_never_sees_the_stream_password(ctx: Context, client: TestClient) -> None:
    # The finding: an auditor saw rtsp://admin:…@ in the camera list.
    admin = auth_headers(ctx, "admin")
    created = client.post("/api/cameras", headers=admin, json=CAMERA)
    assert created.status_code == 201 and "s3cret" not in created.text
    auditor = auth_headers(ctx, "auditor")
    listed = client.get("/api/cameras", headers=auditor)
    one = client.get(f"/api/cameras/{CAMERA['id']}", headers=auditor)
    for answer in (listed, one):
        assert answer.status_code == 200 and "s3cret" not in answer.text
    (camera,) = listed.json()
    assert camera["stream_url"] == "rtsp://admin:•••@10.0.0.5:554/stream1"
    assert (camera["password"], camera["has_password"]) == (None, True)
    # In the database: the URL without credentials, the password sealed under the data key.
    ((url, user, password),) = raw(ctx, "SELECT stream_url, username, password FROM cameras")
    assert (url, user) == ("rtsp://10.0.0.5:554/stream1", "admin")
    assert str(password).startswith("sc1:d") and "s3cret" not in str(password)
    # The pipeline still opens the stream with the real password.
    with ctx.db.session() as session:
        (row,) = cameras.list_cameras(session, with_credentials=True)
        assert row.password == "s3cret@x"
        assert with_credentials(row.stream_url, row.username, row.password) == (
            "rtsp://admin:s3cret%40x@10.0.0.5:554/stream1"
        )


def test_credentials_in_a_changed_or_imported_stream_url_are_sealed_too(
    ctx: Context, client: TestClient
) -> None:
    admin = auth_headers(ctx, "admin")
    plain = {**CAMERA, "stream_url": "rtsp://10.0.0.5/s"}
    assert client.post("/api/cameras", headers=admin, json=plain).status_code == 201
    patched = client.patch(
        f"/api/cameras/{CAMERA['id']}", headers=admin, json={"stream_url": "rtsp://ops:pa55@10.0.0.9/main"}
    )
    assert patched.status_code == 200 and "pa55" not in patched.text
    assert patched.json()["stream_url"] == "rtsp://ops:•••@10.0.0.9/main"
    csv = (
        "id,name,kind,district,latitude,longitude,stream_url\n"
        "khi-2,Two,fixed,South,24.8,67.0,rtsp://viewer:hunter2@10.0.0.7/live\n"
    )
    imported = client.post("/api/cameras/import", headers=admin, files={"file": ("c.csv", csv)})
    assert imported.status_code == 200
    rows = raw(ctx, "SELECT id, stream_url, password FROM cameras ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [
        ("khi-2", "rtsp://10.0.0.7/live"),
        ("khi-saddar-001", "rtsp://10.0.0.9/main"),
    ]
    assert all(str(r[2]).startswith("sc1:") for r in rows)
    assert "hunter2" not in json.dumps(client.get("/api/cameras", headers=admin).json())
    clash = client.post("/api/cameras", headers=admin, json={**CAMERA, "id": "khi-3", "password": "other"})
    assert clash.status_code == 422 and "different credentials" in clash.text
    # A change of password is on the audit record, never the password itself.
    assert "pa55" not in json.dumps(raw(ctx, "SELECT detail FROM audit_log"), default=str)


def test_the_cli_lists_cameras_without_their_password(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    with ctx.db.session() as session:
        from safecity.cameras.models import CameraIn

        cameras.create(session, CameraIn.model_validate(CAMERA), actor="test")
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    result = CliRunner().invoke(cli, ["cameras", "list", "--json"])
    assert result.exit_code == 0, result.output
    (shown,) = json.loads(result.output)
    assert shown["password"] is None and shown["has_password"] and "s3cret" not in result.output


# --- face embeddings, TOTP secrets ----------------------------------------------------------------


def test_face_embeddings_are_sealed_and_still_match(ctx: Context) -> None:
    ok, photo = cv2.imencode(".jpg", np.full((120, 100, 3), 77, np.uint8))
    assert ok
    with ctx.db.session() as session:
        entry = faces.enroll(
            session,
            ctx.media,
            name="Suspect",
            category="wanted",
            legal_basis="FIR 12/2025",
            requested_by="maker",
            photos=[photo.tobytes()],
            expires_at=utcnow() + timedelta(days=30),
            encoder=stand_in_encoder,
        )
        faces.approve(session, entry.id, "checker")
    ((stored,),) = raw(ctx, "SELECT embeddings FROM watchlist_photos")
    assert str(stored).startswith("sc1:") and "[" not in str(stored)  # no JSON numbers on disk
    with ctx.db.session() as session:
        (found,) = faces.photos_of(session, entry.id)
        assert np.allclose(found.embeddings, stand_in_encoder(np.full((1, 1, 3), 77, np.uint8)), atol=1e-6)
        query = stand_in_encoder(np.full((1, 1, 3), 77, np.uint8))[0]
        (best,) = faces.search(session, query, threshold=0.9, k=1)
        assert best.entry_id == entry.id and best.similarity > 0.99


def test_totp_secrets_are_sealed_and_codes_still_work(ctx: Context) -> None:
    name = make_user(ctx, "operator")
    with ctx.db.session() as session:
        user = accounts.get_by_username(session, name)
        secret = totp.begin_setup(session, user)
    ((stored,),) = raw(ctx, f"SELECT totp_secret FROM users WHERE username = '{name}'")
    assert str(stored).startswith("sc1:") and secret not in str(stored)
    with ctx.db.session() as session:
        user = accounts.get_by_username(session, name)
        assert user.totp_secret == secret
        assert len(totp.confirm_setup(session, user, pyotp.TOTP(secret).now())) > 0


def test_a_sealed_value_moved_to_another_column_does_not_open(ctx: Context) -> None:
    cipher = crypto.cipher()
    sealed = cipher.seal_text(b"s3cret", purpose=b"cameras.password")
    with pytest.raises(crypto.CannotDecrypt, match="does not authenticate"):
        cipher.unseal_text(sealed, purpose=b"users.totp_secret")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(crypto.CannotDecrypt):
        cipher.unseal_text(tampered, purpose=b"cameras.password")


# --- media at rest --------------------------------------------------------------------------------


def test_pictures_and_documents_are_sealed_0600_in_0700_folders_and_read_back(ctx: Context) -> None:
    crop = np.full((40, 60, 3), 120, np.uint8)
    ref = ctx.media.put_image(crop)
    pdf = ctx.media.put(b"%PDF-1.4 notice of Ali Khan, CNIC 42101-1234567-1", "pdf")
    clip = ctx.media.put(b"\x00\x00\x00\x18ftypmp42 video", "mp4")
    for sealed in (ref, pdf):
        path = ctx.media.path(sealed)
        assert path.read_bytes().startswith(crypto.MAGIC) and b"Ali Khan" not in path.read_bytes()
        assert mode(path) == 0o600 and mode(path.parent) == mode(path.parent.parent) == 0o700
        assert ctx.media.verify(sealed)
    assert ctx.media.get(ref)[:2] == b"\xff\xd8" and ctx.media.get(pdf).startswith(b"%PDF")
    # Video stays plain, for streaming with ranges, and private.
    assert ctx.media.path(clip).read_bytes().startswith(b"\x00\x00\x00\x18ftyp")
    assert mode(ctx.media.path(clip)) == 0o600 and mode(ctx.media.root) == 0o700
    # The ref is the plaintext's hash: the same picture again is the same object.
    assert ctx.media.put_image(crop) == ref
    # One sealed file put in another's place does not open (the ref is authenticated with it).
    ctx.media.path(ref).write_bytes(ctx.media.path(pdf).read_bytes())
    assert not ctx.media.verify(ref)
    with pytest.raises(crypto.CannotDecrypt):
        ctx.media.get(ref)


def test_the_media_route_and_the_portal_serve_sealed_objects_as_plain(
    ctx: Context, client: TestClient
) -> None:
    _, photo = cv2.imencode(".jpg", np.full((120, 100, 3), 90, np.uint8))
    with ctx.db.session() as session:
        entry = faces.enroll(
            session,
            ctx.media,
            name="Missing child",
            category="missing",
            legal_basis="FIR 7/2025",
            requested_by="maker",
            photos=[photo.tobytes()],
            expires_at=utcnow() + timedelta(days=30),
            encoder=stand_in_encoder,
        )
        (stored,) = faces.photos_of(session, entry.id)
    assert ctx.media.is_sealed(stored.media_ref)
    answer = client.get(f"/media/{stored.media_ref}", headers=auth_headers(ctx, "investigator"))
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    assert answer.content[:2] == b"\xff\xd8"


def test_a_stored_watch_list_photo_keeps_no_exif(ctx: Context) -> None:
    data = jpeg_with_exif()
    assert Image.open(io.BytesIO(data)).getexif().get(0x8825) is not None  # the upload has a position
    with ctx.db.session() as session:
        entry = faces.enroll(
            session,
            ctx.media,
            name="Suspect",
            category="wanted",
            legal_basis="FIR 12/2025",
            requested_by="maker",
            photos=[data],
            expires_at=utcnow() + timedelta(days=30),
            encoder=stand_in_encoder,
        )
        (stored,) = faces.photos_of(session, entry.id)
    kept = ctx.media.get(stored.media_ref)
    assert b"Exif" not in kept and b"PhoneMaker" not in kept and b"taken at home" not in kept
    picture = Image.open(io.BytesIO(kept))
    assert not picture.getexif() and picture.size == (160, 120)
    # Only metadata went: the pixels are the upload's, bit for bit.
    original = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(cv2.imdecode(np.frombuffer(kept, np.uint8), cv2.IMREAD_COLOR), original)


def test_a_photo_exif_said_to_turn_is_stored_turned_without_exif(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media", cipher=None)
    data = jpeg_with_exif(orientation=6)  # "turn 90° clockwise to view"
    upright = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # orientation applied
    assert upright.shape[:2] == (160, 120)
    kept = store.get(store.put_photo(data, "jpg", upright))
    picture = Image.open(io.BytesIO(kept))
    assert not picture.getexif() and picture.size == (120, 160)


def test_a_png_loses_its_text_and_exif_chunks(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Location", "24.86N 67.00E")
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 30)).save(out, "PNG", pnginfo=info)
    data = out.getvalue()
    store = MediaStore(tmp_path / "media")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    kept = store.get(store.put_photo(data, "png", image))
    assert b"Location" not in kept and b"tEXt" not in kept
    assert np.array_equal(cv2.imdecode(np.frombuffer(kept, np.uint8), cv2.IMREAD_COLOR), image)


def test_the_notice_outbox_is_sealed_and_private(ctx: Context) -> None:
    adapter = delivery.FileAdapter(ctx.settings.data_dir / "outbox" / "post", cipher=ctx.media.cipher)
    message = delivery.NoticeMessage(
        "post", "House 1, Clifton", "KHI-2025-00000001", "Pay Rs 5,000", b"%PDF notice", "key-1"
    )
    adapter.send(message)
    folder = ctx.settings.data_dir / "outbox" / "post"
    pdf, envelope = folder / "KHI-2025-00000001-post.pdf", folder / "KHI-2025-00000001-post.json"
    for path in (pdf, envelope):
        assert mode(path) == 0o600 and path.read_bytes().startswith(crypto.MAGIC)
        assert b"Clifton" not in path.read_bytes()
    assert mode(folder) == 0o700
    assert delivery.read_outbox_file(pdf, crypto.cipher()) == b"%PDF notice"
    assert json.loads(delivery.read_outbox_file(envelope, crypto.cipher()))["to"] == "House 1, Clifton"


# --- the key -------------------------------------------------------------------------------------


def test_the_embedded_key_file_is_made_0600_in_the_data_folder(ctx: Context) -> None:
    key_file = ctx.settings.data_dir / crypto.KEY_FILE
    assert mode(key_file) == 0o600 and mode(ctx.settings.data_dir) == 0o700
    assert crypto.cipher().keyring.path == key_file


def test_a_key_file_others_may_read_stops_start_up_naming_the_chmod(tmp_path: Path) -> None:
    key_file = tmp_path / "data.keys"
    keyring.write_key_file(
        key_file, [keyring.new_key(crypto.DATA_KEYS)], kind=crypto.DATA_KEYS, exclusive=True
    )
    key_file.chmod(0o640)
    with pytest.raises(InvalidInput) as refused:
        Context.create(Settings(data_dir=tmp_path / "data", data_key_file=key_file))
    assert "may be read by others" in refused.value.message and refused.value.hint == f"chmod 600 {key_file}"
    env = {"SAFECITY_DATA_DIR": str(tmp_path / "data"), "SAFECITY_DATA_KEY_FILE": str(key_file)}
    result = CliRunner().invoke(cli, ["migrate"], env=env)
    assert result.exit_code == 1 and "chmod 600" in result.output


def test_a_city_without_a_data_key_refuses_to_start(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAFECITY_DATA_KEY_FILE")
    with pytest.raises(InvalidInput, match="SAFECITY_DATA_KEY_FILE"):
        crypto.resolve(Settings(data_dir=tmp_path / "data", database_url=pg_url))


def test_keys_from_the_environment_seal_and_open(tmp_path: Path) -> None:
    old, new = keyring.new_key(crypto.DATA_KEYS), keyring.new_key(crypto.DATA_KEYS)
    value = f"{keyring.encode(old)},{keyring.encode(new)}"
    cipher = crypto.Cipher(crypto.resolve(Settings(data_dir=tmp_path, data_key=value)))  # type: ignore[arg-type]
    assert cipher.current.id == new.id
    sealed = cipher.seal(b"face", purpose=b"x")
    assert crypto.sealed_key_id(sealed) == new.id and cipher.unseal(sealed, purpose=b"x") == b"face"
    with pytest.raises(InvalidInput, match="too short"):
        crypto.resolve(Settings(data_dir=tmp_path, data_key="c2hvcnQ="))  # type: ignore[arg-type]


# --- rotation ------------------------------------------------------------------------------------


def sealed_things(ctx: Context) -> dict[str, str]:
    """Stores one of everything that is sealed; returns the media refs."""
    from safecity.cameras.models import CameraIn

    name = make_user(ctx, "supervisor", "sup")
    _, photo = cv2.imencode(".jpg", np.full((120, 100, 3), 60, np.uint8))
    with ctx.db.session() as session:
        cameras.create(session, CameraIn.model_validate(CAMERA), actor="test")
        totp.begin_setup(session, accounts.get_by_username(session, name))
        faces.enroll(
            session,
            ctx.media,
            name="Suspect",
            category="wanted",
            legal_basis="FIR 1/2025",
            requested_by="maker",
            photos=[photo.tobytes()],
            expires_at=utcnow() + timedelta(days=30),
            encoder=stand_in_encoder,
        )
    return {"crop": ctx.media.put_image(np.full((30, 30, 3), 5, np.uint8))}


def test_rotate_adds_a_key_reencrypts_everything_and_retires_the_old_one(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = sealed_things(ctx)
    # A picture stored before encryption at rest, world-readable as they were.
    legacy = MediaStore(ctx.media.root).put(b"%PDF-1.4 an old notice", "pdf")
    ctx.media.path(legacy).chmod(0o644)
    old = crypto.cipher().current.id
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    result = CliRunner().invoke(cli, ["keys", "rotate", "--grace", "0"])
    assert result.exit_code == 0, result.output
    assert f"retired {old}" in result.output
    new = crypto.cipher().current.id
    key_file = ctx.settings.data_dir / crypto.KEY_FILE
    assert new != old and [k.id for k in keyring.read_key_file(key_file, crypto.DATA_KEYS)] == [new]
    for column, table in (
        ("password", "cameras"),
        ("totp_secret", "users"),
        ("embeddings", "watchlist_photos"),
    ):
        values = [v for (v,) in raw(ctx, f"SELECT {column} FROM {table}") if v is not None]
        assert values and all(str(v).startswith(f"sc1:{new}:") for v in values), column
    for ref in (refs["crop"], legacy):
        assert ctx.media.key_of(ref) == new and mode(ctx.media.path(ref)) == 0o600
    assert ctx.media.get(legacy) == b"%PDF-1.4 an old notice"
    with ctx.db.session() as session:
        (camera,) = cameras.list_cameras(session, with_credentials=True)
        assert camera.password == "s3cret@x"
    status = CliRunner().invoke(cli, ["keys", "status", "--json"])
    report = json.loads(status.output)
    assert report["keys"][0]["id"] == new and report["missing_keys"] == []
    assert report["columns"]["cameras.password"] == {new: 1}


def test_an_interrupted_reencryption_resumes_and_retires_only_when_nothing_is_left(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safecity.core import rekey
    from safecity.models import metadata

    sealed_things(ctx)
    cipher = crypto.cipher()
    old = cipher.current.id
    cipher.keyring.add()
    new = cipher.current.id

    class Stop(Exception):
        pass

    def stop_after_the_first_batch(what: str, n: int) -> None:
        raise Stop(what)

    with pytest.raises(Stop):
        rekey.reencrypt(ctx.db, ctx.media, cipher, metadata, progress=stop_after_the_first_batch, batch=1)
    found = rekey.usage(ctx.db, ctx.media, metadata).total()
    assert found[new] >= 1 and found[old] >= 1  # half way: both keys seal something
    assert rekey.retire_unused(cipher, rekey.usage(ctx.db, ctx.media, metadata)) == ([], {old: found[old]})
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(ctx.settings.data_dir))
    result = CliRunner().invoke(cli, ["keys", "reencrypt"])
    assert result.exit_code == 0, result.output
    assert set(rekey.usage(ctx.db, ctx.media, metadata).total()) == {new}
    key_file = ctx.settings.data_dir / crypto.KEY_FILE
    assert [k.id for k in keyring.read_key_file(key_file, crypto.DATA_KEYS)] == [new]


def test_the_migration_seals_what_an_older_version_stored_in_plain(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    crypto.bind(settings)
    db = Database(settings.resolved_database_url)
    config = alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        for revision in ("0001_foundation", "0003_accounts", "0001_faces", "0002_challans"):
            command.upgrade(config, revision)
        connection.execute(
            text(
                "INSERT INTO cameras (id, name, kind, district, latitude, longitude, stream_url, username,"
                " password, enabled, analysis, zones, lines, health_state, health_detail, created_at,"
                " updated_at) VALUES ('c1', 'Old', 'fixed', 'South', 24.8, 67.0,"
                " 'rtsp://admin:old%2Fpass@10.0.0.5/s', NULL, NULL, 1, '{}', '[]', '[]', 'unknown', '',"
                " '2025-01-01', '2025-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO users (username, full_name, role, password_hash, active, must_change_password,"
                " created_at, totp_secret, failed_logins)"
                " VALUES ('op', '', 'operator', 'x', 1, 0, '2025-01-01', 'JBSWY3DPEHPK3PXP', 0)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO watchlist_entries (id, name, category, status, legal_basis, notes,"
                " requested_by, requested_at, case_officer, expires_at, event_cameras, closed_reason,"
                " version) VALUES ('e1', 'X', 'wanted', 'pending', 'FIR', '', 'm', '2025-01-01', 'm',"
                " '2030-01-01', '[]', '', 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO watchlist_photos (entry_id, media_ref, embeddings, added_at) VALUES"
                " ('e1', 'sha256:' || printf('%064d', 0) || '.jpg', '[[0.5, 0.25], [1.0, 0.0]]',"
                " '2025-01-01')"
            )
        )
    db.migrate()
    with db.engine.connect() as connection:
        url, user, password = connection.execute(
            text("SELECT stream_url, username, password FROM cameras")
        ).one()
        secret = connection.execute(text("SELECT totp_secret FROM users")).scalar()
        vectors = connection.execute(text("SELECT embeddings FROM watchlist_photos")).scalar()
    assert (url, user) == ("rtsp://10.0.0.5/s", "admin")
    assert all(str(v).startswith("sc1:") for v in (password, secret, vectors))
    with db.session() as session:
        (camera,) = cameras.list_cameras(session, with_credentials=True)
        assert camera.password == "old/pass"
        assert accounts.get_by_username(session, "op").totp_secret == "JBSWY3DPEHPK3PXP"
        (photo,) = faces.photos_of(session, "e1")
        assert photo.embeddings == [[0.5, 0.25], [1.0, 0.0]]
    db.dispose()
