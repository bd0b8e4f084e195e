"""metrics: artist metric values with the day observed and their source (history kept)

Revision ID: 0008_metrics
Revises: 0007_races
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0008_metrics'
down_revision: str | None = '0007_races'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'artist_metrics',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('artist_id', sa.Integer(), nullable=False),
        sa.Column('metric', sa.String(length=40), nullable=False),
        sa.Column('value', sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column('observed_on', sa.Date(), nullable=False),
        sa.Column('source', sa.String(length=100), nullable=False),
        sa.Column('recorded_by_id', sa.Integer(), nullable=True),
        sa.Column('recorded_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['members.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_artist_metrics_latest', 'artist_metrics', ['artist_id', 'metric', 'observed_on', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_artist_metrics_latest', table_name='artist_metrics')
    op.drop_table('artist_metrics')
