"""Label Studio as the labeling front end: linked projects, its users, and the tasks and annotations they mirror

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'label_studio_links',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('uid', sa.String(100), nullable=False, unique=True),
        sa.Column('instance', sa.String(300), nullable=False),
        sa.Column('ls_project_id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), sa.ForeignKey('projects.id', ondelete='CASCADE'), nullable=False),
        sa.Column('created_by', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('webhook_ready', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_label_studio_links_project_id', 'label_studio_links', ['project_id'])
    op.create_table(
        'label_studio_users',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('instance', sa.String(300), nullable=False),
        sa.Column('ls_user_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.UniqueConstraint('instance', 'ls_user_id'),
    )
    op.add_column('tasks', sa.Column('ls_task_id', sa.Integer(), nullable=True))
    op.create_index('ux_tasks_project_ls_task', 'tasks', ['project_id', 'ls_task_id'], unique=True)
    op.add_column('completions', sa.Column('ls_annotation_id', sa.Integer(), nullable=True))
    op.create_index('ux_completions_project_ls_annotation', 'completions', ['project_id', 'ls_annotation_id'], unique=True)


def downgrade() -> None:
    op.drop_index('ux_completions_project_ls_annotation', 'completions')
    with op.batch_alter_table('completions') as batch:
        batch.drop_column('ls_annotation_id')
    op.drop_index('ux_tasks_project_ls_task', 'tasks')
    with op.batch_alter_table('tasks') as batch:
        batch.drop_column('ls_task_id')
    op.drop_table('label_studio_users')
    op.drop_index('ix_label_studio_links_project_id', 'label_studio_links')
    op.drop_table('label_studio_links')
