"""Access commands and credential files: create-key, mint-token, reading ``--credential-file``."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.config import Settings, api_key_entries
from gateway.errors import ConfigError


def read_credential(path: Path | None) -> str | None:
    """The API key or JWT in ``path`` (a file, so it shows in no process list), None without one; an
    optional leading ``Bearer `` (any case) is dropped."""
    if path is None:
        return None
    try:
        credential = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError("--credential-file", f"cannot read {str(path)!r}: {reason}") from None
    scheme, _, rest = credential.partition(" ")
    if scheme.lower() == "bearer" and (rest or credential == scheme):  # the header's value, as it is sent
        credential = rest.strip()
    if not credential:
        raise ConfigError("--credential-file", f"{str(path)!r} is empty")
    return credential


def create_key(args: argparse.Namespace) -> int:
    from gateway.edge_settings import KEY_NAME, KEY_NAME_RULE
    from gateway.roles import Role
    from gateway.security.credentials import key_entry, new_api_key

    if not KEY_NAME.match(args.name):  # before a key exists: the entry is name:role:digest
        raise ConfigError("--name", f"must be {KEY_NAME_RULE}, got {args.name!r}")
    key = new_api_key()
    entry = key_entry(args.name, Role.parse(args.role), key)
    try:  # the entry must be one FUNNEL_API_KEYS accepts
        api_key_entries("--name", entry)
    except ConfigError as exc:
        raise ConfigError("--name", str(exc).removeprefix("--name: ")) from None
    print(f"API key for {args.name} ({args.role}), shown once; send it as: Authorization: Bearer <key>")
    print(f"  {key}")
    print("Add this entry to FUNNEL_API_KEYS (comma separated; it holds the key's SHA-256, not the key):")
    print(f"  {entry}")
    return 0


def mint_token(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.roles import Role
    from gateway.security.credentials import mint_token as sign

    if args.ttl < 1:
        raise ConfigError("--ttl", "must be at least 1 second")
    if not args.sub.strip():
        raise ConfigError("--sub", "must name who the token is for, got an empty subject")
    private_key = None
    if args.private_key is not None:
        try:
            private_key = args.private_key.read_text()
        except OSError as exc:
            raise ConfigError(
                "--private-key", f"cannot read {str(args.private_key)!r}: {exc.strerror}"
            ) from None
    print(
        sign(settings, args.sub, Role.parse(args.role), args.ttl, private_key_pem=private_key, kid=args.kid)
    )
    return 0
