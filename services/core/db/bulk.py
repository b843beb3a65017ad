"""Bulk inserts by COPY, in the caller's transaction.

A batch of the rules worker inserts hundreds of assessments and events. As one multi-row INSERT
(or an executemany) PostgreSQL plans and runs every row as a statement of its own; COPY streams
the rows into the table, and took half the time for the same rows here (docs/benchmarks.md,
"Rules", fifth session). The values go through the same bind processors SQLAlchemy applies to an
INSERT (enums to their text, JSON through the engine's serializer), so a row written here reads
back as the ORM would have written it; columns left out get their server defaults, and triggers
fire as for an INSERT. A single row goes in by INSERT (`COPY_FROM`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg
from sqlalchemy import ColumnDefault, Table, bindparam, insert, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

Processor = Callable[[Any], Any] | None
# Fewer rows than this go in by INSERT: COPY takes one more round trip. One outbox event took
# 0.59 ms by COPY and 0.54 by INSERT here; three took 0.70 and 0.86, a hundred 8.3 and 12.5.
COPY_FROM = 2

# Ids drawn in one statement, for rows whose ids the caller needs back (COPY returns none).
_DRAW_IDS = text(
    "SELECT nextval(pg_get_serial_sequence(:table, :column)) FROM generate_series(1, :count)"
).bindparams(bindparam("count"))


async def copy_rows(session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys, column names) into `table` by COPY.

    The session's transaction must have begun on the database (a statement run in it): COPY
    outside it would commit on its own. A single row goes in by INSERT.
    """
    if not rows:
        return
    if len(rows) < COPY_FROM:
        await session.execute(insert(table), list(rows))
        return
    given = list(rows[0])
    # Python-side defaults of the columns not given (an INSERT would apply them): uuid4 ids.
    defaults = {
        column.key: column.default
        for column in table.c
        if column.key not in rows[0] and isinstance(column.default, ColumnDefault)
    }
    columns = given + list(defaults)
    connection = await session.connection()
    dialect = connection.dialect
    processors: list[Processor] = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    ]
    records = []
    for row in rows:
        values = [row[name] for name in given]
        values += [_default(default) for default in defaults.values()]
        records.append(
            tuple(
                value if process is None else process(value)
                for process, value in zip(processors, values, strict=True)
            )
        )
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    if not driver.is_in_transaction():
        raise RuntimeError(f"COPY into {table.name} outside a transaction would commit on its own")
    try:
        await driver.copy_records_to_table(
            table.name, records=records, columns=columns, schema_name=table.schema
        )
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise _as_dbapi_error(f"COPY {table.name}", exc, closed=driver.is_closed()) from exc


async def draw_ids(
    session: AsyncSession, table: Table, count: int, column: str = "id"
) -> list[int]:
    """`count` new ids from the column's identity sequence, increasing, for rows to COPY."""
    if count <= 0:
        return []
    found = await session.scalars(
        _DRAW_IDS, {"table": table.name, "column": column, "count": count}
    )
    return sorted(found)


def _default(default: ColumnDefault) -> Any:
    """A column's Python-side default value for one row."""
    if default.is_callable:
        return default.arg(None)  # SQLAlchemy wraps the callable to take a context
    if default.is_scalar:
        return default.arg
    raise TypeError(f"a default of {default!r} cannot be computed outside an INSERT")


def _as_dbapi_error(statement: str, exc: Exception, *, closed: bool) -> DBAPIError:
    """The driver's error as SQLAlchemy raises it for a statement, so callers catch one kind
    (`errors.retryable` reads its SQLSTATE, `IntegrityError` is a constraint violated)."""
    kind: type[DBAPIError] = DBAPIError
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        kind = IntegrityError
    elif isinstance(exc, asyncpg.DataError):
        kind = DataError
    return kind(statement, None, exc, connection_invalidated=closed)
