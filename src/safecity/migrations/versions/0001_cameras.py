"""camera passwords encrypted at rest, credentials out of stream URLs

Revision ID: 0001_cameras
Revises: 0001_foundation
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

import sqlalchemy as sa
from alembic import op

from safecity.core import crypto


revision = "0001_cameras"
down_revision = "0001_foundation"
branch_labels = ("cameras",)
depends_on = None

PURPOSE = b"cameras.password"
cameras = sa.table(
    "cameras",
    sa.column("id", sa.String),
    sa.column("stream_url", sa.String),
    sa.column("username", sa.String),
    sa.column("password", sa.Text),
)


def _split(url: str) -> tuple[str, str | None, str | None]:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), unquote(user), unquote(password) if colon else None


def upgrade() -> None:
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.alter_column(
            "password", existing_type=sa.VARCHAR(length=200), type_=sa.Text(), existing_nullable=True
        )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(cameras.c.id, cameras.c.stream_url, cameras.c.username, cameras.c.password)
    ).all()
    changes = []
    for camera_id, url, username, password in rows:
        # A password typed into the stream URL moves into the encrypted column (a stored one wins).
        bare, url_user, url_password = _split(url or "")
        password = password if password is not None else url_password
        if password is None and bare == (url or ""):
            continue
        changes.append(
            {
                "camera_id": camera_id,
                "stream_url": bare,
                "username": username or url_user,
                "password": None
                if password is None
                else crypto.cipher().seal_text(password.encode(), purpose=PURPOSE),
            }
        )
    if changes:
        bind.execute(
            cameras.update()
            .where(cameras.c.id == sa.bindparam("camera_id"))
            .values(
                stream_url=sa.bindparam("stream_url"),
                username=sa.bindparam("username"),
                password=sa.bindparam("password"),
            ),
            changes,
        )


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(cameras.c.id, cameras.c.password).where(cameras.c.password.is_not(None))
    ).all()
    plain = [
        {
            "camera_id": camera_id,
            "password": crypto.cipher().unseal_text(sealed, purpose=PURPOSE).decode()[:200],
        }
        for camera_id, sealed in rows
    ]
    if plain:
        bind.execute(
            cameras.update()
            .where(cameras.c.id == sa.bindparam("camera_id"))
            .values(password=sa.bindparam("password")),
            plain,
        )
    with op.batch_alter_table("cameras", schema=None) as batch_op:
        batch_op.alter_column(
            "password", existing_type=sa.Text(), type_=sa.VARCHAR(length=200), existing_nullable=True
        )
