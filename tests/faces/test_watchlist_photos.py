"""Watch-list work with real photos and the real face pipeline: enrolment refusals, search, the CLI."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer import Typer
from typer.testing import CliRunner

from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.core.errors import InvalidInput
from safecity.faces import replication, service, watchlist_cli
from safecity.settings import Settings
from tests.conftest import need_shared_data

pytestmark = pytest.mark.shared_data


def photo(name: str) -> Path:
    return need_shared_data("faces", "images", "face_recognition", name)


def enrol(ctx: Context, name: str, *files: str) -> str:
    with ctx.db.session() as session:
        entry = service.enroll(
            session,
            ctx.media,
            name=name,
            category="wanted",
            legal_basis="FIR 1/2025",
            requested_by="inspector.ali",
            photos=[photo(f).read_bytes() for f in files],
            expires_at=utcnow() + timedelta(days=5),
        )
        service.approve(session, entry.id, "supervisor.sana")
        return entry.id


def test_enrolment_refuses_a_group_photo_and_a_photo_without_a_face(ctx: Context) -> None:
    blank = cv2.imencode(".jpg", np.full((300, 300, 3), 128, dtype=np.uint8))[1].tobytes()
    for data, reason in (
        (
            photo("multi_obama_and_biden.jpg").read_bytes(),
            r"photo 1: \d+ faces found in the photo, need exactly 1",
        ),
        (blank, "photo 1: (no face found|too blurred)"),
    ):
        with pytest.raises(InvalidInput, match=reason), ctx.db.session() as session:
            service.enroll(
                session,
                ctx.media,
                name="X",
                category="wanted",
                legal_basis="FIR 1/2025",
                requested_by="a",
                photos=[data],
                expires_at=utcnow() + timedelta(days=5),
            )


def test_a_new_photo_of_an_enrolled_person_is_found_at_rank_one_and_matches_on_the_worker(
    ctx: Context,
) -> None:
    obama = enrol(ctx, "Obama", "obama_1.jpg")
    biden = enrol(ctx, "Biden", "biden_1.jpg")
    threshold = service.default_threshold(ctx.settings)
    with ctx.db.session() as session:
        (best, second) = service.search_watchlist(
            session,
            photo("obama_2.jpg").read_bytes(),
            actor="inv",
            reason="test search",
            threshold=threshold,
            k=2,
        )
    assert best.entry_id == obama and best.match
    assert second.entry_id == biden and second.similarity < best.similarity
    watchlist = replication.WorkerWatchlist(default_threshold=threshold)
    with ctx.db.session() as session:
        watchlist.load(session)
    probe = service.pipeline_encoder()(cv2.imread(str(photo("biden_2.jpg"))))[0]
    for large_face in (True, False):
        hit = watchlist.match(probe, "cam-1", utcnow(), large_face=large_face)
        assert hit is not None and hit[0] == biden


def test_cli_enrolls_and_searches_with_json(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFECITY_DATA_DIR", str(settings.data_dir))
    app = Typer()
    app.command("enroll")(watchlist_cli.enroll)
    app.command("search")(watchlist_cli.search)
    runner = CliRunner()
    enrolled = runner.invoke(
        app,
        [
            "enroll",
            "--name",
            "Obama",
            "--category",
            "wanted",
            "--legal-basis",
            "Warrant 5/2025",
            "--requested-by",
            "inspector.ali",
            "--approved-by",
            "supervisor.sana",
            "--json",
            str(photo("obama_1.jpg")),
            str(photo("obama_3.jpg")),
        ],
    )
    assert enrolled.exit_code == 0, enrolled.output
    entry = json.loads(enrolled.stdout)
    assert entry["status"] == "approved" and len(entry["photos"]) == 2
    found = runner.invoke(app, ["search", str(photo("obama_2.jpg")), "--json"])
    assert found.exit_code == 0, found.output
    (candidate,) = json.loads(found.stdout)
    assert candidate["entry_id"] == entry["id"] and candidate["match"] is True
    assert service.default_threshold(settings) <= candidate["similarity"] <= 1.0
    own = runner.invoke(
        app,
        [
            "enroll",
            "--name",
            "Y",
            "--category",
            "wanted",
            "--legal-basis",
            "FIR 2/2025",
            "--requested-by",
            "ali",
            "--approved-by",
            "ali",
            str(photo("biden_1.jpg")),
        ],
    )
    assert own.exit_code == 1 and "maker-checker" in own.output
    group = runner.invoke(
        app,
        [
            "enroll",
            "--name",
            "Z",
            "--category",
            "wanted",
            "--legal-basis",
            "FIR 3/2025",
            "--requested-by",
            "ali",
            str(photo("multi_two_people.jpg")),
        ],
    )
    assert group.exit_code == 1 and "faces found" in group.output
