"""marketplace: the 10 service blocks (seeded), requests, their transitions, and the figures' aggregates

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 14:33:39.730105
"""

from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

import core.db


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _block(id_: int, key: str, name: str, aliases: str, description: str, delivers: str, low: int, high: int,
           lead_days: int) -> dict[str, object]:
    # Each block starts announced in a console channel of its own; /market block edit links a real one.
    return {"id": id_, "key": key, "name": name, "aliases": aliases, "description": description,
            "delivers": delivers, "budget_min": Decimal(low), "budget_max": Decimal(high), "lead_days": lead_days,
            "channel_platform": "console", "channel_target": f"mkt-{key}", "channel_label": f"#mkt-{key}",
            "assignee_id": None}


BLOCKS = [
    _block(1, "signature", "Signature & Onboarding", "signature, onboarding, signing",
           "Sign the artist and set them up: contract, splits, accounts and first plan.",
           "Signed contract, onboarding checklist, accounts and a 90-day plan", 500, 3000, 14),
    _block(2, "ar", "Direction Artistique & A&R", "a&r, ar, da, direction artistique, artistic direction",
           "Shape the artistic project: repertoire, collaborators, visual and sound identity.",
           "Project brief, track selection, collaborator shortlist, moodboard", 1000, 8000, 30),
    _block(3, "production", "Production Musicale", "production, prod, studio",
           "Produce the music: beats, recording, mixing and mastering.",
           "Mixed and mastered tracks, stems, session files", 2000, 20000, 45),
    _block(4, "publishing", "Édition/Publishing", "edition, publishing, editions",
           "Register and collect the artist's publishing rights.",
           "Works registered with the societies, split sheets, royalty statements", 500, 5000, 30),
    _block(5, "marketing", "Marketing/Image", "marketing, image, promo",
           "Build the artist's image and campaigns: photos, videos, ads, socials.",
           "Campaign plan, visuals, content calendar, ad results", 1500, 15000, 21),
    _block(6, "distribution", "Distribution", "distribution, distrib, dsp",
           "Release on the streaming platforms and pitch to their editors.",
           "Release delivered to DSPs, metadata, editorial pitch", 300, 3000, 14),
    _block(7, "booking", "Booking/Live", "booking, live, tour, concerts",
           "Book shows and tours and prepare the live set.",
           "Confirmed dates, contracts with venues, technical rider", 1000, 25000, 60),
    _block(8, "synchro", "Licensing/Synchro", "licensing, synchro, sync",
           "Place the music in films, series, ads and games.",
           "Pitched briefs, signed licences, synchronisation fees", 1000, 30000, 45),
    _block(9, "exit", "Sortie/Revente", "sortie, revente, exit, catalogue sale",
           "Prepare an exit: catalogue valuation, sale or transfer of the rights.",
           "Catalogue valuation, buyer shortlist, transfer documents", 5000, 100000, 90),
    _block(10, "strategy", "Direction Stratégique", "strategie, strategy, direction strategique, strategic direction",
           "Set the career strategy: goals, budget, partners and milestones.",
           "Strategic plan, budget, KPI dashboard, quarterly review", 2000, 12000, 30),
]


def upgrade() -> None:
    op.create_table('market_request_counts',
    sa.Column('block_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('block_id', 'status', name=op.f('pk_market_request_counts'))
    )
    op.create_table('market_request_durations',
    sa.Column('block_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.String(length=10), nullable=False),
    sa.Column('hours', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('block_id', 'step', 'hours', name=op.f('pk_market_request_durations'))
    )
    op.create_table('market_revenue',
    sa.Column('block_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('total', sa.Numeric(precision=16, scale=2), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('block_id', 'month', 'currency', name=op.f('pk_market_revenue'))
    )
    blocks = op.create_table('market_blocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=30), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('aliases', sa.String(length=300), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('delivers', sa.Text(), nullable=False),
    sa.Column('budget_min', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('budget_max', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('lead_days', sa.Integer(), nullable=False),
    sa.Column('channel_platform', sa.String(length=20), nullable=True),
    sa.Column('channel_target', sa.String(length=100), nullable=True),
    sa.Column('channel_label', sa.String(length=200), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['members.id'], name=op.f('fk_market_blocks_assignee_id_members'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_blocks')),
    sa.UniqueConstraint('key', name=op.f('uq_market_blocks_key'))
    )
    op.bulk_insert(blocks, BLOCKS)
    op.create_table('market_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('artist_id', sa.Integer(), nullable=False),
    sa.Column('block_id', sa.Integer(), nullable=False),
    sa.Column('brief', sa.Text(), nullable=False),
    sa.Column('budget', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('due', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_market_requests_artist_id_artists'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['assignee_id'], ['members.id'], name=op.f('fk_market_requests_assignee_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['block_id'], ['market_blocks.id'], name=op.f('fk_market_requests_block_id_market_blocks')),
    sa.ForeignKeyConstraint(['requester_id'], ['members.id'], name=op.f('fk_market_requests_requester_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['members.id'], name=op.f('fk_market_requests_updated_by_id_members'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_requests'))
    )
    with op.batch_alter_table('market_requests', schema=None) as batch_op:
        batch_op.create_index('ix_market_requests_artist', ['artist_id', 'id'], unique=False)
        batch_op.create_index('ix_market_requests_assignee', ['assignee_id', 'id'], unique=False)
        batch_op.create_index('ix_market_requests_block_status', ['block_id', 'status', 'id'], unique=False)
        batch_op.create_index('ix_market_requests_open_due', ['due'], unique=False, postgresql_where=sa.text("status IN ('new', 'accepted', 'in_progress')"), sqlite_where=sa.text("status IN ('new', 'accepted', 'in_progress')"))
        batch_op.create_index('ix_market_requests_requester', ['requester_id', 'id'], unique=False)
        batch_op.create_index('ix_market_requests_status', ['status', 'id'], unique=False)

    op.create_table('market_transitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('from_status', sa.String(length=12), nullable=True),
    sa.Column('to_status', sa.String(length=12), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['members.id'], name=op.f('fk_market_transitions_actor_id_members'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['request_id'], ['market_requests.id'], name=op.f('fk_market_transitions_request_id_market_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_transitions'))
    )
    with op.batch_alter_table('market_transitions', schema=None) as batch_op:
        batch_op.create_index('ix_market_transitions_request', ['request_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('market_transitions', schema=None) as batch_op:
        batch_op.drop_index('ix_market_transitions_request')

    op.drop_table('market_transitions')
    with op.batch_alter_table('market_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_market_requests_status')
        batch_op.drop_index('ix_market_requests_requester')
        batch_op.drop_index('ix_market_requests_open_due', postgresql_where=sa.text("status IN ('new', 'accepted', 'in_progress')"), sqlite_where=sa.text("status IN ('new', 'accepted', 'in_progress')"))
        batch_op.drop_index('ix_market_requests_block_status')
        batch_op.drop_index('ix_market_requests_assignee')
        batch_op.drop_index('ix_market_requests_artist')

    op.drop_table('market_requests')
    op.drop_table('market_blocks')
    op.drop_table('market_revenue')
    op.drop_table('market_request_durations')
    op.drop_table('market_request_counts')
