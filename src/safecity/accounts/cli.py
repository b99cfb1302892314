"""`safecity users …`: the first admin, other accounts, one-time passwords, disabling, long-lived tokens."""

from __future__ import annotations

import typer
from rich import box
from rich.table import Table

from safecity.accounts import service
from safecity.accounts.models import Role, UserIn
from safecity.core.cliutil import console, friendly_errors, open_context
from safecity.core.clock import format_moment
from safecity.core.errors import InvalidInput

app = typer.Typer(help="User accounts and roles.", no_args_is_help=True)


def _print_one_time(username: str, secret: str) -> None:
    console.print(
        f"one-time password for [bold]{username}[/]: [bold yellow]{secret}[/] "
        "(it must be changed at the first sign-in)"
    )


@app.command("create-admin")
@friendly_errors
def create_admin(
    username: str = typer.Option("admin", help="User name of the admin"),
    password: str | None = typer.Option(None, help="Password; empty: generate a one-time password"),
) -> None:
    """Create the first admin (prints a generated one-time password unless one is given)."""
    ctx = open_context()
    secret = password or service.generate_password()
    with ctx.db.session() as session:
        service.create_user(
            session,
            UserIn(username=username, full_name="Administrator", role=Role.admin, password=secret),
            actor="cli",
            must_change_password=password is None,
        )
    console.print(f"admin [bold]{username}[/] created")
    if password is None:
        _print_one_time(username, secret)


@app.command("create")
@friendly_errors
def create(
    username: str = typer.Argument(..., help="User name"),
    role: Role = typer.Option(..., help="Role"),
    password: str | None = typer.Option(
        None, help="Password (10+ characters); empty: generate a one-time password"
    ),
    must_change: bool = typer.Option(
        False, "--must-change", help="Make the user change the given password at the first sign-in"
    ),
    full_name: str = typer.Option("", help="Full name"),
) -> None:
    """Create a user with a role (with a one-time password unless --password is given)."""
    ctx = open_context()
    secret = password or service.generate_password()
    with ctx.db.session() as session:
        service.create_user(
            session,
            UserIn(username=username, full_name=full_name, role=role, password=secret),
            actor="cli",
            must_change_password=password is None or must_change,
        )
    console.print(f"user [bold]{username}[/] ({role.value}) created")
    if password is None:
        _print_one_time(username, secret)


@app.command("disable")
@friendly_errors
def disable(username: str = typer.Argument(..., help="User name")) -> None:
    """Disable a user: every session and token ends now (open live pages within the re-check time)."""
    ctx = open_context()
    with ctx.db.session() as session:
        service.set_active(session, username, active=False, actor="cli")
    console.print(f"user [bold]{username}[/] disabled; their sessions and tokens no longer work")


@app.command("enable")
@friendly_errors
def enable(username: str = typer.Argument(..., help="User name")) -> None:
    """Enable a disabled user again (they sign in anew)."""
    ctx = open_context()
    with ctx.db.session() as session:
        service.set_active(session, username, active=True, actor="cli")
    console.print(f"user [bold]{username}[/] enabled")


@app.command("reset-password")
@friendly_errors
def reset_password(
    username: str = typer.Argument(..., help="User name"),
    clear_second_factor: bool = typer.Option(
        False, "--clear-second-factor", help="Also remove the user's authenticator app (a lost phone)"
    ),
) -> None:
    """Give a user a one-time password (printed) that must be changed at sign-in; ends their sessions."""
    ctx = open_context()
    with ctx.db.session() as session:
        secret = service.reset_password(
            session, username, actor="cli", clear_second_factor=clear_second_factor
        )
    _print_one_time(username, secret)


@app.command("token")
@friendly_errors
def token(
    username: str = typer.Argument(..., help="User name (e.g. a signal controller's device user)"),
    name: str = typer.Option(..., help="What the token is for"),
    days: float | None = typer.Option(None, help="Lifetime in days; empty: the longest allowed"),
) -> None:
    """Mint an API token for a user (up to `token_max_days`); printed once."""
    ctx = open_context()
    longest = ctx.settings.token_max_days
    if days is not None and days <= 0:
        raise InvalidInput("--days must be more than 0", hint=f"at most {longest:g}")
    with ctx.db.session() as session:
        user = service.get_by_username(session, username)
        if not user.active:
            raise InvalidInput(f"user {username!r} is disabled", hint=f"safecity users enable {username}")
        secret, row = service.mint_api_token(
            session, user, hours=min(days or longest, longest) * 24, name=name, origin="cli", actor="cli"
        )
        expires = row.expires_at
    console.print(f"token for [bold]{username}[/] ({name}), valid until {format_moment(expires)}:")
    console.print(secret, highlight=False, soft_wrap=True)


@app.command("list")
@friendly_errors
def list_users() -> None:
    """List users, their roles and state."""
    ctx = open_context()
    with ctx.db.session() as session:
        users = service.list_users(session)
        table = Table(box=box.SIMPLE)
        for column in ("user", "role"):
            table.add_column(column, no_wrap=True)
        for column in ("state", "second factor", "last sign-in"):
            table.add_column(column)
        for u in users:
            state = "active" if u.active else "disabled"
            if u.active and u.must_change_password:
                state = "must change password"
            last = format_moment(u.last_login_at) if u.last_login_at else "never"
            table.add_row(u.username, u.role, state, "TOTP" if u.second_factor else "none", last)
    console.print(table)
