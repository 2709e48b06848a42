"""servers spread over nodes, Serve autoscaling options, the replicas each pre-annotation job used

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.add_column('servers', sa.Column('spread', JSON, nullable=True))
    op.add_column('servers', sa.Column('autoscaling', JSON, nullable=True))
    op.add_column('preannotation_jobs', sa.Column('replicas_used', JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('preannotation_jobs') as batch:
        batch.drop_column('replicas_used')
    with op.batch_alter_table('servers') as batch:
        batch.drop_column('autoscaling')
        batch.drop_column('spread')
