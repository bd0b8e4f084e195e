"""subscriber failures (events a subscriber of the outbox failed on, retried with backoff) and
platform effects (moderation actions carried out by a job on Discord or Twitch)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'subscriber_failures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subscriber', sa.String(length=60), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=False),
        sa.Column('next_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['outbox.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('subscriber', 'event_id'),
    )
    op.create_index('ix_subscriber_failures_due', 'subscriber_failures', ['next_at'], unique=False)
    op.create_table(
        'platform_effects',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('platform', sa.String(length=20), nullable=False),
        sa.Column('community', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=False),
        sa.Column('user_name', sa.String(length=100), nullable=False),
        sa.Column('channel_id', sa.String(length=40), nullable=True),
        sa.Column('message_id', sa.String(length=64), nullable=True),
        sa.Column('duration_s', sa.Integer(), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('notice', sa.String(length=500), nullable=True),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('modlog_channel', sa.String(length=40), nullable=True),
        sa.Column('modlog_title', sa.String(length=200), nullable=False),
        sa.Column('modlog_text', sa.String(length=2000), nullable=False),
        sa.Column('undo_action', sa.String(length=40), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('detail', sa.String(length=500), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('done_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_platform_effects_status', 'platform_effects', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_platform_effects_status', table_name='platform_effects')
    op.drop_table('platform_effects')
    op.drop_index('ix_subscriber_failures_due', table_name='subscriber_failures')
    op.drop_table('subscriber_failures')
