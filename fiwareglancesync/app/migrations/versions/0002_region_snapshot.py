"""region_snapshot table: the sync statuses of each region, refreshed in the background

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "region_snapshot",
        sa.Column("region", sa.String(length=255), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.Column("images", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("region"),
    )


def downgrade():
    op.drop_table("region_snapshot")
