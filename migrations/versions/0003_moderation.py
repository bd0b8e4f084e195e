"""moderation

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:25:23.141934
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('communities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('rules', sa.JSON(), nullable=False),
    sa.Column('escalation', sa.JSON(), nullable=False),
    sa.Column('modlog', sa.JSON(), nullable=False),
    sa.Column('stream_started_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stream_ended_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_communities')),
    sa.UniqueConstraint('platform', 'external_id', name='uq_communities_platform_external')
    )
    op.create_table('moderation_cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('platform', sa.String(length=20), nullable=False),
    sa.Column('user_id', sa.String(length=100), nullable=False),
    sa.Column('user_name', sa.String(length=200), nullable=False),
    sa.Column('channel_id', sa.String(length=100), nullable=True),
    sa.Column('excerpt', sa.String(length=300), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=True),
    sa.Column('action', sa.String(length=12), nullable=False),
    sa.Column('duration_s', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('counts', sa.Boolean(), nullable=False),
    sa.Column('moderator_id', sa.Integer(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('undone_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('undone_by_id', sa.Integer(), nullable=True),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_moderation_cases_community_id_communities'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['moderator_id'], ['members.id'], name=op.f('fk_moderation_cases_moderator_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['undone_by_id'], ['members.id'], name=op.f('fk_moderation_cases_undone_by_id_members'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_moderation_cases'))
    )
    with op.batch_alter_table('moderation_cases', schema=None) as batch_op:
        batch_op.create_index('ix_moderation_cases_at', ['community_id', 'created_at'], unique=False)
        batch_op.create_index('ix_moderation_cases_user', ['community_id', 'user_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('moderation_cases', schema=None) as batch_op:
        batch_op.drop_index('ix_moderation_cases_user')
        batch_op.drop_index('ix_moderation_cases_at')

    op.drop_table('moderation_cases')
    op.drop_table('communities')
