"""pre-annotation servers: autoscaling bound, scopes, rules, language; per-task failures; one prediction per task per job

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_replicas', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('scopes', JSON, nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('rules', JSON, nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=False, server_default='en'))
    with op.batch_alter_table('preannotation_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failures', JSON, nullable=False, server_default='[]'))
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.create_index('ux_predictions_job_task', ['preannotation_job_id', 'task_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('predictions', schema=None) as batch_op:
        batch_op.drop_index('ux_predictions_job_task')
    with op.batch_alter_table('preannotation_jobs', schema=None) as batch_op:
        batch_op.drop_column('failures')
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.drop_column('language')
        batch_op.drop_column('rules')
        batch_op.drop_column('scopes')
        batch_op.drop_column('max_replicas')
