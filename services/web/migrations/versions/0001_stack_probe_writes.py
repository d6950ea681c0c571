"""The stack's probe table: the writes POST /api/db/writes stores (stack/probes/database.py).

Revision ID: 0001
Revises:
Created: 2026-12-07

Keep it while the stack's database probes are on; your own migrations follow it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "stack_probe_writes",
        # The request's X-Request-ID: a client's retry of the same write cannot store it twice.
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade():
    op.drop_table("stack_probe_writes")
