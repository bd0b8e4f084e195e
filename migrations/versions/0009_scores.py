"""scores: Market Fit model versions (version 1 = expert defaults), artist scores, cohort figures, nightly refits

Revision ID: 0009_scores
Revises: 0008_metrics
Create Date: 2026-12-03 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = '0009_scores'
down_revision: str | None = '0008_metrics'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The expert defaults as they were written when this migration was (core.scoring.FACTORS).
DEFAULTS = {
    "engagement": 0.12, "audience_size": 0.10, "listeners": 0.08,
    "momentum": 0.10, "streams": 0.08, "releases": 0.07,
    "live": 0.07, "booking": 0.07, "merch": 0.06, "sync": 0.05,
    "audience_rank": 0.06, "listeners_rank": 0.05, "engagement_rank": 0.05, "momentum_rank": 0.04,
}


def upgrade() -> None:
    models = op.create_table(
        'score_models',
        sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('weights', sa.JSON(), nullable=False),
        sa.Column('trained', sa.JSON(), nullable=False),
        sa.Column('auc', sa.Float(), nullable=True),
        sa.Column('previous_auc', sa.Float(), nullable=True),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['created_by_id'], ['members.id'], name=op.f('fk_score_models_created_by_id_members'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('version', name=op.f('pk_score_models')),
    )
    op.bulk_insert(models, [{"version": 1, "weights": DEFAULTS, "trained": {}, "auc": None, "previous_auc": None,
                             "note": "Expert defaults", "created_at": core.db.utcnow(), "created_by_id": None}])
    op.create_table(
        'artist_scores',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('artist_id', sa.Integer(), nullable=False),
        sa.Column('model_version', sa.Integer(), nullable=False),
        sa.Column('overall', sa.Float(), nullable=False),
        sa.Column('audience', sa.Float(), nullable=False),
        sa.Column('market', sa.Float(), nullable=False),
        sa.Column('monetization', sa.Float(), nullable=False),
        sa.Column('competitive', sa.Float(), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=False),
        sa.Column('inputs', sa.JSON(), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['artist_id'], ['artists.id'], name=op.f('fk_artist_scores_artist_id_artists'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['model_version'], ['score_models.version'],
                                name=op.f('fk_artist_scores_model_version_score_models')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_artist_scores')),
    )
    op.create_index('ix_artist_scores_artist', 'artist_scores', ['artist_id', 'id'], unique=False)
    op.create_index('ix_artist_scores_created', 'artist_scores', ['created_at'], unique=False)
    op.create_table(
        'score_cohorts',
        sa.Column('genre_key', sa.String(length=100), nullable=False),
        sa.Column('career', sa.String(length=20), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('figures', sa.JSON(), nullable=False),
        sa.Column('computed_at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('genre_key', 'career', name=op.f('pk_score_cohorts')),
    )
    op.create_table(
        'score_refits',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('outcome', sa.String(length=500), nullable=False),
        sa.Column('at', core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_score_refits')),
    )


def downgrade() -> None:
    op.drop_table('score_refits')
    op.drop_table('score_cohorts')
    op.drop_index('ix_artist_scores_created', table_name='artist_scores')
    op.drop_index('ix_artist_scores_artist', table_name='artist_scores')
    op.drop_table('artist_scores')
    op.drop_table('score_models')
