"""What the stack itself costs here: the floors under the speed aims of the rules engine and the
notifier, measured in one run, so that the aims can be weighed against this machine.

    .venv/bin/python -m bench.stack [--count 2000] [--server-url URL] [--json PATH]

Each figure is the CPU of this process per operation (`time.process_time`), and for the
database figures also the CPU of the PostgreSQL backend that served it, and the wall time per
operation done one after another. In a database of its own on the server (default: the local
one at 127.0.0.1:5432), dropped at the end; on uvloop, as the services run:

- `one CEL expression`: the unit the issue gives for the pure evaluation (`cel`, compiled, on a
  prepared context).
- `asyncpg: transaction`: BEGIN, one INSERT of a small row, COMMIT on a connection of its own:
  the least a durable change costs with the driver the services use.
- `asyncpg: statement in a transaction`: one more such INSERT inside an open transaction.
- `SQLAlchemy session: transaction`: the same transaction as the services write it (an
  `AsyncSession` from the pool, `session.begin()`, `session.execute(text)`).
- `SQLAlchemy session: statement in a transaction`: one more `session.execute` inside it.
- `HTTP request, client` and `HTTP request, server`: one `POST` of a signal-sized JSON body by an
  `httpx.AsyncClient` (one connection, kept alive) to a FastAPI app under uvicorn in a process of
  its own that validates it with pydantic and answers 202 without I/O: the client's CPU per
  request (the delivery worker's side of a webhook) and the server's (ingest's side of a signal).
- `HTTP request, client (aiohttp)`: the same request with aiohttp's client, when aiohttp is
  installed (it is not one of the project's dependencies: `pip install aiohttp` to see what
  another client would cost; the row is left out otherwise).

docs/benchmarks.md ("The stack's floors") adds them up along the chain a signal travels.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import cel
import httpx
import psutil
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from bench.measure import backend_cpu, database_of
from services.core.db import scratch
from services.core.db.engine import make_engine, make_sessions

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
console = Console(stderr=True)

_TABLE = "CREATE TABLE floor_rows (id uuid PRIMARY KEY, kind text NOT NULL, data jsonb NOT NULL)"
_INSERT = "INSERT INTO floor_rows (id, kind, data) VALUES ($1, $2, $3::jsonb)"
_INSERT_SA = text(
    "INSERT INTO floor_rows (id, kind, data) VALUES (:id, :kind, CAST(:data AS jsonb))"
)
_DATA = json.dumps({"fte_budgeted": 30.0, "fte_filled": 26.5, "temp_staff_pct": 25.0})
_BODY = {
    "department": "AFD-00001",
    "kind": "staffing",
    "observed_at": "2026-11-30T09:00:00Z",
    "data": {
        "fte_budgeted": 30.0,
        "fte_filled": 26.5,
        "vacancies_fte": 3.5,
        "temp_staff_pct": 25.0,
    },
}

# The server of the HTTP figures: run as `python -m bench.stack --serve PORT`.
_APP = """
from fastapi import FastAPI
from pydantic import BaseModel

class Signal(BaseModel):
    department: str
    kind: str
    observed_at: str
    data: dict[str, float]

app = FastAPI()

@app.post("/v1/signals", status_code=202)
async def post(signal: Signal) -> dict[str, str]:
    return {"department": signal.department}
