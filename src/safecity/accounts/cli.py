"""`safecity users …`: the first admin and other accounts."""

from __future__ import annotations

import typer
from rich.table import Table

from safecity.accounts import service
from safecity.accounts.models import Role, UserIn
from safecity.core.cliutil import console, friendly_errors, open_context

app = typer.Typer(help="User accounts and roles.", no_args_is_help=True)


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
        console.print(f"one-time password: [bold yellow]{secret}[/] (change it after signing in)")


@app.command("create")
@friendly_errors
def create(
    username: str = typer.Argument(..., help="User name"),
    role: Role = typer.Option(..., help="Role"),
    password: str = typer.Option(..., prompt=True, hide_input=True, help="Password (10+ characters)"),
    full_name: str = typer.Option("", help="Full name"),
) -> None:
    """Create a user with a role."""
    ctx = open_context()
    with ctx.db.session() as session:
        service.create_user(
            session, UserIn(username=username, full_name=full_name, role=role, password=password), actor="cli"
        )
    console.print(f"user [bold]{username}[/] ({role.value}) created")


@app.command("list")
@friendly_errors
def list_users() -> None:
    """List users and their roles."""
    ctx = open_context()
    with ctx.db.session() as session:
        users = service.list_users(session)
        table = Table("user", "role", "active", "last sign-in")
        for u in users:
            table.add_row(u.username, u.role, "yes" if u.active else "no", str(u.last_login_at or "never"))
    console.print(table)
