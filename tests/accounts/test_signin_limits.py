"""Guessing passwords: limits per address, a delay per account that never locks its owner out."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from safecity.accounts.models import LoginClient, LoginDevice, User
from safecity.accounts.signin import service as signin
from safecity.accounts.signin.service import Limits, address_key
from safecity.audit.models import AuditEntry
from safecity.core.context import Context
from safecity.core.db import get_by
from safecity.core.errors import SafeCityError
from safecity.settings import Settings
from tests.accounts.conftest import Clock, caller, login
from tests.conftest import PASSWORD, make_user

ATTACKERS = [f"198.51.100.{i}" for i in range(1, 9)]


def _failed_logins(ctx: Context, username: str) -> int:
    with ctx.db.session() as session:
        user = get_by(session, User, username=username)
        assert user is not None
        return user.failed_logins


def _patient_attack(app: Any, username: str, guesses: int, clock: Clock) -> None:
    """Wrong passwords from rotating addresses, each after waiting out any delay (hours of guessing)."""
    for i in range(guesses):
        clock.advance(301)
        assert login(caller(app, ATTACKERS[i % len(ATTACKERS)]), username, f"guess-{i}").status_code == 401


def test_an_attackers_failures_do_not_lock_the_admin_out(ctx: Context, app: Any, clock: Clock) -> None:
    admin = make_user(ctx, "admin")
    office = caller(app, "10.1.1.5")
    assert login(office, admin).status_code == 200  # the admin's own browser, known from now on
    _patient_attack(app, admin, 12, clock)
    assert _failed_logins(ctx, admin) == 12
    # The attacker's next guess waits the longest delay (never more)…
    slowed = login(caller(app, ATTACKERS[0]), admin, "next-guess")
    assert slowed.status_code == 429 and "try again in 5 min" in slowed.json()["hint"]
    # …so does a stranger's browser with the right password (a delay, not a lock)…
    assert login(caller(app, "10.9.9.9"), admin).status_code == 429
    # …while the admin's own browser signs in at once, mid-attack; that gives the attacker no fresh
    # free guesses, and a new browser that gets in through the delay starts the count again.
    assert login(office, admin).status_code == 200
    assert _failed_logins(ctx, admin) == 12
    assert login(caller(app, ATTACKERS[1]), admin, "guess-after").status_code == 429
    clock.advance(301)
    assert login(caller(app, "10.9.9.9"), admin).status_code == 200
    assert _failed_logins(ctx, admin) == 0


def test_the_account_delay_passes_and_the_right_password_gets_in(
    ctx: Context, app: Any, clock: Clock
) -> None:
    admin = make_user(ctx, "admin")
    _patient_attack(app, admin, 12, clock)
    newcomer = caller(app, "10.2.2.2")
    clock.advance(299)
    assert login(newcomer, admin).status_code == 429
    clock.advance(2)  # the longest delay (300 s) is over, however long the attack went on
    assert login(newcomer, admin).status_code == 200


def test_the_delay_doubles_with_each_failure_and_stops_at_the_longest() -> None:
    limits = Limits(per_address_per_minute=5, free_failures=3, max_delay_s=300)
    delays = [limits.delay_after(n).total_seconds() for n in range(1, 16)]
    assert delays[:2] == [0, 0]  # the first failures are free
    assert delays[2:6] == [1, 2, 4, 8]
    assert max(delays) == 300 and delays[-1] == 300


def test_one_address_is_limited_whatever_names_it_tries(ctx: Context, app: Any) -> None:
    ctx.settings.login_attempts_per_minute = 5
    names = [make_user(ctx, "operator") for _ in range(3)]
    attacker = caller(app, "203.0.113.7")
    codes = [login(attacker, names[i % 3], "wrong-password").status_code for i in range(7)]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    refused = login(attacker, names[0])  # even the right password, from this address, this minute
    assert refused.status_code == 429 and "from your address" in refused.json()["detail"]
    # Another address is not held back, and no account waits (failures spread over three names).
    assert login(caller(app, "203.0.113.8"), names[0]).status_code == 200


def test_an_ipv6_attacker_is_limited_by_its_whole_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") == "192.0.2.1"


def test_made_up_names_write_no_rows_of_their_own(ctx: Context, app: Any) -> None:
    ctx.settings.login_attempts_per_minute = 5
    made_up = [f"nobody-{i:03d}" for i in range(40)]
    for n, address in enumerate(ATTACKERS):
        attacker = caller(app, address)
        for name in [*made_up[n * 5 : n * 5 + 5], "one-more"]:
            login(attacker, name, "whatever-password")
    with ctx.db.session() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action.like("login%"))).all()
        windows = session.scalar(select(func.count()).select_from(LoginClient))
    text = " ".join(f"{e.actor} {e.target} {e.detail}" for e in entries)
    assert not any(name in text for name in made_up)  # no name typed by a stranger is on record
    # One row per address for the unknown names, one when it hit the limit: bounded by addresses.
    assert {e.action for e in entries} == {"login.unknown_user", "login.address_limited"}
    assert len(entries) == 2 * len(ATTACKERS)
    assert windows == len(ATTACKERS)


def test_a_known_browser_that_keeps_failing_is_known_no_longer(ctx: Context, app: Any) -> None:
    name = make_user(ctx, "supervisor")
    browser = caller(app, "10.3.3.3")
    assert login(browser, name).status_code == 200
    codes = [login(browser, name, "wrong-password").status_code for _ in range(5)]
    assert codes == [401] * 5
    with ctx.db.session() as session:
        assert session.scalar(select(func.count()).select_from(LoginDevice)) == 0


def test_concurrent_guesses_cannot_slip_past_the_count(ctx: Context, app: Any, clock: Clock) -> None:
    name = make_user(ctx, "admin")
    attackers = [caller(app, f"192.0.2.{i}") for i in range(1, 21)]
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda c: login(c, name, f"a-guess-{id(c)}").status_code, attackers))
    # At most the free failures reach Argon2; the rest are turned away before it, all at once.
    assert set(codes) <= {401, 429}
    assert codes.count(401) <= ctx.settings.login_free_failures, codes
    assert _failed_logins(ctx, name) == codes.count(401)


def test_a_failure_and_a_success_leave_the_address_count_honest(ctx: Context, app: Any) -> None:
    ctx.settings.login_attempts_per_minute = 3
    name = make_user(ctx, "operator")
    desk = caller(app, "10.4.4.4")
    # Colleagues behind one address sign in all day: successes do not use up the address's minute.
    for _ in range(4):
        assert login(desk, name).status_code == 200
        desk.cookies.clear()
    with ctx.db.session() as session:
        window = session.get(LoginClient, "10.4.4.4")
        assert window is not None and window.attempts == 0


def test_the_limits_hold_on_both_databases(any_db_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=any_db_url, login_attempts_per_minute=3)
    context = Context.create(settings)
    try:
        name = make_user(context, "admin")

        def attempt(password: str, address: str, device: str | None = None) -> str:
            try:
                signed = signin.sign_in(
                    context.db,
                    settings,
                    username=name,
                    password=password,
                    code=None,
                    address=address,
                    device_secret=device,
                )
            except SafeCityError as exc:
                return exc.code
            return signed.device_secret

        device = attempt(PASSWORD, "10.50.0.1")  # a success: this browser is known from now on
        assert [attempt("wrong-one", "10.50.0.2") for _ in range(4)] == [
            "unauthorized",
            "unauthorized",
            "unauthorized",
            "too_many_requests",  # the address's minute is used up
        ]
        assert attempt("wrong-two", "10.50.0.3") == "too_many_requests"  # the account waits now
        assert attempt(PASSWORD, "10.50.0.1", device) == device  # the known browser does not
        with context.db.session() as session:
            user = get_by(session, User, username=name)
            assert user is not None and user.failed_logins == 3
            windows = session.scalars(select(LoginClient).order_by(LoginClient.address)).all()
        assert [(w.address, w.attempts) for w in windows] == [
            ("10.50.0.1", 0),
            ("10.50.0.2", 4),
            ("10.50.0.3", 1),
        ]
    finally:
        context.db.dispose()
