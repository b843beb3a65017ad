"""outbox events stored as json, not jsonb

`outbox_events.event` holds each CloudEvent for the bus to pass on whole: nothing queries into
it, and the consumers and the relay read it back as a document. As jsonb, PostgreSQL parsed every
event into its binary form on insert, about 37 µs an event here, which was most of the rules
worker's largest statement (docs/benchmarks.md, "Rules", fifth session). json keeps the text as
written, checked for validity only: the same 685 events of a worker's batch went in by COPY in
29 ms instead of 55.

Backward compatible for one release, as deploy/README.md asks: jsonb to json is an assignment
cast, so the previous release's INSERTs (which bind `::JSONB`) still go in, and its readers get
the same documents back. The ALTER rewrites the table under an exclusive lock: the outbox holds
what `vroegsignaal events prune` keeps (30 days by default), so it is short.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE outbox_events ALTER COLUMN event TYPE json USING event::json")


def downgrade() -> None:
    op.execute("ALTER TABLE outbox_events ALTER COLUMN event TYPE jsonb USING event::jsonb")
