"""active learning: a pending trigger, the deploy gate and the trainings' parameters per project; tasks counted once;
each training's deploy decision; what each server's Serve app was last built from

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('al_pending', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('al_params', JSON, nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('al_last', JSON, nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('deploy_gate', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('deploy_metric', sa.String(length=32), nullable=False, server_default='micro.f1'))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('al_counted_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('training_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deployment', JSON, nullable=False, server_default='{}'))
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deployed_models', JSON, nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('servers', schema=None) as batch_op:
        batch_op.drop_column('deployed_models')
    with op.batch_alter_table('training_jobs', schema=None) as batch_op:
        batch_op.drop_column('deployment')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('al_counted_at')
    with op.batch_alter_table('projects', schema=None) as batch_op:
        for column in ('deploy_metric', 'deploy_gate', 'al_last', 'al_params', 'al_pending'):
            batch_op.drop_column(column)
