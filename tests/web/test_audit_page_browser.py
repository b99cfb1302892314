"""The audit log fits the screen: long details wrap instead of pushing the page sideways."""

from __future__ import annotations

from typing import Any

import pytest

from safecity.accounts.models import Role
from safecity.audit import service as audit
from safecity.core.context import Context
from tests.browser import LiveServer, sign_in
from tests.conftest import make_user

pytestmark = pytest.mark.browser


def test_the_audit_log_does_not_scroll_sideways_at_1600_px(
    ctx: Context, live_server: LiveServer, page: Any
) -> None:
    with ctx.db.session() as session:
        for i in range(5):
            audit.record(
                session,
                actor="investigator.with.a.rather.long.name",
                action="media.hold",
                target="sha256:" + "ab" * 32 + ".jpg",
                detail={"refs": ["sha256:" + f"{i:02d}" * 32 + ".jpg"] * 4, "reason": "x" * 300},
            )
    auditor = make_user(ctx, Role.auditor, "auditor.rana")
    page.set_viewport_size({"width": 1600, "height": 900})
    sign_in(page, live_server.url, auditor)
    page.goto(live_server.url + "/audit")
    page.wait_for_selector("body[data-ready=yes]")
    assert page.locator("#audit tbody tr").count() >= 5
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px window"
