"""studio: live presets and their runs (for undo), stream sessions

Revision ID: 0010_presets
Revises: 0009_scores
Create Date: 2026-12-03 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0010_studio'
down_revision: str | None = '0009_scores'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'stream_presets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('name_key', sa.String(length=60), nullable=False),
        sa.Column('scene', sa.String(length=200), nullable=True),
        sa.Column('source', sa.String(length=200), nullable=True),
        sa.Column('source_visible', sa.Boolean(), nullable=True),
        sa.Column('stream', sa.String(length=5), nullable=True),
        sa.Column('stream_mode', sa.String(length=3), nullable=True),
        sa.Column('say', sa.String(length=500), nullable=True),
        sa.Column('policy', sa.String(length=5), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['members.id'], name=op.f('fk_stream_presets_created_by_id_members'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stream_presets')),
    )
    op.create_index('uq_stream_presets_name_key', 'stream_presets', ['name_key'], unique=True)
    op.create_table(
        'stream_preset_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('preset_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('before', sa.JSON(), nullable=False),
        sa.Column('by_id', sa.Integer(), nullable=True),
        sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['by_id'], ['members.id'], name=op.f('fk_stream_preset_runs_by_id_members'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['preset_id'], ['stream_presets.id'],
                                name=op.f('fk_stream_preset_runs_preset_id_stream_presets'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stream_preset_runs')),
    )
    op.create_index(op.f('ix_stream_preset_runs_preset_id'), 'stream_preset_runs', ['preset_id'], unique=False)
    op.create_table(
        'stream_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('artist_id', sa.Integer(), nullable=True),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('planned_start', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('planned_end', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('started_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('ended_at', core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('reminder_id', sa.Integer(), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_stream_sessions_artist_id_artists'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['created_by_id'], ['members.id'], name=op.f('fk_stream_sessions_created_by_id_members'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['reminder_id'], ['reminders.id'], name=op.f('fk_stream_sessions_reminder_id_reminders'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stream_sessions')),
    )
    op.create_index(op.f('ix_stream_sessions_artist_id'), 'stream_sessions', ['artist_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_stream_sessions_artist_id'), table_name='stream_sessions')
    op.drop_table('stream_sessions')
    op.drop_index(op.f('ix_stream_preset_runs_preset_id'), table_name='stream_preset_runs')
    op.drop_table('stream_preset_runs')
    op.drop_index('uq_stream_presets_name_key', table_name='stream_presets')
    op.drop_table('stream_presets')
