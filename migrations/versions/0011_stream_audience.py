"""stream audience: chat messages per minute and viewer counts of stream sessions

Revision ID: 0011_stream_audience
Revises: 0010_studio
Create Date: 2026-12-04 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0011_stream_audience'
down_revision: str | None = '0010_studio'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'stream_chat_minutes',
        sa.Column('session_id', sa.Integer(), nullable=False),
        sa.Column('minute', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('platform', sa.String(length=20), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['stream_sessions.id'],
                                name=op.f('fk_stream_chat_minutes_session_id_stream_sessions'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('session_id', 'minute', 'platform', name=op.f('pk_stream_chat_minutes')),
    )
    op.create_table(
        'stream_viewer_samples',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('session_id', sa.Integer(), nullable=False),
        sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('viewers', sa.Integer(), nullable=False),
        sa.Column('platform', sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['stream_sessions.id'],
                                name=op.f('fk_stream_viewer_samples_session_id_stream_sessions'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stream_viewer_samples')),
    )
    op.create_index(op.f('ix_stream_viewer_samples_session_id'), 'stream_viewer_samples', ['session_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_stream_viewer_samples_session_id'), table_name='stream_viewer_samples')
    op.drop_table('stream_viewer_samples')
    op.drop_table('stream_chat_minutes')
