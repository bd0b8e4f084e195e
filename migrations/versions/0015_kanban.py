"""kanban: boards, their ordered columns (WIP limits) and cards

Revision ID: 0015_kanban
Revises: 0014_calendar
Create Date: 2026-12-04 04:12:59.075843
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0015_kanban'
down_revision: str | None = '0014_calendar'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('boards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('name_key', sa.String(length=80), nullable=False),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_boards')),
    sa.UniqueConstraint('name_key', name='uq_boards_name_key')
    )
    op.create_table('board_columns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('board_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('name_key', sa.String(length=60), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('wip_limit', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['board_id'], ['boards.id'], name=op.f('fk_board_columns_board_id_boards'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_board_columns')),
    sa.UniqueConstraint('board_id', 'name_key', name='uq_board_columns_name')
    )
    with op.batch_alter_table('board_columns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_board_columns_board_id'), ['board_id'], unique=False)

    op.create_table('cards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('board_id', sa.Integer(), nullable=False),
    sa.Column('column_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('due', sa.Date(), nullable=True),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('artist_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('done_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminded_on', sa.Date(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('moved_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('moved_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_cards_artist_id_artists'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assignee_id'], ['members.id'], name=op.f('fk_cards_assignee_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['board_id'], ['boards.id'], name=op.f('fk_cards_board_id_boards'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['column_id'], ['board_columns.id'], name=op.f('fk_cards_column_id_board_columns'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by_id'], ['members.id'], name=op.f('fk_cards_created_by_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['moved_by_id'], ['members.id'], name=op.f('fk_cards_moved_by_id_members'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cards'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cards_artist_id'), ['artist_id'], unique=False)
        batch_op.create_index('ix_cards_assignee', ['assignee_id', 'done_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_board_id'), ['board_id'], unique=False)
        batch_op.create_index('ix_cards_column', ['column_id', 'position'], unique=False)
        batch_op.create_index('ix_cards_due', ['due', 'done_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index('ix_cards_due')
        batch_op.drop_index('ix_cards_column')
        batch_op.drop_index(batch_op.f('ix_cards_board_id'))
        batch_op.drop_index('ix_cards_assignee')
        batch_op.drop_index(batch_op.f('ix_cards_artist_id'))

    op.drop_table('cards')
    with op.batch_alter_table('board_columns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_board_columns_board_id'))

    op.drop_table('board_columns')
    op.drop_table('boards')
