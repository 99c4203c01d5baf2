"""Gateway replicas behind nginx, as real processes: ``funnelgate serve`` on ephemeral ports, one nginx.

Used by tests/test_replicas.py and bench/bench_replicas.py. The nginx configuration is the one of
docs/deploy/nginx.conf with the test's ports and paths (the ``proxy`` block is shared text, so the
example cannot drift from what is tested); every response carries ``X-Upstream`` (the replica that
answered), which is how the tests see the round robin.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "deploy" / "nginx.conf"
INSTALL_HINT = "nginx is not installed: run `make install-nginx` (as root: apt-get install -y nginx)"


def nginx_executable() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proxy_block() -> str:
    """The ``location /`` body of the example, between its BEGIN/END PROXY markers."""
    text = EXAMPLE.read_text()
    return text.split("# BEGIN PROXY\n", 1)[1].split("# END PROXY", 1)[0]


def nginx_conf(prefix: Path, listen: int, upstreams: list[int]) -> str:
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;" for p in upstreams)
    temp = " ".join(f"{name}_temp_path {prefix / name};" for name in ("client_body", "proxy"))
    for_root = "user root;\n" if os.geteuid() == 0 else ""  # workers must write the test's temp dirs
    return f"""{for_root}worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  {temp}
  fastcgi_temp_path {prefix / "fastcgi"}; uwsgi_temp_path {prefix / "uwsgi"}; scgi_temp_path {prefix / "scgi"};
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  upstream funnelgate {{
{servers}
    keepalive 32;
  }}
  server {{
    listen 127.0.0.1:{listen};
    location / {{
{proxy_block()}    }}
  }}
}}
"""


@dataclass
class Replica:
    port: int
    data_dir: Path
    process: asyncio.subprocess.Process

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Topology:
    url: str  # nginx
    replicas: list[Replica] = field(default_factory=list)
    redis_ports: list[int] = field(default_factory=list)  # the cluster's masters, when on one


async def start_replica(data_dir: Path, env: Mapping[str, str]) -> Replica:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FUNNEL_")}
    clean.update(
        {**env, "FUNNEL_DATA_DIR": str(data_dir), "FUNNEL_PORT": str(port), "FUNNEL_LOG_LEVEL": "WARNING"}
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", env=clean, cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    replica = Replica(port, data_dir, process)
    await wait_healthy(f"http://{replica.address}", process)
    return replica


async def wait_healthy(
    url: str, process: asyncio.subprocess.Process | None = None, within_s: float = 120
) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            if process is not None and process.returncode is not None:
                err = (await process.stderr.read()).decode() if process.stderr else ""
                raise RuntimeError(f"replica exited early ({process.returncode}): {err[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(f"{url}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    if resp.status in (200, 503):
                        return
            await asyncio.sleep(0.25)
    raise RuntimeError(f"{url} did not answer /healthz in {within_s:.0f} s")


async def stop(process: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


def _write_conf(prefix: Path, listen: int, upstreams: list[int]) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_conf(prefix, listen, upstreams))
    return conf


@contextlib.asynccontextmanager
async def nginx_in_front(prefix: Path, upstreams: list[int]) -> AsyncIterator[str]:
    """nginx proxying to these loopback ports; its URL. Stopped gracefully on exit."""
    nginx = nginx_executable()
    if nginx is None:
        raise RuntimeError(INSTALL_HINT)
    listen = free_port()
    conf = _write_conf(prefix, listen, upstreams)
    checked = await asyncio.create_subprocess_exec(
        nginx, "-t", "-p", str(prefix), "-c", str(conf),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await checked.communicate()
    if checked.returncode != 0:
        raise RuntimeError(f"nginx refused the configuration: {err.decode()}")
    proxy = await asyncio.create_subprocess_exec(
        nginx, "-p", str(prefix), "-c", str(conf),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{listen}"
        await wait_healthy(url, proxy)
        yield url
    finally:
        await stop(proxy, signal.SIGQUIT)  # graceful: lets open WebSocket proxies close


@contextlib.asynccontextmanager
async def replicas_running(workdir: Path, env: Mapping[str, str], count: int) -> AsyncIterator[list[Replica]]:
    """``count`` gateways, each its own data dir (Milvus Lite is one process per file), on the shared
    backends of ``env``; stopped on exit."""
    started: list[Replica] = []
    try:
        for i in range(count):  # one at a time: two cold starts at once on 2 busy cores time out
            started.append(await start_replica(workdir / f"replica-{i}", env))
        yield started
    finally:
        await asyncio.gather(*(stop(r.process) for r in started))


@contextlib.asynccontextmanager
async def behind_nginx(workdir: Path, env: Mapping[str, str], replicas: int = 2) -> AsyncIterator[Topology]:
    """``replicas`` gateways on the shared backends of ``env`` and nginx in front; all stopped on exit."""
    if nginx_executable() is None:
        raise RuntimeError(INSTALL_HINT)
    async with (
        replicas_running(workdir, env, replicas) as started,
        nginx_in_front(workdir / "nginx", [r.port for r in started]) as url,
    ):
        yield Topology(url, started)
