"""How each general ``FUNNEL_*`` value is parsed and checked: ports, counts, URLs, switches, durations,
paths. Parsers only, as ``edge_settings.py`` is for the edge's values: gateway/config.py reads the
environment and calls them with the variable's (or the flag's) name, which every error names.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from gateway.errors import ConfigError


def port(key: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(key, f"expected an integer port, got {raw!r}") from None
    if not 1 <= value <= 65535:
        raise ConfigError(key, f"port {value} is out of range 1..65535")
    return value


def host_ports(key: str, raw: str) -> tuple[str, ...]:
    """``host:port`` items, comma separated (``[::1]:7000`` for an IPv6 address), each checked."""
    out = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        host, sep, number = item.rpartition(":")
        if not sep or not host.strip("[]"):
            raise ConfigError(key, f"expected host:port items separated by commas, got {item!r}")
        port(key, number)
        out.append(item)
    return tuple(out)


def split_host_port(item: str) -> tuple[str, int]:
    """A checked ``host:port`` item (:func:`host_ports`) as (host, port)."""
    host, _, number = item.rpartition(":")
    return host.strip("[]"), int(number)


def positive_int(key: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(key, f"expected a positive integer, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(key, f"expected a positive integer, got {value}")
    return value


# The smallest FUNNEL_MAX_PAGE_SIZE: the lists' default page (``first`` unsent: ``users``, ``droppedOff``,
# ``converted``, the visit and interaction lists all answer 100). A smaller maximum would refuse queries
# for a page their client never asked.
MIN_MAX_PAGE_SIZE = 100


def max_page_size(key: str, raw: str) -> int:
    value = positive_int(key, raw)
    if value < MIN_MAX_PAGE_SIZE:
        raise ConfigError(
            key,
            f"at least {MIN_MAX_PAGE_SIZE} (the lists' default page, when a query sends no first), got {value}",
        )
    return value


def url(key: str, raw: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ConfigError(key, f"unparsable URL {raw!r}: {exc}") from None
    if parts.scheme not in schemes:
        raise ConfigError(key, f"URL {raw!r} must start with one of {', '.join(s + '://' for s in schemes)}")
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(key, f"URL {raw!r} has no host")
    return raw


def milvus_uri(key: str, raw: str) -> str:
    # A path to a .db file means Milvus Lite at that place; anything else must be a server URL.
    if raw.endswith(".db") and "://" not in raw:
        return raw
    return url(key, raw, ("http", "https", "tcp", "grpc"))


def non_negative_int(key: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(key, f"expected an integer >= 0, got {raw!r}") from None
    if value < 0:
        raise ConfigError(key, f"expected an integer >= 0, got {value}")
    return value


def switch(key: str, raw: str) -> bool:
    value = raw.lower()
    if value in {"on", "true", "1", "yes"}:
        return True
    if value in {"off", "false", "0", "no"}:
        return False
    raise ConfigError(key, f"expected on or off, got {raw!r}")


def seconds(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(key, f"expected a number of seconds, got {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise ConfigError(key, f"expected a number of seconds >= 0, got {raw!r}")
    return value


def log_level(key: str, raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(key, f"expected DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return level


def positive_float(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(key, f"expected a number of seconds, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(key, f"expected a positive number of seconds, got {raw!r}")
    return value


def path(key: str, raw: str) -> Path:
    # Absolute from here on: child processes, socket URLs and Milvus Lite must not depend on the cwd.
    return Path(raw).expanduser().resolve()
