"""End to end in headless Chromium: sign in, watch a live alert arrive, dispatch by clicking, roles."""

from __future__ import annotations

import re
from typing import Any

import pytest

from safecity.accounts import service as accounts
from safecity.accounts.models import UserIn
from safecity.alerts import service as alerts
from safecity.cameras import service as cameras
from safecity.cameras.models import CameraIn
from safecity.core.context import Context
from safecity.dispatch import service as dispatch

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-battery"
SHOTS = "/tmp"


def _user(ctx: Context, role: str, name: str) -> str:
    with ctx.db.session() as session:
        accounts.create_user(session, UserIn(username=name, role=role, password=PASSWORD), actor="test")
    return name


def _karachi(ctx: Context) -> None:
    places = [
        ("cam-saddar", "Saddar Empress Market", "Saddar", "anpr", 24.8607, 67.0299),
        ("cam-clifton", "Clifton Teen Talwar", "Clifton", "fixed", 24.8138, 67.0300),
        ("cam-gulshan", "Gulshan Chowrangi", "Gulshan", "face", 24.9180, 67.0971),
        ("cam-korangi", "Korangi Crossing", "Korangi", "anpr", 24.8300, 67.1300),
    ]
    with ctx.db.session() as session:
        for cam_id, name, district, kind, lat, lon in places:
            cameras.create(
                session,
                CameraIn(id=cam_id, name=name, kind=kind, district=district, latitude=lat, longitude=lon),
                actor="test",
            )
        dispatch.create_unit(
            session, unit_id="PU-7", callsign="Saddar-7", latitude=24.8650, longitude=67.0250
        )
        dispatch.create_unit(
            session, unit_id="PU-3", callsign="Clifton-3", latitude=24.8200, longitude=67.0350
        )
        dispatch.create_unit(
            session, unit_id="PU-9", callsign="Korangi-9", latitude=24.8350, longitude=67.1250
        )


def _sign_in(page: Any, url: str, username: str) -> None:
    page.goto(url + "/")
    page.wait_for_url(re.compile(r".*/login$"))
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(url + "/")


def _raise_and_announce(ctx: Context, *, plate: str, priority: int = 1) -> str:
    with ctx.db.session() as session:
        alert, _ = alerts.raise_alert(
            session,
            kind="hotlist",
            priority=priority,
            title=f"Stolen vehicle {plate} (hot list: stolen)",
            source_key=f"read-{plate}",
            dedup_key=f"hotlist:{plate}",
            camera_id="cam-saddar",
            evidence={"plate": plate},
            detail={"rule": "hotlist:stolen"},
        )
        alerts.announce(ctx, session, alert)  # the live server's outbox relay publishes it on commit
    return alert.id


def test_a_live_alert_arrives_on_the_open_page_and_a_unit_is_dispatched_by_clicking(
    page: Any, live_server: Any
) -> None:
    ctx = live_server.ctx
    _karachi(ctx)
    _user(ctx, "operator", "amna")
    _sign_in(page, live_server.url, "amna")
    page.wait_for_selector("body[data-ready=yes]")
    page.wait_for_selector("#live-status.on")
    assert page.locator("#nav a:visible", has_text="Dispatch").count() == 1
    assert page.locator("#nav a:visible", has_text="Audit").count() == 0

    alert_id = _raise_and_announce(ctx, plate="BKA123")
    row = page.locator(f"#alerts li[data-alert-id='{alert_id}']")
    row.wait_for(timeout=5000)
    assert "BKA123" in row.inner_text()
    assert page.evaluate("document.body.dataset.lastAlarm") is not None  # priority 1 sounds the alarm
    page.locator(f"#map [data-alert-id='{alert_id}']").wait_for()
    page.screenshot(path=f"{SHOTS}/safecity_centre.png")

    row.click()
    dialog = page.locator("#alert-dialog")
    dialog.locator(".candidate").first.wait_for()
    assert "Saddar-7" in dialog.locator(".candidate").first.inner_text()  # the nearest unit comes first
    page.screenshot(path=f"{SHOTS}/safecity_alert_dialog.png")
    dialog.locator("button", has_text="✕").click()

    page.click("#nav a[href='/dispatch']")
    page.wait_for_selector("body[data-ready=yes]")
    page.click(f"#alerts li[data-alert-id='{alert_id}']")
    page.locator("#candidates .candidate[data-unit-id='PU-7'] button.send").click()
    page.locator("#units tr[data-unit-id='PU-7'] .unit-status.en_route").wait_for()
    page.locator("#incidents .incident").first.wait_for()
    page.screenshot(path=f"{SHOTS}/safecity_dispatch.png")
    with ctx.db.session() as session:
        assert dispatch.get_unit(session, "PU-7").status == "en_route"
        incident = dispatch.list_incidents(session)[0]
        assert dispatch.incident_out(session, incident).alert_ids == [alert_id]
        assert alerts.get(session, alert_id).status == "acknowledged"


