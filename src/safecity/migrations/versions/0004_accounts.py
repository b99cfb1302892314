"""TOTP secrets encrypted at rest

Revision ID: 0004_accounts
Revises: 0003_accounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from safecity.core import crypto


revision = "0004_accounts"
down_revision = "0003_accounts"
branch_labels = None
depends_on = None

PURPOSE = b"users.totp_secret"
users = sa.table("users", sa.column("id", sa.Integer), sa.column("totp_secret", sa.Text))


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "totp_secret", existing_type=sa.VARCHAR(length=64), type_=sa.Text(), existing_nullable=True
        )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(users.c.id, users.c.totp_secret).where(users.c.totp_secret.is_not(None))
    ).all()
    sealed = [
        {"user_id": user_id, "secret": crypto.cipher().seal_text(secret.encode(), purpose=PURPOSE)}
        for user_id, secret in rows
    ]
    if sealed:
        bind.execute(
            users.update()
            .where(users.c.id == sa.bindparam("user_id"))
            .values(totp_secret=sa.bindparam("secret")),
            sealed,
        )


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(users.c.id, users.c.totp_secret).where(users.c.totp_secret.is_not(None))
    ).all()
    plain = [
        {"user_id": user_id, "secret": crypto.cipher().unseal_text(text, purpose=PURPOSE).decode()}
        for user_id, text in rows
    ]
    if plain:
        bind.execute(
            users.update()
            .where(users.c.id == sa.bindparam("user_id"))
            .values(totp_secret=sa.bindparam("secret")),
            plain,
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "totp_secret", existing_type=sa.Text(), type_=sa.VARCHAR(length=64), existing_nullable=True
        )
