"""Pre-annotation jobs that read each task's entities from its latest completion (relations for marked entities)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('preannotation_jobs') as batch:
        batch.add_column(sa.Column('entities_from', sa.String(length=16), nullable=False, server_default='models'))


def downgrade() -> None:
    with op.batch_alter_table('preannotation_jobs') as batch:
        batch.drop_column('entities_from')
