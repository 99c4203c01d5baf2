"""All configuration, read once from ``FUNNEL_*`` environment variables and CLI overrides.

No other module reads the environment: they receive a :class:`Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway import setting_values as parse
from gateway.edge_settings import (
    DEFAULT_RATE_LIMITS,
    LOOPBACK_NAMES,
    api_key_entries,
    hosts,
    jwks,
    jwt_secret,
    memory,
    origins,
    pem_public_key,
    persisted_mode,
    rate_limits,
)
from gateway.errors import ConfigError

PREFIX = "FUNNEL_"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = 8000
    mongo_url: str | None = None
    mongo_db: str = "funnel_analysis"
    mongo_pool_size: int = 50
    mongo_timeout_ms: int = 5000
    milvus_uri: str | None = None
    redis_url: str | None = None
    # FUNNEL_REDIS_URL names one node of a Redis Cluster (any node: the client discovers the others).
    redis_cluster: bool = False
    # More nodes to discover the cluster from (host:port), asked when that one does not answer.
    redis_cluster_nodes: tuple[str, ...] = ()
    log_level: str = "INFO"
    max_page_size: int = 1000
    # Realtime capture (gateway/realtime): limits of POST /events and trackEvents, and sessionisation.
    events_max_batch: int = 1000
    events_max_bytes: int = 1024 * 1024
    events_max_skew_s: int = 300  # how far in the future an event's timestamp may be
    events_max_age_days: int = 30  # how far in the past a live event's timestamp may be
    session_gap_s: int = 30 * 60  # inactivity that ends a session (= the session:{id} TTL)
    # The embedded store's in-memory funnel index (off: every funnel is computed in DuckDB SQL) and
    # its answers from the funnel_analytics rows (off: funnels are always computed).
    index: bool = True
    preaggregates: bool = True
    # MongoDB: how long other gateways get to notice a generation switch (they re-read it every second)
    # before the ingest drops the old generation (gateway/stores/datasets.py).
    switch_grace_s: float = 5.0
    # The edge (issue 12): credentials, browsers, query limits, time, rate limits, persisted queries.
    api_keys: tuple[str, ...] = ()  # "name:role:sha256-hex" entries; the keys themselves are never stored
    jwt_secret: str | None = field(default=None, repr=False)  # HS256; never in a repr or a log
    jwt_public_key_file: Path | None = None  # RS256, a PEM public key
    jwks_file: Path | None = None  # RS256, a JWKS document (keys picked by the token's kid)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES
    cors_origins: tuple[str, ...] = ()
    max_depth: int = 10
    max_aliases: int = 20
    max_tokens: int = 2000
    max_query_chars: int = 20_000
    # A /graphql body (a document plus its variables); at least 4 * max_query_chars bytes, so a document
    # at the character limit always fits (UTF-8: up to 4 bytes a character).
    max_body_bytes: int = 1024 * 1024
    max_cost: int = 200_000
    introspection: bool = True
    request_timeout_s: float = 30.0
    # Slow clients: a connection sends its request head within header_timeout_s of opening or of its
    # previous response (also how long an idle keep-alive connection stays: aiohttp has one timer for
    # both), and a request's body within body_timeout_s of the request being taken up. Without them a
    # client trickling a byte at a time held a connection for an hour (aiohttp's 3630 s) or a waiting handler for ever.
    # 75 s: above nginx's 60 s upstream keep-alive, so a proxy closes its idle connections first.
    header_timeout_s: float = 75.0
    body_timeout_s: float = 60.0
    # Open connections per client address (0: no cap), counted from the accept, before any request
    # head (web/connection_cap.py): each holds a file descriptor whether or not it ever sends a request.
    max_connections_per_address: int = 512
    # Open WebSockets per client address (0: no cap): a socket is held before it authenticates.
    max_sockets_per_address: int = 256
    # Operations running at once on one WebSocket (subscriptions, and queries still being answered):
    # each holds a task and, for a subscription, a place in the realtime hub for as long as it lives.
    max_operations_per_socket: int = 100
    rate_limits: tuple[tuple[str, int], ...] = DEFAULT_RATE_LIMITS
    rate_window_s: int = 60
    persisted_queries: str = "apq"  # apq | allowlist | off
    persisted_queries_file: Path | None = None  # default: <data dir>/persisted-queries.json
    redis_maxmemory: str = "256mb"
    shutdown_timeout_s: float = 5.0
    # Operations (docs/operations.md): GraphQL operations slower than this are logged with their shape
    # and backend timings (0: off); the access log (one line per HTTP request, Apache combined format).
    slow_operation_ms: int = 1000
    access_log: bool = True
    # The CLI flags that set a value (setting -> "--flag"): an error about that value names what the user
    # typed, not an environment variable they never set.
    flags: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def key_of(self, setting: str) -> str:
        """Where ``setting`` came from, for an error message: its flag when one set it, else its
        environment variable."""
        return self.flags.get(setting) or env_name(setting)

    @property
    def graphql_body_limit(self) -> int:
        """The largest /graphql request body in bytes: ``max_body_bytes``, raised to fit a document of
        ``max_query_chars`` characters."""
        return max(self.max_body_bytes, 4 * self.max_query_chars)

    @property
    def request_line_limit(self) -> int:
        """The longest request line in bytes (aiohttp's default: 8,190): a GET /graphql carries its
        document in the URL, so one of ``max_query_chars`` ASCII characters, every one percent-encoded,
        fits, with 8 KB more for its variables and the rest."""
        return max(8190, 3 * self.max_query_chars + 8192)

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "funnel.duckdb"

    @property
    def milvus_target(self) -> str:
        """The Milvus URI to open: the configured server, else a Milvus Lite file in the data dir."""
        return self.milvus_uri or str(self.data_dir / "milvus.db")

    @property
    def embedded_document_store(self) -> bool:
        return self.mongo_url is None

    @property
    def embedded_vectors(self) -> bool:
        return self.milvus_uri is None

    @property
    def uses_data_dir_exclusively(self) -> bool:
        """True when an embedded backend (DuckDB, Milvus Lite, the private Redis) lives in the data dir.

        Such a process must hold the data-dir lock; with the private Redis that also keeps an ingest
        from running beside a server whose cache it could not invalidate.
        """
        return self.mongo_url is None or self.milvus_uri is None or self.redis_url is None

    @property
    def model_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def auth_enabled(self) -> bool:
        """Authentication is on as soon as any credential is configured, and only then."""
        return bool(self.api_keys or self.jwt_secret or self.jwt_public_key_file or self.jwks_file)

    @property
    def persisted_queries_path(self) -> Path:
        return self.persisted_queries_file or self.data_dir / "persisted-queries.json"

    def rate_limit(self, role: str) -> int:
        """Requests per ``rate_window_s`` for a role; 0 means unlimited."""
        return dict(self.rate_limits).get(role, 0)


def make_data_dir(key: str, path: Path) -> Path:
    """Create the data directory (and its parents) if missing; it must be writable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(key, f"cannot create data directory {str(path)!r}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(key, f"data directory {str(path)!r} is not writable")
    return path


# setting name -> cast; the env var is PREFIX + name.upper(), the CLI flag --name-with-dashes.
_CASTS = {
    "data_dir": parse.path,
    "host": lambda key, raw: raw,
    "port": parse.port,
    "mongo_url": lambda key, raw: parse.url(key, raw, ("mongodb", "mongodb+srv")),
    "mongo_db": lambda key, raw: raw,
    "mongo_pool_size": parse.positive_int,
    "mongo_timeout_ms": parse.positive_int,
    "milvus_uri": parse.milvus_uri,
    "redis_url": lambda key, raw: parse.url(key, raw, ("redis", "rediss", "unix")),
    "redis_cluster": parse.switch,
    "redis_cluster_nodes": parse.host_ports,
    "log_level": parse.log_level,
    "max_page_size": parse.max_page_size,
    "events_max_batch": parse.positive_int,
    "events_max_bytes": parse.positive_int,
    "events_max_skew_s": parse.positive_int,
    "events_max_age_days": parse.positive_int,
    "session_gap_s": parse.positive_int,
    "index": parse.switch,
    "preaggregates": parse.switch,
    "switch_grace_s": parse.seconds,
    "api_keys": api_key_entries,
    "jwt_secret": jwt_secret,
    "jwt_public_key_file": pem_public_key,
    "jwks_file": jwks,
    "jwt_audience": lambda key, raw: raw,
    "jwt_issuer": lambda key, raw: raw,
    "allowed_hosts": hosts,
    "cors_origins": origins,
    "max_depth": parse.positive_int,
    "max_aliases": parse.positive_int,
    "max_tokens": parse.positive_int,
    "max_query_chars": parse.positive_int,
    "max_body_bytes": parse.positive_int,
    "max_cost": parse.positive_int,
    "introspection": parse.switch,
    "request_timeout_s": parse.positive_float,
    "header_timeout_s": parse.positive_float,
    "body_timeout_s": parse.positive_float,
    "max_connections_per_address": parse.non_negative_int,
    "max_sockets_per_address": parse.non_negative_int,
    "max_operations_per_socket": parse.positive_int,
    "rate_limits": rate_limits,
    "rate_window_s": parse.positive_int,
    "persisted_queries": persisted_mode,
    "persisted_queries_file": parse.path,
    "redis_maxmemory": memory,
    "shutdown_timeout_s": parse.positive_float,
    "slow_operation_ms": parse.non_negative_int,
    "access_log": parse.switch,
}


def env_name(setting: str) -> str:
    return PREFIX + setting.upper()


def load_settings(
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    make_dir: bool = True,
) -> Settings:
    """Build settings from ``env`` (default: the process environment), then CLI ``overrides``.

    Empty environment values count as unset. Raises :class:`ConfigError` naming the first bad key. The
    data directory is created unless ``make_dir`` is False (a command that only reads an existing one
    checks first: :func:`make_data_dir` then makes it when it may).
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name, cast in _CASTS.items():
        key = env_name(name)
        raw = env.get(key)
        if raw is not None and raw.strip() != "":
            values[name] = cast(key, raw.strip())
    flags: dict[str, str] = {}
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        flag = flags[name] = f"--{name.replace('_', '-')}"
        if name not in _CASTS:
            raise ConfigError(flag, "unknown setting")
        values[name] = _CASTS[name](flag, str(value))
    if "data_dir" not in values:
        values["data_dir"] = parse.path(env_name("data_dir"), str(Settings.data_dir))
    if make_dir:
        make_data_dir(flags.get("data_dir", env_name("data_dir")), values["data_dir"])
    _check_cluster(values)
    return replace(Settings(), **values, flags=flags)


def gateway_address(env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """FUNNEL_HOST and FUNNEL_PORT alone, for a client of a running gateway (``replay`` without
    ``--url``): no other setting is read and, unlike :func:`load_settings`, no data directory is made."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for name in ("host", "port"):
        raw = env.get(env_name(name), "").strip()
        if raw:
            values[name] = _CASTS[name](env_name(name), raw)
    return values.get("host", Settings.host), values.get("port", Settings.port)


def url_host(host: str) -> str:
    """``host`` as a URL holds it: an IPv6 address in brackets (``[::1]``), anything else as it is."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def gateway_url(env: Mapping[str, str] | None = None) -> str:
    """The base URL of the gateway FUNNEL_HOST and FUNNEL_PORT name (``replay`` without ``--url``):
    ``http://[::1]:8000`` for an IPv6 host, which ``http://::1:8000`` is not."""
    host, port = gateway_address(env)
    return f"http://{url_host(host)}:{port}"


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(f"{v[0]}={v[1]}" if isinstance(v, tuple) else str(v) for v in value)
    return str(value)


def _check_cluster(values: Mapping[str, Any]) -> None:
    # A cluster is never the private redis-server, and its nodes are TCP addresses (CLUSTER SLOTS).
    if not values.get("redis_cluster"):
        if values.get("redis_cluster_nodes"):
            raise ConfigError(env_name("redis_cluster_nodes"), f"only with {env_name('redis_cluster')}=on")
        return
    url = values.get("redis_url")
    if url is None:
        raise ConfigError(env_name("redis_cluster"), f"a cluster needs {env_name('redis_url')} (one node)")
    if urlsplit(url).scheme == "unix":
        raise ConfigError(env_name("redis_url"), "a Redis Cluster node is a redis:// or rediss:// URL")


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that reproduces ``settings`` (for child processes and docs)."""
    out = {}
    for name in _CASTS:
        value = getattr(settings, name)
        if value is not None and value != ():
            out[env_name(name)] = _render(value)
    return out


DATA_DIR_SHOWN = "$FUNNEL_DATA_DIR"


def redact(text: str, settings: Settings) -> str:
    """``text`` as an API client may read it: the data directory's path replaced by ``$FUNNEL_DATA_DIR``
    and the passwords of the configured URLs (and the JWT secret) by ``***``. Logs keep the full text."""
    out = text.replace(str(settings.data_dir), DATA_DIR_SHOWN)
    if settings.jwt_secret:
        out = out.replace(settings.jwt_secret, "***")
    for url in (settings.mongo_url, settings.redis_url, settings.milvus_uri):
        password = _password_of(url) if url else None
        if password:
            out = out.replace(password, "***")
    return out


def _password_of(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:  # not a URL (a port that is not a number): nothing to hide
        return None


def hide_password(url: str) -> str:
    """``url`` with the password of its user info as ``***`` (``mongodb://funnel:***@mongodb:27017/``),
    for the log lines that name a configured backend: the start-up lines go wherever the logs go
    (``docker compose logs``, a log shipper), and compose puts the database password in the URL."""
    if not _password_of(url):
        return url
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{sep}{user}{colon}***{at}{hostpart}"
