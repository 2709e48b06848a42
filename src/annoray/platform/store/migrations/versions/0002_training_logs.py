"""training logs, and what a training job selected

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('training_log_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('data', JSON, nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['training_jobs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('training_log_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_log_lines_job_id'), ['job_id'], unique=False)
    with op.batch_alter_table('training_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('selection', JSON, nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('embeddings', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('training_jobs', schema=None) as batch_op:
        batch_op.drop_column('embeddings')
        batch_op.drop_column('selection')
    with op.batch_alter_table('training_log_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_log_lines_job_id'))
    op.drop_table('training_log_lines')
