"""Teams sharing the cluster (quotas, borrowing limits, seats), projects in teams, and trainings' priorities

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'teams',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('quota', JSON, nullable=False),
        sa.Column('borrowing_limit', JSON, nullable=True),
        sa.Column('seats', JSON, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite adds a column with its reference in place; a batch copy of projects would drop the old table, and
        # dropping it deletes its rows, cascading to every table that references projects
        op.execute('ALTER TABLE projects ADD COLUMN team_id INTEGER REFERENCES teams (id)')
    else:
        op.add_column('projects', sa.Column('team_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_projects_team_id_teams', 'projects', 'teams', ['team_id'], ['id'])
    op.create_index('ix_projects_team_id', 'projects', ['team_id'], unique=False)
    op.add_column('projects', sa.Column('priority', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('training_jobs', sa.Column('priority', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('training_jobs', sa.Column('preemptions', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    op.drop_column('training_jobs', 'preemptions')
    op.drop_column('training_jobs', 'priority')
    op.drop_column('projects', 'priority')
    op.drop_index('ix_projects_team_id', table_name='projects')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint('fk_projects_team_id_teams', 'projects', type_='foreignkey')
        op.drop_column('projects', 'team_id')
        op.drop_table('teams')
    # on SQLite team_id and teams stay: it cannot drop a column that references another table without copying projects
