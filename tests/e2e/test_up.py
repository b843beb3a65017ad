"""`vroegsignaal up` as a person runs it: embedded PostgreSQL, the HTTP app, a clean stop.

These start real processes with no `DATABASE_URL`, so each uses the embedded server in its own
data directory, exactly as the README's run command does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import pytest

VROEGSIGNAAL = str(Path(sys.executable).with_name("vroegsignaal"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VROEGSIGNAAL_")}
    env["VROEGSIGNAAL_DATA_DIR"] = str(data_dir)
    return env


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """The postmaster of this data directory, if one runs."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "postgres" and str(data_dir.resolve()) in cmdline:
            found.append(process)
    return found


def wait_until_gone(data_dir: Path, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not postgres_processes(data_dir):
            return True
        time.sleep(0.2)
    return False


class Service:
    """A running `vroegsignaal up` process."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [VROEGSIGNAAL, "up", "--port", str(self.port), *extra],
            env=embedded_env(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._wait_ready()

    def _wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                pytest.fail(f"`up` exited with {self.process.returncode}:\n{out}\n{err}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.process.kill()
        pytest.fail("`up` did not become ready in time")

    def stop(self, signum: int = signal.SIGINT) -> tuple[int, str, str]:
        self.process.send_signal(signum)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "data"
    yield directory
    for process in postgres_processes(directory):  # never leave a server behind, even on failure
        process.kill()


def test_up_demo_serves_health_docs_and_stops_postgres_on_ctrl_c(data_dir: Path) -> None:
    service = Service(data_dir, "--demo")
    assert httpx.get(f"{service.base}/healthz").json() == {"status": "ok"}
    docs = httpx.get(f"{service.base}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = httpx.get(f"{service.base}/openapi.json").json()["paths"]
    assert {"/healthz", "/readyz", "/v1/regions", "/v1/signals", "/v1/departments"} <= set(paths)
    assert len(httpx.get(f"{service.base}/v1/regions").json()) == 42
    assert postgres_processes(data_dir), "the embedded server should run while `up` runs"
    # The walk-through of docs/api.md: a demo provider posts a signal with its printed key.
    demo = json.loads((data_dir / "demo-credentials.json").read_text())["credentials"]
    key = next(c["api_key"] for c in demo if c["organisation"] == "Vechtstroom GGZ")
    posted = httpx.post(
        f"{service.base}/v1/signals",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "department": "HIC-ZWOLLE",
            "kind": "waitlist",
            "observed_at": datetime.now(UTC).isoformat(),
            "data": {"waiting_count": 41, "behandelwachttijd_weeks": 13.5},
        },
    )
    assert posted.status_code == 202, posted.text

    code, out, err = service.stop(signal.SIGINT)
    assert code == 0, err
    assert "Demo credentials" in out and "vs_" in out
    assert wait_until_gone(data_dir), "Ctrl-C must leave no PostgreSQL process behind"
    credentials = json.loads((data_dir / "demo-credentials.json").read_text())
    roles = {c["role"] for c in credentials["credentials"]}
    assert roles == {
        "provider",
        "insurer",
        "regional_table",
        "national_table",
        "governance",
        "admin",
    }


def test_second_process_reuses_the_server_and_sigterm_stops_it(data_dir: Path) -> None:
    service = Service(data_dir)
    listed = subprocess.run(
        [VROEGSIGNAAL, "region", "list", "--json"],
        env=embedded_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 42
    # The second process left; the server it shared is still there for the first.
    assert httpx.get(f"{service.base}/readyz").status_code == 200

    code, _, err = service.stop(signal.SIGTERM)
    assert code == 0, err
    assert wait_until_gone(data_dir)


def test_a_killed_process_does_not_keep_the_server_alive_forever(data_dir: Path) -> None:
    first = Service(data_dir)
    first.process.kill()  # SIGKILL: no chance to clean up; PostgreSQL keeps running
    first.process.communicate()
    assert postgres_processes(data_dir)

    second = Service(data_dir)
    code, _, err = second.stop(signal.SIGINT)
    assert code == 0, err
    assert wait_until_gone(data_dir), "the dead process's handle must not keep PostgreSQL running"