"""


Op = Callable[[], Awaitable[object]]


async def _timed(
    op: Op, count: int, backend: Callable[[], Awaitable[float]] | None = None
) -> dict[str, float]:
    for _ in range(min(200, count)):  # warm up: prepared statements, pools, caches
        await op()
    before_backend = await backend() if backend else 0.0
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        await op()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    figure = {"cpu_us": round(cpu / count * 1e6, 1), "wall_us": round(wall / count * 1e6, 1)}
    if backend:
        figure["postgres_cpu_us"] = round((await backend() - before_backend) / count * 1e6, 1)
    return figure


async def measure(server: str, count: int) -> dict[str, Any]:
    found: dict[str, dict[str, float]] = {}
    program = cel.compile("has(staffing.sick_leave_pct) && staffing.sick_leave_pct >= 8.0")
    context = cel.Context({"staffing": {"sick_leave_pct": 9.0}})
    started = time.process_time()
    for _ in range(count * 20):
        program.execute(context)
    found["one CEL expression"] = {
        "cpu_us": round((time.process_time() - started) / (count * 20) * 1e6, 2)
    }

    async with scratch.scratch_database(
        server, prefix="vroegsignaal_bench_stack", migrated=False
    ) as url:
        database = database_of(url)

        async def postgres() -> float:
            return sum((await backend_cpu(url, database)).values())

        connection = await asyncpg.connect(**scratch.connect_args(url))
        await connection.execute(_TABLE)

        async def raw_transaction() -> None:
            async with connection.transaction():
                await connection.execute(_INSERT, uuid.uuid4(), "staffing", _DATA)

        async def raw_statement() -> None:
            await connection.execute(_INSERT, uuid.uuid4(), "staffing", _DATA)

        found["asyncpg: transaction"] = await _timed(raw_transaction, count, postgres)
        async with connection.transaction():
            found["asyncpg: statement in a transaction"] = await _timed(
                raw_statement, count, postgres
            )
        await connection.close()

        engine = make_engine(url)
        sessions = make_sessions(engine)

        def row() -> dict[str, Any]:
            return {"id": uuid.uuid4(), "kind": "staffing", "data": _DATA}

        async def session_transaction() -> None:
            async with sessions() as session, session.begin():
                await session.execute(_INSERT_SA, row())

        found["SQLAlchemy session: transaction"] = await _timed(
            session_transaction, count, postgres
        )
        async with sessions() as session, session.begin():

            async def session_statement() -> None:
                await session.execute(_INSERT_SA, row())

            found["SQLAlchemy session: statement in a transaction"] = await _timed(
                session_statement, count, postgres
            )
        await engine.dispose()

    found.update(await _http(count))
    return {
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
        },
        "count": count,
        "figures": found,
    }


async def _http(count: int) -> dict[str, dict[str, float]]:
    """The client's and the server's CPU per request, one request after another."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.stack", "--serve", str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                try:
                    await client.get("/openapi.json")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            process = psutil.Process(server.pid)

            async def request() -> None:
                response = await client.post("/v1/signals", json=_BODY)
                response.raise_for_status()

            for _ in range(200):
                await request()
            served = process.cpu_times()
            client_figure = await _timed(request, count)
            after = process.cpu_times()
        server_cpu = (after.user + after.system) - (served.user + served.system)
        found = {
            "HTTP request, client (httpx)": client_figure,
            "HTTP request, server (uvicorn + FastAPI)": {
                "cpu_us": round(server_cpu / count * 1e6, 1),
                "wall_us": client_figure["wall_us"],
            },
        }
        other = await _aiohttp_client(f"http://127.0.0.1:{port}/v1/signals", count)
        if other is not None:
            found["HTTP request, client (aiohttp)"] = other
        return found
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 10)


async def _aiohttp_client(url: str, count: int) -> dict[str, float] | None:
    """The same request with aiohttp's client, if it is installed (not a dependency)."""
    try:
        aiohttp: Any = importlib.import_module("aiohttp")
    except ImportError:
        return None
    async with aiohttp.ClientSession() as client:

        async def request() -> None:
            async with client.post(url, json=_BODY) as response:
                response.raise_for_status()
                await response.read()

        return await _timed(request, count)


def _serve(port: int) -> None:
    import uvicorn

    namespace: dict[str, Any] = {}
    exec(compile(_APP, "bench/stack.py:_APP", "exec"), namespace)  # noqa: S102 - our own app
    uvicorn.run(namespace["app"], host="127.0.0.1", port=port, log_level="warning", loop="uvloop")


def table(result: dict[str, Any]) -> Table:
    figures = result["figures"]
    unit = figures["asyncpg: transaction"]["cpu_us"]
    made = Table(title=f"The stack's floors: CPU per operation (µs), {result['count']:,} each")
    for column in ("", "this process", "PostgreSQL", "wall", "× asyncpg transaction"):
        made.add_column(column, justify="right" if column else "left")
    for name, figure in figures.items():
        made.add_row(
            name,
            f"{figure['cpu_us']:,.1f}",
            f"{figure['postgres_cpu_us']:,.0f}" if "postgres_cpu_us" in figure else "",
            f"{figure['wall_us']:,.0f}" if "wall_us" in figure else "",
            f"{figure['cpu_us'] / unit:.2f}",
        )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2_000)
    parser.add_argument("--server-url", default=DEFAULT_SERVER_URL)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve)
        return
    import uvloop

    console.print("measuring the stack's floors (about a minute)…")
    result = uvloop.run(measure(args.server_url, args.count))
    Console().print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
