"""calendar: events (with their recurrence and exceptions), attendees, members' feed tokens

Revision ID: 0014_calendar
Revises: 0013_workflows
Create Date: 2026-12-04 03:59:25.640736
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0014_calendar'
down_revision: str | None = '0013_workflows'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('calendar_feeds',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_calendar_feeds_member_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_calendar_feeds'))
    )
    with op.batch_alter_table('calendar_feeds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_feeds_member_id'), ['member_id'], unique=False)

    op.create_table('calendar_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('starts_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('local_start', sa.String(length=19), nullable=False),
    sa.Column('tz', sa.String(length=60), nullable=False),
    sa.Column('duration_s', sa.Integer(), nullable=False),
    sa.Column('where', sa.String(length=200), nullable=True),
    sa.Column('artist_id', sa.Integer(), nullable=True),
    sa.Column('rule', sa.String(length=200), nullable=True),
    sa.Column('ends_local', sa.String(length=19), nullable=False),
    sa.Column('exdates', sa.JSON(), nullable=False),
    sa.Column('remind_s', sa.Integer(), nullable=True),
    sa.Column('remind_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('cancelled_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_calendar_events_artist_id_artists'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['created_by_id'], ['members.id'], name=op.f('fk_calendar_events_created_by_id_members'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calendar_events'))
    )
    with op.batch_alter_table('calendar_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_events_artist_id'), ['artist_id'], unique=False)
        batch_op.create_index('ix_calendar_events_remind', ['remind_at'], unique=False)
        batch_op.create_index('ix_calendar_events_start', ['starts_at'], unique=False)

    op.create_table('calendar_attendees',
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['calendar_events.id'], name=op.f('fk_calendar_attendees_event_id_calendar_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_calendar_attendees_member_id_members'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', 'member_id', name=op.f('pk_calendar_attendees'))
    )
    with op.batch_alter_table('calendar_attendees', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_attendees_member_id'), ['member_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('calendar_attendees', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_attendees_member_id'))

    op.drop_table('calendar_attendees')
    with op.batch_alter_table('calendar_events', schema=None) as batch_op:
        batch_op.drop_index('ix_calendar_events_start')
        batch_op.drop_index('ix_calendar_events_remind')
        batch_op.drop_index(batch_op.f('ix_calendar_events_artist_id'))

    op.drop_table('calendar_events')
    with op.batch_alter_table('calendar_feeds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_feeds_member_id'))

    op.drop_table('calendar_feeds')
