"""Slow work an API request hands to its process's pool, for the client to poll

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'work_jobs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=True),
        sa.Column('requested_by', sa.Integer(), nullable=False),
        sa.Column('status', sa.Enum('queued', 'waiting', 'running', 'succeeded', 'failed', 'cancelled', name='jobstatus',
                                    native_enum=False, length=32), nullable=False),
        sa.Column('result', JSON, nullable=True),
        sa.Column('error', JSON, nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['requested_by'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_work_jobs_project_id'), 'work_jobs', ['project_id'], unique=False)
    op.create_index(op.f('ix_work_jobs_requested_by'), 'work_jobs', ['requested_by'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_work_jobs_requested_by'), table_name='work_jobs')
    op.drop_index(op.f('ix_work_jobs_project_id'), table_name='work_jobs')
    op.drop_table('work_jobs')
