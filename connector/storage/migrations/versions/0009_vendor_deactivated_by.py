"""vendor deactivated by

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 20:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vendors") as batch_op:
        batch_op.add_column(sa.Column("deactivated_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vendors") as batch_op:
        batch_op.drop_column("deactivated_by")
