"""Which PostgreSQL server a process uses: the configured one, or an embedded one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from services.core.config import Settings
from services.core.embedded import embedded_postgres


@contextmanager
def open_database(settings: Settings) -> Iterator[str]:
    """Yield the database URL; with no `DATABASE_URL`, run embedded PostgreSQL meanwhile."""
    if settings.database_url:
        yield settings.database_url
        return
    with embedded_postgres(settings.data_dir) as url:
        yield url
