"""The edge's settings (issue 12): how each ``FUNNEL_*`` value of credentials, hosts, origins, rate limits
and persisted queries is parsed and checked. Parsers only: gateway/config.py reads the environment and
calls them, so a bad value still stops start-up with a message naming its variable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from gateway.errors import ConfigError
from gateway.roles import NAMES as ROLE_NAMES

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
PERSISTED_QUERY_MODES = ("apq", "allowlist", "off")
DEFAULT_RATE_LIMITS = (("viewer", 600), ("analyst", 600), ("admin", 1200))
# An API key's name; `create-key --name` says the rule before making a key.
KEY_NAME_RULE = "1-64 characters of A-Z a-z 0-9 _ . @ -"
KEY_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}\Z")
_API_KEY_ENTRY = re.compile(rf"^({KEY_NAME.pattern[1:-2]}):([a-z]+):([0-9a-f]{{64}})\Z")
MIN_JWT_SECRET_CHARS = 32


def _items(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def api_key_entries(key: str, raw: str) -> tuple[str, ...]:
    entries = _items(raw)
    names = set()
    named_by: dict[str, str] = {}  # digest -> the entry holding it
    for entry in entries:
        match = _API_KEY_ENTRY.match(entry)
        if match is None:
            raise ConfigError(
                key,
                f"expected name:role:sha256-hex entries separated by commas, got {entry[:80]!r} "
                "(funnelgate create-key prints one; the key itself never goes here)",
            )
        name, role, digest = match.groups()
        if role not in ROLE_NAMES:
            raise ConfigError(
                key, f"entry {name!r} has unknown role {role!r} (choose {', '.join(ROLE_NAMES)})"
            )
        if name in names:
            raise ConfigError(key, f"two entries are named {name!r}")
        names.add(name)
        if digest in named_by:
            # One key would have two roles, and the last entry would win without a word.
            raise ConfigError(
                key,
                f"entries {named_by[digest]!r} and {name!r} hold the same key digest "
                "(a key has one role: funnelgate create-key makes one per entry)",
            )
        named_by[digest] = name
    return entries


def jwt_secret(key: str, raw: str) -> str:
    if len(raw) < MIN_JWT_SECRET_CHARS:
        raise ConfigError(key, f"an HS256 secret needs at least {MIN_JWT_SECRET_CHARS} characters")
    return raw


def _readable(key: str, raw: str) -> tuple[Path, str]:
    path = Path(raw).expanduser().resolve()
    try:
        return path, path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"cannot read {str(path)!r}: {exc}") from None


def pem_public_key(key: str, raw: str) -> Path:
    path, text = _readable(key, raw)
    if "-----BEGIN PUBLIC KEY-----" not in text and "-----BEGIN RSA PUBLIC KEY-----" not in text:
        raise ConfigError(key, f"{str(path)!r} holds no PEM public key (-----BEGIN PUBLIC KEY-----)")
    return path


def jwks(key: str, raw: str) -> Path:
    path, text = _readable(key, raw)
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(key, f"{str(path)!r} is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list) or not document["keys"]:
        raise ConfigError(key, f"{str(path)!r} is not a JWKS document (an object with a non-empty keys list)")
    return path


def hosts(key: str, raw: str) -> tuple[str, ...]:
    names = tuple(h.lower().strip("[]") for h in _items(raw))
    if not names:
        raise ConfigError(key, "name at least one host (or * for any)")
    return names


def origins(key: str, raw: str) -> tuple[str, ...]:
    listed = _items(raw)
    for origin in listed:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ConfigError(key, f"expected origins like https://app.example.com, got {origin!r}")
    return tuple(o.rstrip("/") for o in listed)


def rate_limits(key: str, raw: str) -> tuple[tuple[str, int], ...]:
    limits = dict(DEFAULT_RATE_LIMITS)
    for item in _items(raw):
        role, sep, count = item.partition("=")
        role = role.strip().lower()
        if not sep or role not in ROLE_NAMES:
            raise ConfigError(
                key, f"expected role=requests entries (roles {', '.join(ROLE_NAMES)}), got {item!r}"
            )
        try:
            limits[role] = int(count)
        except ValueError:
            raise ConfigError(key, f"expected a whole number of requests for {role}, got {count!r}") from None
        if limits[role] < 0:
            raise ConfigError(key, f"expected 0 (unlimited) or more requests for {role}")
    return tuple(sorted(limits.items(), key=lambda kv: ROLE_NAMES.index(kv[0])))


def persisted_mode(key: str, raw: str) -> str:
    mode = raw.lower()
    if mode not in PERSISTED_QUERY_MODES:
        raise ConfigError(key, f"expected one of {', '.join(PERSISTED_QUERY_MODES)}, got {raw!r}")
    return mode


def memory(key: str, raw: str) -> str:
    if re.fullmatch(r"\d+(b|kb|mb|gb)?", raw.lower()) is None:
        raise ConfigError(key, f"expected a size like 256mb or 1gb, got {raw!r}")
    return raw.lower()