def test_an_operator_dismisses_with_a_reason_and_an_auditor_sees_but_cannot_act(
    chromium: Any, page: Any, live_server: Any
) -> None:
    ctx = live_server.ctx
    _karachi(ctx)
    _user(ctx, "operator", "bilal")
    _user(ctx, "auditor", "zara")
    alert_id = _raise_and_announce(ctx, plate="LEA4521", priority=2)

    _sign_in(page, live_server.url, "bilal")
    page.click(f"#alerts li[data-alert-id='{alert_id}']")
    page.select_option("#dismiss-code", "misread")
    page.fill("#dismiss-reason", "plate reads LEA4527 on the frame")
    page.click("#act-dismiss")
    page.locator(f"#alerts li[data-alert-id='{alert_id}']").wait_for(state="detached")
    with ctx.db.session() as session:
        assert alerts.history(session, alert_id)[-1].reason_code == "misread"
    assert page.goto(live_server.url + "/audit").status == 403

    other = _raise_and_announce(ctx, plate="BC1234")
    auditor = chromium.new_context().new_page()
    _sign_in(auditor, live_server.url, "zara")
    auditor.wait_for_selector("body[data-ready=yes]")
    assert auditor.locator("#nav a:visible", has_text="Dispatch").count() == 1
    auditor.click(f"#alerts li[data-alert-id='{other}']")
    auditor.locator("#alert-dialog h3").wait_for()
    assert auditor.locator("#act-confirm").count() == 0
    assert auditor.locator("#alert-dialog .candidate").count() == 0
    auditor.goto(live_server.url + "/audit")
    auditor.click("#verify")
    auditor.locator("#verify-result", has_text="chain intact").wait_for()
    assert auditor.locator("#audit tbody tr", has_text="alert.view").count() >= 1
    auditor.screenshot(path=f"{SHOTS}/safecity_audit.png")
    auditor.context.close()


def test_the_video_wall_and_dashboard_draw_without_errors(page: Any, live_server: Any) -> None:
    ctx = live_server.ctx
    _karachi(ctx)
    _user(ctx, "supervisor", "sana")
    first = _raise_and_announce(ctx, plate="KHI001")
    _raise_and_announce(ctx, plate="KHI002", priority=3)
    with ctx.db.session() as session:
        alerts.act(
            session, first, action="dismiss", actor="sana", reason="lookalike", reason_code="false_match"
        )
    _sign_in(page, live_server.url, "sana")
    page.goto(live_server.url + "/wall")
    page.wait_for_selector("body[data-ready=yes]")
    assert page.locator(".tile:not([data-camera-id=''])").count() == 4  # the other 12 tiles wait for a camera
    # No worker yet: each tile says why it has no picture, never a blank or a broken image.
    page.locator(".tile .reason", has_text=re.compile("no picture|no stream")).first.wait_for()
    page.screenshot(path=f"{SHOTS}/safecity_wall.png")
    page.goto(live_server.url + "/dashboard")
    page.wait_for_selector("body[data-ready=yes]")
    assert page.locator("#chart-alerts svg rect").count() >= 2
    assert page.locator("#fa-camera tbody tr", has_text="cam-saddar").count() == 1
    # The supervisor watches the pipeline too: every consumer group of the centre, none behind.
    assert page.locator("#pipeline-consumers tbody tr", has_text="anpr-reads").count() == 1
    assert "dead letters" in page.locator("#pipeline-summary").inner_text()
    page.screenshot(path=f"{SHOTS}/safecity_dashboard.png", full_page=True)


def test_the_alert_says_what_to_act_on_and_the_unit_sent_and_keys_work(page: Any, live_server: Any) -> None:
    from datetime import timedelta

    from safecity.anpr import service as anpr
    from safecity.core.clock import utcnow
    from safecity.core.events import PlateRead

    ctx = live_server.ctx
    _karachi(ctx)
    _user(ctx, "operator", "amna")
    with ctx.db.session() as session:
        anpr.add_hotlist_entry(
            session,
            plate="LEA4521",
            list_name="stolen",
            reason="snatched at gunpoint",
            actor="sgt.rana",
            vehicle="white Corolla",
            reference="FIR 212/2026 PS Clifton",
        )
        anpr.process_reads(
            session,
            [
                PlateRead(key=key, camera_id=camera, at=utcnow() - ago, plate="LEA4521", confidence=0.9)
                for key, camera, ago in (
                    ("k1", "cam-korangi", timedelta(minutes=30)),
                    ("k2", "cam-saddar", timedelta(0)),
                )
            ],
        )
        alert = next(a for a in alerts.list_alerts(session, kind="hotlist") if a.camera_id == "cam-saddar")
    _sign_in(page, live_server.url, "amna")
    page.wait_for_selector("body[data-ready=yes]")
    # The live list starts with the recent past, not empty (an operator sees unit changes, not plates).
    assert page.locator("#events li").count() >= 1

    page.keyboard.press("j")  # the first alert in the queue takes the focus; Enter opens it
    page.keyboard.press("Enter")
    dialog = page.locator("#alert-dialog")
    dialog.locator(
        "h3", has_text="Stolen vehicle LEA4521 (white Corolla) at Saddar Empress Market"
    ).wait_for()
    text = dialog.inner_text()
    assert "FIR 212/2026 PS Clifton" in text and "sgt.rana" in text and "Korangi Crossing" in text
    assert dialog.locator(".mini-map .trail-point").count() == 2
    dialog.locator(".candidate").first.wait_for()
    page.keyboard.press("d")  # send the nearest unit
    dialog.locator(".sent-note", has_text="Saddar-7 is on the way").wait_for()
    assert "Saddar-7" in dialog.locator("#units-sent").inner_text() and dialog.evaluate("d => d.open")
    with ctx.db.session() as session:
        assert dispatch.get_unit(session, "PU-7").status == "en_route"
        assert alerts.get(session, alert.id).status == "acknowledged"
    page.screenshot(path=f"{SHOTS}/safecity_alert_context.png")
