"""Credentials: API keys and JWTs, presented as ``Authorization: Bearer <credential>`` (HTTP) or in the
graphql-transport-ws ``connection_init`` payload, turned into a :class:`gateway.roles.Principal`.

* **API keys** are 32 random bytes (``fgk_…``). Only their SHA-256 digest is configured
  (``FUNNEL_API_KEYS=name:role:sha256-hex,…``): a key is high-entropy, so a plain hash cannot be
  brute-forced and needs no slow KDF; a leaked configuration does not leak a key.
* **JWTs**: HS256 with ``FUNNEL_JWT_SECRET``; RS256 with ``FUNNEL_JWT_PUBLIC_KEY_FILE`` (PEM) or
  ``FUNNEL_JWKS_FILE`` (a JWKS document, the key picked by the token's ``kid``; read from a file, no
  network). The algorithm is chosen by the keys configured, never by the token: its ``alg`` header only
  picks among them, so ``none`` and HS/RS confusion are refused. ``exp`` and ``sub`` are required,
  ``aud``/``iss`` checked when configured, 30 s leeway; the ``role`` claim names the role (``viewer``
  when absent: the least one).

Verified JWTs are remembered until they expire (verifying costs more than the cached answer it unlocks),
and an accepted API key is remembered by its text: the configured keys are fixed for the process, so
the answer cannot change, and only accepted keys are kept (at most one entry per configured key: an
unknown key is hashed and refused every time, and cannot grow the memory).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

from gateway.config import Settings
from gateway.errors import ConfigError, Unauthenticated
from gateway.roles import NAMES as ROLE_NAMES
from gateway.roles import Principal, Role

KEY_PREFIX = "fgk_"
LEEWAY_S = 30
_REMEMBERED_TOKENS = 1024


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_entry(name: str, role: Role, key: str) -> str:
    """The ``FUNNEL_API_KEYS`` entry for a key: its name, role and digest, never the key."""
    return f"{name}:{role.label}:{key_digest(key)}"


def bearer(value: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer …`` value, None when there is none."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: Role
    digest: str


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.auth_enabled
        self._keys: dict[str, ApiKey] = {}
        for entry in settings.api_keys:
            name, role, digest = entry.split(":")
            self._keys[digest] = ApiKey(name, Role.parse(role), digest)
        self._secret = settings.jwt_secret
        self._public_key = settings.jwt_public_key_file.read_text() if settings.jwt_public_key_file else None
        self._jwks: dict[str, Any] = {}
        if settings.jwks_file is not None:
            try:
                keyset = jwt.PyJWKSet.from_dict(json.loads(settings.jwks_file.read_text()))
            except (jwt.PyJWTError, ValueError) as exc:
                raise ConfigError("FUNNEL_JWKS_FILE", f"unusable JWKS: {exc}") from None
            self._jwks = {k.key_id or "": k.key for k in keyset.keys if k.algorithm_name in ("RS256", None)}
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._tokens: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        # key text -> its principal, for keys found above only (so never more entries than keys)
        self._accepted: dict[str, Principal] = {}

    def authenticate(self, credential: str) -> Principal:
        """The principal of an API key or a JWT; :class:`Unauthenticated` for anything else."""
        return self.authenticate_until(credential)[0]

    def authenticate_until(self, credential: str) -> tuple[Principal, float | None]:
        """:meth:`authenticate`, and until when the credential holds (epoch seconds: a JWT's ``exp``
        plus the leeway, the moment a request with it is refused; None for an API key). A WebSocket
        keeps its credential for hours, so it must know when to stop."""
        accepted = self._accepted.get(credential)
        if accepted is not None:
            return accepted, None
        if not credential.isascii():
            # Keys and JWTs are ASCII. A header byte past it reaches here as a lone surrogate (aiohttp
            # decodes headers with surrogateescape), which no digest or JWT parser can even encode.
            raise Unauthenticated("a credential is ASCII text: this one holds other characters")
        if credential.count(".") == 2:
            principal, expires = self._token(credential)
            return principal, expires + LEEWAY_S
        # Digests of high-entropy keys: a dict lookup leaks nothing useful about any stored key.
        found = self._keys.get(key_digest(credential))
        if found is None:
            raise Unauthenticated("unknown API key")
        principal = self._accepted[credential] = Principal(f"key:{found.name}", found.role)
        return principal, None

    def _token(self, token: str) -> tuple[Principal, float]:
        remembered = self._tokens.get(token)
        if remembered is not None:
            if time.time() < remembered[1] + LEEWAY_S:
                self._tokens.move_to_end(token)
                return remembered
            del self._tokens[token]
        principal, expires = self._verify(token)
        self._tokens[token] = (principal, expires)
        if len(self._tokens) > _REMEMBERED_TOKENS:
            self._tokens.popitem(last=False)
        return principal, expires

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
            algorithm = header.get("alg")
            key = self._key_for(algorithm, header.get("kid"))
            claims = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        subject, role = claims["sub"], claims.get("role", Role.VIEWER.label)
        if not isinstance(subject, str) or not subject.strip():
            raise Unauthenticated("invalid token: sub must be a non-empty string")
        # Exactly a role's name, as FUNNEL_API_KEYS takes it: " admin" or "ADMIN" is a token minted wrong.
        if role not in ROLE_NAMES:
            raise Unauthenticated(
                f"invalid token: role must be one of {', '.join(ROLE_NAMES)}, got {json.dumps(role)}"
            )
        return Principal(f"jwt:{subject}", Role.parse(role)), float(claims["exp"])

    def _key_for(self, algorithm: object, kid: object) -> Any:
        if algorithm == "HS256" and self._secret:
            return self._secret
        if algorithm == "RS256" and self._jwks:
            key = self._jwks.get(kid if isinstance(kid, str) else "")
            if key is None:
                raise Unauthenticated(f"no key with kid {json.dumps(kid)} in the configured JWKS")
            return key
        if algorithm == "RS256" and self._public_key:
            return self._public_key
        raise Unauthenticated(f"tokens signed with {json.dumps(algorithm)} are not accepted here")


def mint_token(
    settings: Settings,
    subject: str,
    role: Role,
    ttl_s: int,
    *,
    private_key_pem: str | None = None,
    kid: str | None = None,
) -> str:
    """A token this gateway accepts (for tests and tooling): RS256 with ``private_key_pem``, else HS256
    with the configured secret. Audience and issuer are the configured ones."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "role": role.label, "iat": now, "exp": now + ttl_s}
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if private_key_pem is not None:
        headers = {"kid": kid} if kid else None
        return jwt.encode(claims, private_key_pem, algorithm="RS256", headers=headers)
    if not settings.jwt_secret:
        raise ConfigError("FUNNEL_JWT_SECRET", "set it (or pass --private-key for RS256) to mint a token")
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
