"""task table: one row per sync task, at most one 'syncing' row per region

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""
from alembic import op
import sqlalchemy as sa


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SYNCING_ONLY = sa.text("status = 'syncing'")


def upgrade():
    op.create_table(
        "task",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("region", sa.String(length=255), nullable=False),
        sa.Column("status", sa.Enum("syncing", "synced", "failed", name="taskstatus", native_enum=False, length=16),
                  nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # The database, not the code, guarantees one running sync per region (partial unique index,
    # supported by SQLite >= 3.8 and PostgreSQL).
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index("uq_task_region_syncing", ["region"], unique=True,
                              sqlite_where=SYNCING_ONLY, postgresql_where=SYNCING_ONLY)


def downgrade():
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index("uq_task_region_syncing", sqlite_where=SYNCING_ONLY, postgresql_where=SYNCING_ONLY)
    op.drop_table("task")
