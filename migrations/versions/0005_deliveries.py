"""deliveries: encrypted webhook secrets, once per recipient and event, ordering and claims

- `webhook_subscriptions.secret` becomes `secret_encrypted` (a Fernet token is longer than the
  clear `whsec_...` secret); `last_success_at` and `deleted_at` (a deleted endpoint keeps its
  delivery log).
- `deliveries`: `seq` (creation order; `created_at` is equal for rows of one transaction),
  `ordering_key` (deliveries with the same key to the same recipient go out in `seq` order),
  `claim_token` / `claimed_until` (a worker's lease while it sends), `last_error`; one delivery
  per (subscription, event) and per (e-mail address, event), so a replayed event is not sent
  twice.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No subscription was stored before this revision (there was no API for them yet).
    op.alter_column(
        "webhook_subscriptions",
        "secret",
        type_=sa.Text(),
        existing_type=sa.String(length=128),
        existing_nullable=False,
    )
    op.alter_column("webhook_subscriptions", "secret", new_column_name="secret_encrypted")
    op.add_column(
        "webhook_subscriptions",
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "webhook_subscriptions",
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
    )

    op.add_column(
        "deliveries",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
    )
    op.add_column("deliveries", sa.Column("ordering_key", sa.String(length=200), nullable=True))
    op.add_column("deliveries", sa.Column("claim_token", sa.Uuid(), nullable=True))
    op.add_column(
        "deliveries", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("deliveries", sa.Column("last_error", sa.Text(), nullable=True))
    op.create_unique_constraint(
        op.f("uq_deliveries_subscription_id_event_id"),
        "deliveries",
        ["subscription_id", "event_id"],
    )
    op.create_unique_constraint(
        op.f("uq_deliveries_email_event_id"), "deliveries", ["email", "event_id"]
    )
    op.create_index(
        "ix_deliveries_pending_order",
        "deliveries",
        ["ordering_key", "seq"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_deliveries_in_flight",
        "deliveries",
        ["subscription_id"],
        unique=False,
        postgresql_where=sa.text("claimed_until IS NOT NULL"),
    )
    op.create_index(
        "ix_deliveries_organisation_seq", "deliveries", ["organisation_id", "seq"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_organisation_seq", table_name="deliveries")
    op.drop_index(
        "ix_deliveries_in_flight",
        table_name="deliveries",
        postgresql_where=sa.text("claimed_until IS NOT NULL"),
    )
    op.drop_index(
        "ix_deliveries_pending_order",
        table_name="deliveries",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_constraint(op.f("uq_deliveries_email_event_id"), "deliveries", type_="unique")
    op.drop_constraint(op.f("uq_deliveries_subscription_id_event_id"), "deliveries", type_="unique")
    op.drop_column("deliveries", "last_error")
    op.drop_column("deliveries", "claimed_until")
    op.drop_column("deliveries", "claim_token")
    op.drop_column("deliveries", "ordering_key")
    op.drop_column("deliveries", "seq")
    op.drop_column("webhook_subscriptions", "deleted_at")
    op.drop_column("webhook_subscriptions", "last_success_at")
    op.alter_column("webhook_subscriptions", "secret_encrypted", new_column_name="secret")
    # A Fernet token does not fit the old column; going down makes the stored secrets unusable
    # either way (the old code expected them in clear), so they are cut to size.
    op.alter_column(
        "webhook_subscriptions",
        "secret",
        type_=sa.String(length=128),
        existing_type=sa.Text(),
        existing_nullable=False,
        postgresql_using="left(secret, 128)",
    )
