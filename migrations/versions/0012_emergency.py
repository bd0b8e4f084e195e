"""emergency mode and linked communities: a Twitch channel's cases in a Discord mod-log, chat settings kept to restore

Revision ID: 0012_emergency
Revises: 0011_stream_audience
Create Date: 2026-12-04 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012_emergency'
down_revision: str | None = '0011_stream_audience'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('communities') as batch:
        batch.add_column(sa.Column('linked', sa.String(length=120), nullable=True))
        batch.add_column(sa.Column('emergency', sa.JSON(), nullable=True))
    with op.batch_alter_table('platform_effects') as batch:
        batch.add_column(sa.Column('payload', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('previous', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('platform_effects') as batch:
        batch.drop_column('previous')
        batch.drop_column('payload')
    with op.batch_alter_table('communities') as batch:
        batch.drop_column('emergency')
        batch.drop_column('linked')
