"""`events status|dead-letters|replay|prune`: looking after the event backbone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from services.cli.common import JSON_OPTION, emit, fail, out, run_in_transaction, settings, table
from services.core.config import BusBackend
from services.core.events.deadletters import pending_dead_letters, replay_dead_letters
from services.core.events.maintenance import log_status, prune_log

events = typer.Typer(help="The event backbone: status, dead letters, replay.", no_args_is_help=True)


@events.command("status")
def status_command(as_json: bool = JSON_OPTION) -> None:
    """The outbox, dead letters, and each consumer group's position and lag (PostgreSQL bus)."""

    async def work(session: AsyncSession) -> dict[str, object]:
        return (await log_status(session)).as_dict()

    status = run_in_transaction(work)

    def human() -> None:
        out.print(
            f"Outbox: {status['events']} events, {status['unpublished']} not yet published"
            f" to Kafka; {status['dead_letters']} dead letters waiting"
        )
        groups = status["groups"]
        assert isinstance(groups, list)
        table(
            "Consumer groups (PostgreSQL bus)",
            ["group", "topic", "members", "partitions leased", "lag", "last commit"],
            [
                [
                    g["group"],
                    g["topic"],
                    g["members"],
                    f"{g['leased']}/{g['partitions']}",
                    g["lag"],
                    g["last_commit"],
                ]
                for g in groups
            ],
        )

    emit(as_json, status, human)


@events.command("dead-letters")
def dead_letters_command(
    group: str | None = typer.Option(None, help="Only this consumer group."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Events parked after failing every attempt, with their error."""

    async def work(session: AsyncSession) -> list[dict[str, object]]:
        return [
            {
                "id": letter.id,
                "group": letter.consumer_group,
                "event_id": str(letter.event_id),
                "type": letter.event.get("type"),
                "subject": letter.event.get("subject"),
                "attempts": letter.attempts,
                "error": letter.error,
                "parked_at": letter.created_at.isoformat(),
            }
            for letter in await pending_dead_letters(session, group=group)
        ]

    letters = run_in_transaction(work)

    def human() -> None:
        if not letters:
            out.print("No dead letters waiting.")
            return
        table(
            f"{len(letters)} dead letters",
            ["id", "group", "type", "subject", "attempts", "error", "parked at"],
            [
                [
                    d["id"],
                    d["group"],
                    d["type"],
                    d["subject"],
                    d["attempts"],
                    str(d["error"])[:80],
                    d["parked_at"],
                ]
                for d in letters
            ],
        )

    emit(as_json, letters, human)


@events.command("replay")
def replay_command(
    ids: list[int] = typer.Option([], "--id", help="A dead letter's id (repeat for more)."),
    group: str | None = typer.Option(None, help="Every dead letter of this consumer group."),
    replay_all: bool = typer.Option(False, "--all", help="Every dead letter waiting."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Put dead letters back on the bus once their cause is fixed; other groups skip them."""
    if not (ids or group or replay_all):
        fail("say which dead letters to replay: --id N, --group NAME or --all")

    async def work(session: AsyncSession) -> int:
        return await replay_dead_letters(session, group=group, ids=ids or None)

    count = run_in_transaction(work)
    emit(as_json, {"replayed": count}, lambda: out.print(f"Replayed {count} dead letters."))


@events.command("prune")
def prune_command(
    older_than: int = typer.Option(
        30, "--older-than", min=1, help="Days to keep (at least the Kafka topics' retention)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete log events every group has passed, and idempotency records, older than N days."""
    kafka = settings().bus is BusBackend.KAFKA

    async def work(session: AsyncSession) -> dict[str, int]:
        pruned = await prune_log(
            session, older_than=timedelta(days=older_than), now=datetime.now(UTC), kafka=kafka
        )
        return {"events": pruned.events, "processed": pruned.processed}

    done = run_in_transaction(work)
    emit(
        as_json,
        done,
        lambda: out.print(
            f"Pruned {done['events']} events and {done['processed']} idempotency records"
            f" older than {older_than} days."
        ),
    )
