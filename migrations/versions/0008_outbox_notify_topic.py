"""outbox notifications name their topic

The trigger on `outbox_events` sent one empty `NOTIFY vroegsignaal_outbox` per inserting
statement, so every consumer of every topic woke at every commit of any topic and looked for
work it did not have, several times (services/core/events/postgres_bus.py re-polls soon after a
wake-up that found nothing). Now a statement notifies once per topic it wrote, with the topic as
the payload, and a consumer wakes only for its own topics. PostgreSQL folds identical
notifications of one transaction into one.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOTIFY_BY_TOPIC = """
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    written text;
BEGIN
    -- Delivered at commit: wakes the consumers of these topics and the relay.
    FOR written IN SELECT DISTINCT topic FROM inserted LOOP
        PERFORM pg_notify('vroegsignaal_outbox', written);
    END LOOP;
    RETURN NULL;
END $$
"""

NOTIFY_EMPTY = """
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Delivered at commit, once per transaction: wakes the consumers and the relay.
    PERFORM pg_notify('vroegsignaal_outbox', '');
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute("DROP TRIGGER outbox_events_notify ON outbox_events")
    op.execute(NOTIFY_BY_TOPIC)
    op.execute(
        "CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events"
        " REFERENCING NEW TABLE AS inserted"
        " FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_events_notify ON outbox_events")
    op.execute(NOTIFY_EMPTY)
    op.execute(
        "CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )
