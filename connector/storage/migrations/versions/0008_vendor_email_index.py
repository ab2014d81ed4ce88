"""vendor email index

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 19:05:30.142955
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Written by hand: autogenerate cannot compare expression indexes on SQLite.
    op.create_index("ix_vendors_email_lower", "vendors", [sa.text("lower(email)")])


def downgrade() -> None:
    op.drop_index("ix_vendors_email_lower", table_name="vendors")
