"""reliability: live artist names unique in the database, 64-bit follower counts, requests already answered

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Live duplicates made before the index (by a race) are archived, keeping the oldest.
    op.execute("UPDATE artists SET archived_at = updated_at WHERE archived_at IS NULL AND id NOT IN ("
               "SELECT min(id) FROM artists WHERE archived_at IS NULL GROUP BY name_key)")
    op.create_index('uq_artists_live_name', 'artists', ['name_key'], unique=True,
                    postgresql_where=sa.text('archived_at IS NULL'), sqlite_where=sa.text('archived_at IS NULL'))
    with op.batch_alter_table('artists', schema=None) as batch_op:
        batch_op.alter_column('followers', existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=True)
    op.create_table(
        'handled_requests',
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('answer', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )
    op.create_index('ix_handled_requests_at', 'handled_requests', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_handled_requests_at', table_name='handled_requests')
    op.drop_table('handled_requests')
    with op.batch_alter_table('artists', schema=None) as batch_op:
        batch_op.alter_column('followers', existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=True)
    op.drop_index('uq_artists_live_name', table_name='artists')
