"""face embeddings encrypted at rest

Revision ID: 0002_faces
Revises: 0001_faces
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from safecity.core import crypto


revision = "0002_faces"
down_revision = "0001_faces"
branch_labels = None
depends_on = None

PURPOSE = b"faces.embeddings"
photos = sa.table("watchlist_photos", sa.column("id", sa.Integer), sa.column("embeddings", sa.Text))
_BATCH = 500


def upgrade() -> None:
    with op.batch_alter_table("watchlist_photos", schema=None) as batch_op:
        batch_op.alter_column(
            "embeddings",
            existing_type=sa.JSON(),
            type_=sa.Text(),
            existing_nullable=False,
            postgresql_using="embeddings::text",
        )
    bind = op.get_bind()
    rows = bind.execute(sa.select(photos.c.id, photos.c.embeddings)).all()
    for start in range(0, len(rows), _BATCH):
        sealed = [
            {
                "photo_id": photo_id,
                "embeddings": crypto.cipher().seal_text(
                    crypto.pack_vectors(json.loads(text)), purpose=PURPOSE
                ),
            }
            for photo_id, text in rows[start : start + _BATCH]
        ]
        bind.execute(
            photos.update()
            .where(photos.c.id == sa.bindparam("photo_id"))
            .values(embeddings=sa.bindparam("embeddings")),
            sealed,
        )


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(photos.c.id, photos.c.embeddings)).all()
    plain = [
        {
            "photo_id": photo_id,
            "embeddings": json.dumps(
                crypto.unpack_vectors(crypto.cipher().unseal_text(text, purpose=PURPOSE)).tolist()
            ),
        }
        for photo_id, text in rows
    ]
    if plain:
        bind.execute(
            photos.update()
            .where(photos.c.id == sa.bindparam("photo_id"))
            .values(embeddings=sa.bindparam("embeddings")),
            plain,
        )
    with op.batch_alter_table("watchlist_photos", schema=None) as batch_op:
        batch_op.alter_column(
            "embeddings",
            existing_type=sa.Text(),
            type_=sa.JSON(),
            existing_nullable=False,
            postgresql_using="embeddings::json",
        )
