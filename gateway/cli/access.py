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
    private_key = None if args.private_key is None else rsa_private_key_pem(args.private_key)
    print(
        sign(settings, args.sub, Role.parse(args.role), args.ttl, private_key_pem=private_key, kid=args.kid)
    )
    return 0


def rsa_private_key_pem(path: Path) -> str:
    """The text of ``--private-key``'s file, checked to hold an unencrypted RSA private key in PEM, the
    one key RS256 signs with. PyJWT would fail on anything else with an AttributeError (a public key),
    an InvalidKeyError naming a generator object (an EC key) or a TypeError (an encrypted key): each is
    one line naming the flag, the path and the reason here (exit 2), before anything is signed."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    def unusable(reason: str) -> ConfigError:
        return ConfigError("--private-key", f"cannot use {str(path)!r}: {reason}")

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError("--private-key", f"cannot read {str(path)!r}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # cryptography's "Password was not given but private key is encrypted"
        raise unusable(
            "the key is encrypted with a passphrase; give an unencrypted PEM RSA private key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        try:
            serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            raise unusable(
                "it holds no PEM private key (RS256 signs with an RSA private key in PEM)"
            ) from None
        raise unusable("it holds a public key; RS256 signs with the RSA private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise unusable(f"it holds {_key_kind(key)}; RS256 signs with an RSA private key")
    # The key as it parsed, written out again: the file may carry text around the armour (openssl's
    # "Bag Attributes", a comment in another encoding) that is no concern of the signer's.
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode("ascii")


def _key_kind(key: object) -> str:
    """What kind of private key ``key`` is, for a message: "an EC private key", "an Ed25519 private key"."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, x448, x25519

    kinds = (
        (ec.EllipticCurvePrivateKey, "an EC"),
        (ed25519.Ed25519PrivateKey, "an Ed25519"),
        (ed448.Ed448PrivateKey, "an Ed448"),
        (dsa.DSAPrivateKey, "a DSA"),
        (x25519.X25519PrivateKey, "an X25519"),
        (x448.X448PrivateKey, "an X448"),
    )
    kind = next((name for cls, name in kinds if isinstance(key, cls)), "a non-RSA")
    return f"{kind} private key"
