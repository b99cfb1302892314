"""In headless Chromium: an item playing its own file, with its GPS track and custody log; an upload."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from safecity.bodyworn import ingest, sharing
from safecity.bodyworn import service as items
from safecity.bodyworn.models import ClassifyIn, ShareIn
from tests.bodyworn.bodyworn_support import META, RECORDED, gpx, make_video
from tests.browser import LiveServer, sign_in
from tests.conftest import make_user

pytestmark = pytest.mark.browser


def test_an_item_plays_its_own_file_with_its_track_and_custody_and_an_upload_from_the_page_lands(
    live_server: LiveServer, page: Any, tmp_path: Path
) -> None:
    ctx = live_server.ctx
    dock = tmp_path / "dock"
    dock.mkdir()
    make_video(dock / "FILE0001.MP4", seconds=3, size=(320, 240))
    (dock / "FILE0001.gpx").write_text(gpx(5))
    item_id = ingest.import_folder(ctx, dock, META, actor="dock-7").results[0].item_id
    with ctx.db.session() as session:  # a share: its expiry is a moment in the custody log
        sharing.create(
            session, item_id or "", ShareIn(recipient="Adv. S. Khan", reason="disclosure"), actor="x"
        )
        items.classify(
            session,
            ctx.settings,
            item_id or "",
            ClassifyIn(reason="kept for the inquiry", retain_until=RECORDED),
            actor="insp.rana",
        )
    make_user(ctx, "investigator", "si.khan")
    sign_in(page, live_server.url, "si.khan")

    page.goto(live_server.url + "/evidence")
    page.click(f"tr[data-item='{item_id}'] a")
    page.wait_for_url(f"**/evidence/items/{item_id}")
    page.wait_for_function("() => document.querySelector('#bw-video').readyState >= 2")
    page.evaluate("() => { const v = document.querySelector('#bw-video'); v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.querySelector('#bw-video').currentTime > 0.3")
    path = page.get_attribute("#bw-track path.bw-path", "d")  # the five fixes as one line on the map
    assert path is not None and len(re.findall(r"[ML]", path)) == 5
    here = page.get_attribute("#bw-track path.bw-here", "d")
    page.wait_for_function(
        "(d) => document.querySelector('#bw-track path.bw-here').getAttribute('d') !== d", arg=here
    )  # the officer's place follows the playing video
    assert "5 fixes" in page.inner_text("#bw-track-note")
    actions = page.locator("#bw-custody tbody tr td:nth-child(4)").all_inner_texts()
    # Newest first; the player's first range request may land before the log is read.
    assert [a for a in actions if a != "stream"] == ["view", "retention", "share", "ingest"]
    # Every moment on the page in the display zone, none as the API sent it.
    assert not re.findall(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", page.inner_text("main"))
    assert "GMT+5" in page.inner_text("#bw-custody")
    assert page.inner_text("#bw-facts").count("pc.rana") == 1

    page.goto(live_server.url + "/evidence")
    upload = make_video(tmp_path / "PHONE.MP4", seconds=1, size=(320, 240), seed=9)
    page.set_input_files("#bw-upload input[name=file]", str(upload))
    page.fill("#bw-upload input[name=officer]", "pc.rana")
    page.fill("#bw-upload input[name=device]", "PHONE-3")
    page.click("#bw-upload button[type=submit]")
    page.wait_for_selector("#bw-upload-status a")
    assert page.inner_text("#bw-upload-status").startswith("received: item ")
    page.wait_for_function("() => document.querySelectorAll('#bw-items tbody tr').length === 2")


def test_a_recipient_opens_a_shared_recording_with_the_code_and_sees_their_name_over_it(
    live_server: LiveServer, page: Any, tmp_path: Path
) -> None:
    ctx = live_server.ctx
    dock = tmp_path / "dock"
    dock.mkdir()
    make_video(dock / "FILE0001.MP4", seconds=3, size=(320, 240))
    item_id = ingest.import_folder(ctx, dock, META, actor="dock-7").results[0].item_id or ""
    with ctx.db.session() as session:
        _, token, code = sharing.create(
            session,
            item_id,
            ShareIn(recipient="Adv. S. Khan", recipient_role="defence", reason="disclosure"),
            actor="si.khan",
        )
    page.goto(f"{live_server.url}/share/{token}")
    page.wait_for_selector("text=Enter the access code")
    page.fill("#bw-code input[name=code]", code)
    page.click("#bw-code button[type=submit]")
    page.wait_for_function("() => document.querySelector('#bw-shared-video').readyState >= 2")
    assert page.inner_text("#bw-overlay").startswith("Adv. S. Khan · defence")
    assert page.is_hidden("#bw-shared-download")
    page.reload()  # the same browser: no code asked again
    page.wait_for_function("() => document.querySelector('#bw-shared-video').readyState >= 2")


def test_an_investigator_draws_a_box_on_a_paused_frame_and_opens_the_redacted_copy(
    live_server: LiveServer, page: Any, tmp_path: Path
) -> None:
    from safecity.bodyworn import redaction
    from tests.bodyworn.redaction_support import make_clip

    ctx = live_server.ctx
    source = make_clip(tmp_path / "FILE0001.MP4", seconds=2.0)
    item_id = ingest.ingest_file(ctx, source, META, actor="dock-7").item_id or ""
    make_user(ctx, "investigator", "si.khan")
    sign_in(page, live_server.url, "si.khan")

    page.goto(f"{live_server.url}/evidence/items/{item_id}")
    page.click("#bw-redact")
    page.wait_for_url(f"**/evidence/items/{item_id}/redact")
    page.wait_for_function("() => document.querySelector('#rd-video').readyState >= 2")
    frame = page.locator("#rd-canvas").bounding_box()
    assert frame is not None
    page.mouse.move(frame["x"] + frame["width"] * 0.1, frame["y"] + frame["height"] * 0.35)
    page.mouse.down()
    page.mouse.move(frame["x"] + frame["width"] * 0.3, frame["y"] + frame["height"] * 0.65, steps=5)
    page.mouse.up()
    assert page.locator("#rd-boxes tbody tr").count() == 1
    page.fill("#rd-form input[name=reason]", "disclosure to the complainant")
    page.click("#rd-start")
    page.wait_for_function(
        "() => /waiting|redacting|done/.test(document.querySelector('#rd-status').textContent)"
    )
    redaction.run_pending(ctx)  # the domain's job does this every few seconds in a running centre
    page.wait_for_selector("#rd-status a", timeout=30_000)
    page.click("#rd-status a")
    page.wait_for_function("() => document.querySelector('#bw-video').readyState >= 2")
    assert "Derived from" in page.inner_text("#bw-facts") and "box" in page.inner_text("#bw-facts")
    with ctx.db.session() as session:
        [job] = redaction.of_item(session, item_id)
        box = job.request["boxes"][0]
    # Drawn at the start, in the recording's own pixels whatever the player's size on the page.
    scale = min(frame["width"] / 320, frame["height"] / 240)
    assert box["t0"] == 0
    assert abs(box["w"] - 0.2 * frame["width"] / scale) <= 3
    assert abs(box["h"] - 0.3 * frame["height"] / scale) <= 3


def test_a_box_drawn_over_a_mirrored_recording_hides_what_the_investigator_saw_under_it(
    live_server: LiveServer, page: Any, tmp_path: Path
) -> None:
    from safecity.bodyworn import redaction
    from safecity.video.display import IDENTITY, mirrored, set_matrix
    from tests.bodyworn.redaction_support import SQUARE, detail, frames_of, make_clip, square_at

    ctx = live_server.ctx
    source = make_clip(tmp_path / "FILE0001.MP4", seconds=2.0)
    set_matrix(source, mirrored(IDENTITY))  # the player shows the square on the right, stored on the left
    item_id = ingest.ingest_file(ctx, source, META, actor="dock-7").item_id or ""
    make_user(ctx, "investigator", "si.khan")
    sign_in(page, live_server.url, "si.khan")

    page.goto(f"{live_server.url}/evidence/items/{item_id}/redact")
    page.wait_for_function("() => document.querySelector('#rd-video').readyState >= 2")
    frame = page.locator("#rd-canvas").bounding_box()
    assert frame is not None
    scale = min(frame["width"] / 320, frame["height"] / 240)
    left, top = (
        frame["x"] + (frame["width"] - 320 * scale) / 2,
        frame["y"] + (frame["height"] - 240 * scale) / 2,
    )
    x, y = square_at(0)
    shown_x = 320 - x - SQUARE  # where the investigator sees the square
    page.mouse.move(left + (shown_x - 4) * scale, top + (y - 4) * scale)
    page.mouse.down()
    page.mouse.move(left + (shown_x + SQUARE + 4) * scale, top + (y + SQUARE + 4) * scale, steps=5)
    page.mouse.up()
    page.fill("#rd-form input[name=reason]", "disclosure to the complainant")
    page.click("#rd-start")
    page.wait_for_function(
        "() => /waiting|redacting|done/.test(document.querySelector('#rd-status').textContent)"
    )
    redaction.run_pending(ctx)

    with ctx.db.session() as session:
        [job] = redaction.of_item(session, item_id)
        copy = items.get(session, job.result_item_id or "")
        assert job.request["boxes"][0]["shown"] is True
        copy_path = ctx.media.path(copy.ref)
    assert detail(frames_of(copy_path)[0][1], x, y) < 8  # hidden where it is stored
