"""API keys and JWTs: what is accepted, what is refused, and that nothing but configuration decides."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.config import load_settings
from gateway.errors import ConfigError, Unauthenticated
from gateway.roles import Role
from gateway.security.credentials import Authenticator, bearer, key_digest, key_entry, mint_token, new_api_key

SECRET = "s" * 40


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def settings(tmp_path, **env):
    return load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path), **env})


def test_api_keys_are_configured_by_digest_and_map_to_their_role(tmp_path):
    key = new_api_key()
    entry = key_entry("ci-dashboard", Role.VIEWER, key)
    assert key not in entry and key_digest(key) in entry
    auth = Authenticator(
        settings(tmp_path, FUNNEL_API_KEYS=f"{entry},{key_entry('bob', Role.ADMIN, new_api_key())}")
    )
    principal = auth.authenticate(key)
    assert (principal.subject, principal.role) == ("key:ci-dashboard", Role.VIEWER)
    with pytest.raises(Unauthenticated, match="unknown API key"):
        auth.authenticate(new_api_key())


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("plainkey", "name:role:sha256-hex"),
        (f"a:superuser:{'0' * 64}", "unknown role"),
        (f"a:viewer:{'0' * 64},a:admin:{'1' * 64}", "two entries"),
        # One key listed twice with two roles: the last entry used to win, silently.
        (f"a:viewer:{'0' * 64},b:admin:{'0' * 64}", "entries 'a' and 'b' hold the same key digest"),
    ],
)
def test_bad_key_entries_stop_start_up_naming_the_variable(tmp_path, value, fragment):
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, FUNNEL_API_KEYS=value)
    assert err.value.key == "FUNNEL_API_KEYS" and fragment in str(err.value)


def test_a_short_jwt_secret_is_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, FUNNEL_JWT_SECRET="short")
    assert err.value.key == "FUNNEL_JWT_SECRET"


def test_hs256_tokens(tmp_path):
    configured = settings(tmp_path, FUNNEL_JWT_SECRET=SECRET, FUNNEL_JWT_AUDIENCE="funnelgate")
    auth = Authenticator(configured)
    token = mint_token(configured, "alice", Role.ANALYST, 60)
    assert auth.authenticate(token).role is Role.ANALYST
    assert auth.authenticate(token).subject == "jwt:alice"  # remembered: same answer

    now = int(time.time())
    for claims, fragment in [
        ({"sub": "a", "exp": now - 120, "aud": "funnelgate"}, "expired"),
        ({"exp": now + 60, "aud": "funnelgate"}, "sub"),
        ({"sub": "a", "exp": now + 60, "aud": "other"}, "(?i)audience"),
        ({"sub": "a", "exp": now + 60, "aud": "funnelgate", "role": "root"}, 'got "root"'),
        # A role is exactly its name, as FUNNEL_API_KEYS takes it (before, any case and spaces passed).
        ({"sub": "a", "exp": now + 60, "aud": "funnelgate", "role": "ADMIN"}, 'got "ADMIN"'),
        ({"sub": "a", "exp": now + 60, "aud": "funnelgate", "role": " admin"}, 'got " admin"'),
        ({"sub": "a", "exp": now + 60, "aud": "funnelgate", "role": ["admin"]}, r'got \["admin"\]'),
        # sub is required and names someone: an empty one was accepted as the subject "jwt:".
        ({"sub": "", "exp": now + 60, "aud": "funnelgate"}, "sub must be a non-empty string"),
        ({"sub": "  ", "exp": now + 60, "aud": "funnelgate"}, "sub must be a non-empty string"),
    ]:
        with pytest.raises(Unauthenticated, match=fragment):
            auth.authenticate(jwt.encode(claims, SECRET, algorithm="HS256"))
    with pytest.raises(Unauthenticated):  # signed with another secret
        auth.authenticate(
            jwt.encode({"sub": "a", "exp": now + 60, "aud": "funnelgate"}, "x" * 40, algorithm="HS256")
        )
    no_role = jwt.encode({"sub": "a", "exp": now + 60, "aud": "funnelgate"}, SECRET, algorithm="HS256")
    assert auth.authenticate(no_role).role is Role.VIEWER  # the least role when the claim is absent


def test_the_algorithm_comes_from_the_configuration_never_from_the_token(tmp_path, rsa_pair):
    private_pem, public_pem = rsa_pair
    pem = tmp_path / "public.pem"
    pem.write_text(public_pem)
    auth = Authenticator(settings(tmp_path, FUNNEL_JWT_PUBLIC_KEY_FILE=str(pem)))
    now = int(time.time())
    claims = {"sub": "svc", "exp": now + 60, "role": "admin"}
    assert auth.authenticate(jwt.encode(claims, private_pem, algorithm="RS256")).role is Role.ADMIN
    # alg "none": no signature at all.
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(Unauthenticated, match="not accepted"):
        auth.authenticate(unsigned)
    # HS/RS confusion: an HS256 token "signed" with the public key text must not pass.
    header = {"alg": "HS256", "typ": "JWT"}

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(signature)}"
    with pytest.raises(Unauthenticated, match="not accepted"):
        auth.authenticate(forged)


def test_rs256_from_a_jwks_file_picks_the_key_by_kid(tmp_path, rsa_pair):
    private_pem, public_pem = rsa_pair
    public = serialization.load_pem_public_key(public_pem.encode())
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}))
    configured = settings(tmp_path, FUNNEL_JWKS_FILE=str(jwks))
    auth = Authenticator(configured)
    token = mint_token(configured, "svc", Role.VIEWER, 60, private_key_pem=private_pem, kid="k1")
    assert auth.authenticate(token).subject == "jwt:svc"
    other = mint_token(configured, "svc", Role.VIEWER, 60, private_key_pem=private_pem, kid="k2")
    with pytest.raises(Unauthenticated, match="kid"):
        auth.authenticate(other)


@pytest.mark.parametrize("credential", ["fgk_\udce9", "eyJ\udce9.eyJ.sig", "fgk_é"])
def test_a_credential_that_is_not_ascii_is_refused_not_a_fault(tmp_path, credential):
    # aiohttp hands a header's non-UTF-8 byte over as a lone surrogate, which hashing used to raise on
    # (UnicodeEncodeError: a 500 on every route that checks credentials).
    auth = Authenticator(settings(tmp_path, FUNNEL_API_KEYS=key_entry("a", Role.ADMIN, new_api_key())))
    with pytest.raises(Unauthenticated, match="a credential is ASCII text"):
        auth.authenticate(credential)


def test_token_refusals_quote_header_values_as_json(tmp_path, rsa_pair):
    private_pem, public_pem = rsa_pair
    public = serialization.load_pem_public_key(public_pem.encode())
    jwks = tmp_path / "jwks.json"
    jwks.write_text(
        json.dumps({"keys": [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public)), "kid": "k1"}]})
    )
    auth = Authenticator(settings(tmp_path, FUNNEL_JWKS_FILE=str(jwks)))
    claims = {"sub": "svc", "exp": int(time.time()) + 60}
    with pytest.raises(Unauthenticated, match="no key with kid null in the configured JWKS"):
        auth.authenticate(jwt.encode(claims, private_pem, algorithm="RS256"))
    with pytest.raises(Unauthenticated, match='tokens signed with "HS256" are not accepted here'):
        auth.authenticate(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_bearer_header_parsing():
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer   abc ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer("Bearer ") is None
    assert bearer(None) is None
