"""A real 3-master Redis Cluster on loopback for the tests, started once per session.

Three ``redis-server --cluster-enabled yes`` on free loopback ports in a temporary directory, joined with
``redis-cli --cluster create … --cluster-replicas 0``; ready when every node reports ``cluster_state:ok``.
Stopped (and reaped) at the end of the session. :class:`ClusterUnavailable` says why it could not start.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.mongo_server import die_with_us

MASTERS = 3


class ClusterUnavailable(RuntimeError):
    pass


def _free_ports(n: int) -> list[int]:
    # Cluster nodes also listen on port + 10000 (the cluster bus): both must be free.
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def _cli(cli: str, port: int, *args: str, timeout: float = 10) -> str:
    try:
        done = subprocess.run(
            [cli, "-h", "127.0.0.1", "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:  # a loaded machine: the caller's deadline decides
        return ""
    return done.stdout + done.stderr


ATTEMPTS = 3  # free ports can be taken by another process between the probe and the bind


@contextlib.contextmanager
def running_redis_cluster() -> Iterator[list[int]]:
    """The ports of the three masters of a fresh cluster (all 16384 slots covered)."""
    failures: list[str] = []
    for _ in range(ATTEMPTS):
        with contextlib.ExitStack() as stack:
            try:
                ports = stack.enter_context(_cluster())
            except ClusterUnavailable as exc:
                failures.append(str(exc))
                continue
            yield ports
            return
    raise ClusterUnavailable("; ".join(failures))


@contextlib.contextmanager
def _cluster() -> Iterator[list[int]]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise ClusterUnavailable("redis-server/redis-cli not installed (make ensure-redis installs them)")
    with tempfile.TemporaryDirectory(prefix="fg-cluster-") as tmp:
        ports = _free_ports(MASTERS)
        processes: list[subprocess.Popen[bytes]] = []
        try:
            for port in ports:
                node_dir = Path(tmp) / str(port)
                node_dir.mkdir()
                processes.append(
                    subprocess.Popen(
                        [
                            # Killed with the test process, even by a SIGKILL or a crash: a test run that
                            # segfaulted left its three nodes running for good.
                            *die_with_us(),
                            server,
                            "--port",
                            str(port),
                            "--bind",
                            "127.0.0.1",
                            "--cluster-enabled",
                            "yes",
                            "--cluster-config-file",
                            str(node_dir / "nodes.conf"),
                            "--dir",
                            str(node_dir),
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--cluster-node-timeout",
                            "2000",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            deadline = time.monotonic() + 20
            for port in ports:
                while "PONG" not in _cli(cli, port, "PING"):
                    if time.monotonic() > deadline:
                        raise ClusterUnavailable(f"redis-server on port {port} did not answer PING")
                    time.sleep(0.05)
            created = _cli(
                cli,
                ports[0],
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
                timeout=60,
            )
            if "All 16384 slots covered" not in created:
                raise ClusterUnavailable(f"redis-cli --cluster create failed: {created[-500:]}")
            while not all("cluster_state:ok" in _cli(cli, p, "CLUSTER", "INFO") for p in ports):
                if time.monotonic() > deadline + 40:
                    raise ClusterUnavailable("the cluster never reached cluster_state:ok")
                time.sleep(0.1)
            yield ports
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
