"""names that say what they hold: active_learning_* instead of al_*, a training's model in `model`; the node a
training or server runs on in a column of its own instead of a key inside `resources`

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

PROJECT_COLUMNS = ('enabled', 'every', 'deploy', 'counter', 'pending', 'params', 'last')


def _move_node_out_of_resources(table: str) -> None:
    rows = sa.table(table, sa.column('id', sa.Integer), sa.column('resources', sa.JSON), sa.column('node_id', sa.String))
    bind = op.get_bind()
    for row_id, resources in bind.execute(sa.select(rows.c.id, rows.c.resources)).all():
        resources = dict(resources or {})
        if 'node_id' in resources:
            node_id = resources.pop('node_id')
            bind.execute(sa.update(rows).where(rows.c.id == row_id).values(resources=resources, node_id=node_id or None))


def _move_node_into_resources(table: str) -> None:
    rows = sa.table(table, sa.column('id', sa.Integer), sa.column('resources', sa.JSON), sa.column('node_id', sa.String))
    bind = op.get_bind()
    for row_id, resources, node_id in bind.execute(sa.select(rows.c.id, rows.c.resources, rows.c.node_id)).all():
        if node_id:
            bind.execute(sa.update(rows).where(rows.c.id == row_id).values(resources={**(resources or {}), 'node_id': node_id}))


# Renames and added columns are plain ALTER TABLE statements on both dialects (SQLite >= 3.25 renames columns): no
# table is copied and dropped, which on SQLite, with foreign keys on, would cascade into the rows that point at it.
RENAMES = [('projects', f'al_{name}', f'active_learning_{name}') for name in PROJECT_COLUMNS] + [
    ('tasks', 'al_counted_at', 'active_learning_counted_at'), ('training_jobs', 'model_name', 'model')]


def upgrade() -> None:
    for table, old, new in RENAMES:
        op.alter_column(table, old, new_column_name=new)
    for table in ('training_jobs', 'servers'):
        op.add_column(table, sa.Column('node_id', sa.String(length=64), nullable=True))
        _move_node_out_of_resources(table)


def downgrade() -> None:
    for table in ('servers', 'training_jobs'):
        _move_node_into_resources(table)
        op.drop_column(table, 'node_id')
    for table, old, new in reversed(RENAMES):
        op.alter_column(table, new, new_column_name=old)
