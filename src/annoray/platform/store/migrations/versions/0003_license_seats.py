"""license scopes a training job leases, when the scheduler first decided a job, leases by holder

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('training_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', JSON, nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('license_leases', schema=None) as batch_op:
        batch_op.create_index('ix_license_leases_holder', ['holder_kind', 'holder_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('license_leases', schema=None) as batch_op:
        batch_op.drop_index('ix_license_leases_holder')
    with op.batch_alter_table('training_jobs', schema=None) as batch_op:
        batch_op.drop_column('decided_at')
        batch_op.drop_column('scopes')
