"""The officer's phone in headless Chromium on a phone-sized screen: a dispatch arrives, is closed, and
the unit's GPS position reaches the server."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from safecity.accounts import service as accounts
from safecity.core.clock import utcnow
from safecity.core.context import Context
from safecity.dispatch import service
from safecity.dispatch.field import service as field
from tests.browser import LiveServer
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.browser

CLOSE_BY = {"latitude": 24.8655, "longitude": 67.0205}


def _until(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _bearer(ctx: Context, role: str) -> dict[str, str]:
    name = make_user(ctx, role)
    with ctx.db.session() as session:
        token, _ = accounts.issue_token(session, accounts.get_by_username(session, name), kind="api", hours=1)
    return {"Authorization": f"Bearer {token}"}


def test_the_officers_phone_receives_a_dispatch_closes_it_and_sends_its_position(
    live_server: LiveServer, chromium: Any, alert_id: str
) -> None:
    ctx, url = live_server.ctx, live_server.url
    make_user(ctx, "patrol_officer", "pc.rana")
    phone = chromium.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        geolocation=CLOSE_BY,
        permissions=["geolocation"],
    )
    tab = phone.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(20_000)
    try:
        tab.goto(url + "/login")
        tab.fill("#username", "pc.rana")
        tab.fill("#password", PASSWORD)
        tab.click("#sign-in")
        tab.wait_for_url(re.compile(r".*/$"))
        tab.goto(url + "/field")
        assert tab.evaluate("navigator.serviceWorker.ready.then((r) => !!r.active)")
        tab.select_option("#unit-select", "PU-2")
        tab.click("#start-shift")
        tab.wait_for_selector("#on-shift:not([hidden])")
        assert "Lyari-2" in tab.inner_text("#unit-name")
        # The command centre's dispatch page names the officer now on the unit.
        make_user(ctx, "operator", "op.sara")
        console = chromium.new_context().new_page()
        console.goto(url + "/login")
        console.fill("#username", "op.sara")
        console.fill("#password", PASSWORD)
        console.click("#sign-in")
        console.wait_for_url(re.compile(r".*/$"))
        console.goto(url + "/dispatch")
        console.wait_for_selector("#units tr[data-unit-id='PU-2'] .officer")
        assert "officer pc.rana" in console.inner_text("#units tr[data-unit-id='PU-2'] .officer")
        console.context.close()

        def at_fix() -> bool:
            with ctx.db.session() as session:
                unit = service.get_unit(session, "PU-2")
                return (unit.latitude, unit.longitude) == (CLOSE_BY["latitude"], CLOSE_BY["longitude"])

        _until(at_fix, "the phone's GPS fix to reach the unit")

        sent = httpx.post(
            url + "/api/dispatch",
            json={"unit_id": "PU-2", "alert_id": alert_id},
            headers=_bearer(ctx, "operator"),
        )
        assert sent.status_code == 201, sent.text
        incident_id = sent.json()["incident_id"]
        tab.wait_for_selector("#incident:not([hidden])")
        assert tab.inner_text("#incident-title") == "Wanted man on a motorcycle"
        assert "Empress Market, Saddar" in tab.inner_text("#place")
        assert (tab.get_attribute("#navigate", "href") or "").startswith("geo:24.860700,67.029900")
        assert "km" in tab.inner_text("#route")
        tab.wait_for_function("document.querySelector('#photos img')?.naturalWidth > 0")

        tab.click("#arrived")
        tab.fill("#outcome-note", "stopped at the signal")
        tab.click("button[data-outcome=suspect_confirmed]")

        def closed() -> bool:
            with ctx.db.session() as session:
                return service.get_incident(session, incident_id).outcome == "arrest"

        _until(closed, "the outcome to close the incident")
        with ctx.db.session() as session:
            out = service.incident_out(session, service.get_incident(session, incident_id))
            assert out.dispatches[0].arrived_at is not None
            assert service.get_unit(session, "PU-2").status == "available"
        tab.wait_for_selector("#no-incident:not([hidden])")
        _until(lambda: tab.inner_text("#queued") == "" or tab.is_hidden("#queued"), "the queue to empty")
    finally:
        phone.close()
    assert not errors, f"script errors on the page: {errors}"


def test_the_officers_map_shows_the_place_the_unit_and_the_line_between_and_is_kept_for_a_poor_connection(
    live_server: LiveServer, chromium: Any, alert_id: str
) -> None:
    ctx, url = live_server.ctx, live_server.url
    make_user(ctx, "patrol_officer", "pc.rana")
    phone = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    tab = phone.new_page()  # no GPS permission: "you" is where the server last knew the unit to be
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(60_000)  # on a loaded CI the first map (Leaflet, base layer) took over 20 s
    outside: list[str] = []
    phone.on("request", lambda r: None if r.url.startswith(url) else outside.append(r.url))
    try:
        tab.goto(url + "/login")
        tab.fill("#username", "pc.rana")
        tab.fill("#password", PASSWORD)
        tab.click("#sign-in")
        tab.wait_for_url(re.compile(r".*/$"))
        tab.goto(url + "/field")
        tab.evaluate("navigator.serviceWorker.ready")
        tab.reload()  # now the service worker controls the page and sees what it fetches
        assert tab.evaluate("!!navigator.serviceWorker.controller")
        tab.select_option("#unit-select", "PU-2")
        tab.click("#start-shift")
        tab.wait_for_selector("#on-shift:not([hidden])")
        # The unit chosen is the unit signed in to (a second fill of the list once reset the choice).
        with ctx.db.session() as session:
            shift = field.open_shift(session, "pc.rana")
            assert shift is not None and shift.unit_id == "PU-2", shift and shift.unit_id
        sent = httpx.post(
            url + "/api/dispatch",
            json={"unit_id": "PU-2", "alert_id": alert_id},
            headers=_bearer(ctx, "operator"),
        )
        assert sent.status_code == 201, sent.text

        try:
            tab.wait_for_selector("#incident-map.leaflet-container .field-incident", timeout=30_000)
        except Exception as exc:
            state = tab.evaluate("""() => ({incidentHidden: document.querySelector('#incident').hidden,
                onShiftHidden: document.querySelector('#on-shift').hidden,
                mapClass: document.querySelector('#incident-map').className,
                mapHtml: document.querySelector('#incident-map').innerHTML.slice(0, 800),
                note: (document.querySelector('#map-note') || {}).textContent,
                kept: Object.entries(localStorage)})""")
            raise AssertionError(f"no incident on the map: {state}; errors {errors}") from exc
        tab.wait_for_selector("#incident-map .field-me[title^='Your unit, as of']")
        tab.wait_for_selector("#incident-map path.field-route.field-straight")  # no road file: dashed
        assert "no road file is set" in tab.inner_text("#map-note")
        tab.wait_for_selector("#incident-map path.land")  # the packaged coast: no tiles file here
        me_at = tab.locator("#incident-map .field-me").bounding_box()
        place_at = tab.locator("#incident-map .field-incident").bounding_box()
        assert me_at and place_at and place_at["y"] > me_at["y"]  # Saddar lies south of Lyari's base

        # The unit's tracker (here: the officer's own token) moves it; the map follows on the next poll.
        with ctx.db.session() as session:
            token, _ = accounts.issue_token(
                session, accounts.get_by_username(session, "pc.rana"), kind="api", hours=1
            )
        fix = {"key": "fix-00000001", "kind": "position", "at": utcnow().isoformat(), **CLOSE_BY}
        moved = httpx.post(
            url + "/api/field/updates", json={"updates": [fix]}, headers={"Authorization": f"Bearer {token}"}
        )
        assert moved.status_code == 200 and moved.json()["results"][0]["status"] == "applied", moved.text
        _until(lambda: tab.locator("#incident-map .field-me").bounding_box() != me_at, "the unit to move")

        kept = tab.evaluate(
            """async () => {
                const names = async (name) =>
                    (await (await caches.open(name)).keys()).map((r) => new URL(r.url).pathname);
                return [...await names("safecity-field-v3"), ...await names("safecity-field-map-v1")];
            }"""
        )
        for path in (
            "/field",
            "/static/vendor/leaflet/leaflet.js",
            "/static/vendor/maplibre/maplibre-gl.mjs",
            "/static/vendor/maplibre/maplibre-gl-worker.mjs",
            "/static/fieldmap.js",
            "/api/map",
            "/map/base.geojson",
        ):
            assert path in kept, (path, kept)

        last = "localStorage.getItem('safecity.field.assignment.pc.rana')"
        kept_incident = (
            f"(() => {{ const a = JSON.parse({last} || '{{}}'); return !!(a.shift && a.incident); }})()"
        )
        # Kept under the rendered username: the shown name gains the role once nav.js hears from the
        # server, which an offline page never does (it once keyed the copy, and offline found none).
        try:
            _until(lambda: bool(tab.evaluate(kept_incident)), "the phone to keep the assignment")
        except AssertionError as exc:
            everything = tab.evaluate("JSON.stringify(Object.entries(localStorage))")
            raise AssertionError(f"{exc}: {everything[:3000]}") from exc
        phone.set_offline(True)
        tab.reload()
        try:
            tab.wait_for_selector("#incident:not([hidden])")  # the last assignment, kept on the phone
        except Exception as exc:
            raise AssertionError(
                f"offline, no incident shown; kept: {tab.evaluate(last)!r}; page: {tab.content()[:1500]}"
            ) from exc
        tab.wait_for_selector("#incident-map path.land")
        tab.wait_for_selector("#incident-map .field-incident")
        assert tab.inner_text("#net") == "offline"
    finally:
        phone.close()
    assert not errors, f"script errors on the page: {errors}"
    assert not outside, f"the page reached outside this server: {outside}"
