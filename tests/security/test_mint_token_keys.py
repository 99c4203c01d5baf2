"""`funnelgate mint-token --private-key FILE`: a file that holds no usable RS256 signing key is one line
naming the flag, the path and the reason, exit 2 (README, Command line), never a traceback."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gateway.cli import main
from gateway.config import load_settings
from gateway.roles import Role
from gateway.security.credentials import Authenticator

PKCS8 = serialization.PrivateFormat.PKCS8
PEM = serialization.Encoding.PEM


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _unusable_files(key: rsa.RSAPrivateKey) -> dict[str, tuple[bytes, str]]:
    """File name -> (content, the reason the line must give), each reason written out by hand."""
    public = key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    encrypted = key.private_bytes(PEM, PKCS8, serialization.BestAvailableEncryption(b"passphrase"))
    der = key.private_bytes(serialization.Encoding.DER, PKCS8, serialization.NoEncryption())
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(PEM, PKCS8, serialization.NoEncryption())
    ed_pem = ed25519.Ed25519PrivateKey.generate().private_bytes(PEM, PKCS8, serialization.NoEncryption())
    no_pem = "it holds no PEM private key (RS256 signs with an RSA private key in PEM)"
    return {
        "public.pem": (public, "it holds a public key; RS256 signs with the RSA private key"),
        "garbage.pem": (b"garbage\n", no_pem),
        "empty.pem": (b"", no_pem),
        "key.der": (der, no_pem),  # binary, not UTF-8: once a UnicodeDecodeError traceback
        "ec.pem": (ec_pem, "it holds an EC private key; RS256 signs with an RSA private key"),
        "ed25519.pem": (ed_pem, "it holds an Ed25519 private key; RS256 signs with an RSA private key"),
        "encrypted.pem": (
            encrypted,
            "the key is encrypted with a passphrase; give an unencrypted PEM RSA private key",
        ),
    }


@pytest.mark.parametrize(
    "name", ["public.pem", "garbage.pem", "empty.pem", "key.der", "ec.pem", "ed25519.pem", "encrypted.pem"]
)
def test_an_unusable_key_file_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, rsa_key, name):
    monkeypatch.setenv("FUNNEL_DATA_DIR", str(tmp_path / "data"))
    content, reason = _unusable_files(rsa_key)[name]
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["mint-token", "--sub", "alice", "--role", "viewer", "--private-key", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"funnelgate: configuration error: --private-key: cannot use '{path}': {reason}\n"
    assert captured.out == ""  # no token


def test_a_missing_key_file_still_says_it_cannot_be_read(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FUNNEL_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "nope.pem"
    assert main(["mint-token", "--sub", "alice", "--role", "viewer", "--private-key", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"funnelgate: configuration error: --private-key: cannot read '{path}': No such file or directory\n"
    )


@pytest.mark.parametrize("layout", ["pkcs8", "pkcs1 with openssl's bag attributes"])
def test_an_rsa_private_key_signs_a_token_the_public_key_accepts(
    tmp_path, capsys, monkeypatch, rsa_key, layout
):
    if layout == "pkcs8":
        pem = rsa_key.private_bytes(PEM, PKCS8, serialization.NoEncryption())
    else:  # `openssl pkcs12 -nodes` writes text before the armour
        traditional = rsa_key.private_bytes(
            PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        pem = b"Bag Attributes\n    localKeyID: 01 02\nKey Attributes: <No Attributes>\n" + traditional
    private = tmp_path / "private.pem"
    private.write_bytes(pem)
    public = tmp_path / "public.pem"
    public.write_bytes(
        rsa_key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    monkeypatch.setenv("FUNNEL_DATA_DIR", str(tmp_path / "data"))
    argv = ["mint-token", "--sub", "svc", "--role", "analyst", "--private-key", str(private), "--kid", "k1"]
    assert main(argv) == 0
    token = capsys.readouterr().out.strip()
    settings = load_settings(
        env={"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_JWT_PUBLIC_KEY_FILE": str(public)}
    )
    principal = Authenticator(settings).authenticate(token)
    assert (principal.subject, principal.role) == ("jwt:svc", Role.ANALYST)


@pytest.mark.parametrize("secret", ["a-secret-of-at-least-thirty-two-bytes!!", None])
def test_mint_token_makes_no_data_directory(tmp_path, capsys, monkeypatch, secret):
    # It signs with FUNNEL_JWT_SECRET and reads nothing of the data directory, yet it made an empty
    # ./data (or FUNNEL_DATA_DIR) wherever it was run, even when it refused to sign.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FUNNEL_DATA_DIR", raising=False)
    if secret is None:
        monkeypatch.delenv("FUNNEL_JWT_SECRET", raising=False)
    else:
        monkeypatch.setenv("FUNNEL_JWT_SECRET", secret)
    code = main(["mint-token", "--sub", "alice", "--role", "viewer"])
    captured = capsys.readouterr()
    assert (code, captured.out.count(".")) == ((0, 2) if secret else (2, 0))  # a JWT: three dotted parts
    assert list(tmp_path.iterdir()) == []
