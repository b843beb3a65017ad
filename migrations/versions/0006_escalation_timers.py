"""escalation timers: when an alert's step runs out, when it was last announced again

- `alerts.step_due_at`: when an unacknowledged alert moves one step up (null at the top of the
  ladder, when acknowledged, or resolved); the timer sweep finds due alerts by this index.
- `alerts.reminded_at`: when an acknowledged, still open alert was last announced again.
- `silences.lifted_at`: a silence ended early by hand.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("step_due_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("alerts", sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_alerts_step_due",
        "alerts",
        ["step_due_at"],
        unique=False,
        postgresql_where=sa.text("status <> 'resolved'"),
    )
    op.add_column("silences", sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("silences", "lifted_at")
    op.drop_index("ix_alerts_step_due", table_name="alerts")
    op.drop_column("alerts", "reminded_at")
    op.drop_column("alerts", "step_due_at")
