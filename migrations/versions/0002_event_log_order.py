"""event log partitions, notification and consumer group members

The outbox becomes a log with partitions: writers of one partition take its lock before they draw
ids (services/core/events/outbox.py), so within a partition ids grow in commit order and readers
of the PostgreSQL bus can follow them by offset. A trigger notifies the readers at commit. Members
of a consumer group heartbeat in `consumer_members` to share partitions. `outbox_events.event_id`
is no longer unique: a replayed dead letter is logged again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


NOTIFY_FUNCTION = """
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Delivered at commit, once per transaction: wakes the consumers and the relay.
    PERFORM pg_notify('vroegsignaal_outbox', '');
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute(NOTIFY_FUNCTION)
    op.execute(
        "CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )
    op.add_column(
        "outbox_events",
        sa.Column("partition", sa.SmallInteger(), server_default="0", nullable=False),
    )
    op.drop_constraint("uq_outbox_events_event_id", "outbox_events", type_="unique")
    op.create_index("ix_outbox_events_event_id", "outbox_events", ["event_id"])
    op.drop_index("ix_outbox_events_topic_id", table_name="outbox_events")
    op.create_index("ix_outbox_events_log", "outbox_events", ["topic", "partition", "id"])
    op.create_table(
        "consumer_members",
        sa.Column("consumer_group", sa.String(length=128), nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=False),
        sa.Column(
            "joined_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "member_id", name=op.f("pk_consumer_members")),
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_events_notify ON outbox_events")
    op.execute("DROP FUNCTION outbox_notify()")
    op.drop_table("consumer_members")
    op.drop_index("ix_outbox_events_log", table_name="outbox_events")
    op.create_index("ix_outbox_events_topic_id", "outbox_events", ["topic", "id"])
    op.drop_index("ix_outbox_events_event_id", table_name="outbox_events")
    op.execute(
        "DELETE FROM outbox_events a USING outbox_events b"
        " WHERE a.event_id = b.event_id AND a.id > b.id"
    )
    op.create_unique_constraint("uq_outbox_events_event_id", "outbox_events", ["event_id"])
    op.drop_column("outbox_events", "partition")
