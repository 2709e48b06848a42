"""Models an admin shares with every project (a project's members serve their own models, imported and shared ones),
and users an admin disables

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from alembic import op
import sqlalchemy as sa

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('models', sa.Column('shared', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('users', sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    op.drop_column('users', 'active')
    op.drop_column('models', 'shared')
