"""a training request's Idempotency-Key

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('training_jobs', sa.Column('request_key', sa.String(length=100), nullable=True))
    op.create_index('ix_training_jobs_request_key', 'training_jobs', ['project_id', 'request_key', 'kind'], unique=True)


def downgrade() -> None:
    op.drop_index('ix_training_jobs_request_key', table_name='training_jobs')
    with op.batch_alter_table('training_jobs') as batch:
        batch.drop_column('request_key')
