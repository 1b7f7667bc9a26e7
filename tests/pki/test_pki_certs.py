"""Loading certificates and keys: PEM, DER, passphrases, file permissions."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pki_factory import Issued, chmod, issue, key, name, with_raw_subject

from pyracoon.pki import (
    certificate_issuer,
    certificate_request_authority,
    certificate_subject,
    check_file_permission,
    load_certificate,
    load_certificates,
    load_credentials,
    load_private_key,
    resolve_path,
)
from pyracoon.pki.errors import (
    CertificateLoadError,
    EncryptedPrivateKeyError,
    PrivateKeyLoadError,
    WeakFilePermissionError,
)
from pyracoon.pki.name import parse_dn


def test_certificates_load_from_pem_der_and_bundles(tmp_path: Path, root: Issued, host: Issued):
    (tmp_path / "c.pem").write_bytes(host.pem)
    (tmp_path / "c.der").write_bytes(host.cert.public_bytes(serialization.Encoding.DER))
    (tmp_path / "chain.pem").write_bytes(host.pem + root.pem)
    assert load_certificate(tmp_path / "c.pem") == host.cert
    assert load_certificate(tmp_path / "c.der") == host.cert
    assert load_certificates(tmp_path / "chain.pem") == [host.cert, root.cert]


def test_bad_certificate_files_say_which_file(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_bytes(b"hello")
    with pytest.raises(CertificateLoadError, match="junk.pem is neither a PEM nor a DER"):
        load_certificate(tmp_path / "junk.pem")
    with pytest.raises(CertificateLoadError, match="cannot read certificate .*missing.pem"):
        load_certificate(tmp_path / "missing.pem")


@pytest.mark.parametrize(
    "data",
    [
        b"garbage\n",
        bytes(range(256)),
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ],
    ids=["text", "binary", "bad-pem-block"],
)
def test_a_garbage_certificate_is_named_in_plain_words(tmp_path: Path, data: bytes) -> None:
    """The file and what it is not -- none of the parser's internals (``ParseError {...}``)."""
    path = tmp_path / "host_cert.pem"
    path.write_bytes(data)
    with pytest.raises(CertificateLoadError) as info:
        load_certificate(path)
    message = str(info.value)
    assert message.startswith(f"{path} ")
    assert "PEM" in message and "certificate" in message
    for leak in ("ParseError", "kind:", "{", "asn1", "cryptography.io"):
        assert leak not in message, message


def test_a_missing_private_key_is_a_load_error_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(PrivateKeyLoadError) as info:
        load_private_key(tmp_path / "host_priv.pem")
    assert str(info.value) == (
        f"cannot read private key {tmp_path / 'host_priv.pem'}: No such file or directory"
    )


def test_a_directory_is_not_a_secret_file(tmp_path: Path) -> None:
    """No 'chmod 600' advice for a directory: the name is wrong, not the mode."""
    (tmp_path / "cert").mkdir()
    (tmp_path / "cert").chmod(0o755)
    with pytest.raises(IsADirectoryError) as info:
        check_file_permission(tmp_path / "cert", what="pre-shared key file")
    assert "chmod" not in str(info.value)
    with pytest.raises(PrivateKeyLoadError) as key_info:
        load_private_key(tmp_path / "cert")
    assert str(key_info.value) == f"cannot read private key {tmp_path / 'cert'}: Is a directory"


@pytest.mark.parametrize(
    ("kind", "encoding", "fmt"),
    [
        ("rsa", serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL),
        ("rsa", serialization.Encoding.DER, serialization.PrivateFormat.PKCS8),
        ("ec", serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL),
        ("ec", serialization.Encoding.DER, serialization.PrivateFormat.PKCS8),
    ],
)
def test_private_keys_load_in_pem_and_der(tmp_path: Path, kind, encoding, fmt) -> None:
    private = key("loader", kind)
    path = tmp_path / "host_priv.pem"
    path.write_bytes(private.private_bytes(encoding, fmt, serialization.NoEncryption()))
    chmod(path, 0o600)
    loaded = load_private_key(path)
    assert isinstance(loaded, rsa.RSAPrivateKey if kind == "rsa" else ec.EllipticCurvePrivateKey)
    assert loaded.public_key().public_numbers() == private.public_key().public_numbers()


@pytest.mark.parametrize("fmt", ["traditional", "pkcs8-pem", "pkcs8-der"])
def test_an_encrypted_key_is_refused_with_the_fix(tmp_path: Path, fmt: str) -> None:
    private = key("apache", "rsa")
    encryption = serialization.BestAvailableEncryption(b"secret")
    if fmt == "traditional":  # Apache's server.key with "Proc-Type: 4,ENCRYPTED"
        data = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption
        )
    else:
        encoding = serialization.Encoding.PEM if fmt == "pkcs8-pem" else serialization.Encoding.DER
        data = private.private_bytes(encoding, serialization.PrivateFormat.PKCS8, encryption)
    path = tmp_path / "host_priv.pem"
    path.write_bytes(data)
    chmod(path, 0o600)
    with pytest.raises(EncryptedPrivateKeyError) as info:
        load_private_key(path)
    message = str(info.value)
    assert "passphrase" in message
    assert f"openssl rsa -in {path} -out {path}" in message
    assert info.value.path == path


def test_garbage_key_file(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    chmod(path, 0o600)
    with pytest.raises(PrivateKeyLoadError, match="holds no private key") as info:
        load_private_key(path)
    assert str(info.value) == (
        f"{path} holds no private key we can read: it is not an unencrypted PEM or DER key "
        "(PKCS#1, SEC1 or PKCS#8)"
    )


@pytest.mark.parametrize(
    ("mode", "who"), [(0o644, "group and others"), (0o640, "group"), (0o604, "others")]
)
def test_readable_key_is_refused_naming_file_and_mode(tmp_path: Path, mode: int, who: str) -> None:
    path = tmp_path / "host_priv.pem"
    path.write_bytes(
        key("perm", "ec").private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    chmod(path, mode)
    with pytest.raises(WeakFilePermissionError) as info:
        load_private_key(path)
    message = str(info.value)
    assert message.startswith(f"{path} has weak file permission")
    assert f"mode {mode:04o}" in message and who in message and f"chmod 600 {path}" in message
    assert info.value.mode == mode
    assert load_private_key(path, check_permissions=False) is not None
    chmod(path, 0o400)
    check_file_permission(path)  # owner-only is fine


def test_check_file_permission_is_reusable_for_psk_files(tmp_path: Path) -> None:
    psk = tmp_path / "psk.txt"
    psk.write_text("10.0.0.2 secret\n")
    chmod(psk, 0o666)
    with pytest.raises(WeakFilePermissionError, match="psk.txt has weak file permission"):
        check_file_permission(psk, what="pre-shared key file")


def test_subject_and_issuer_keep_their_encoding(root: Issued) -> None:
    # an issuer written with odd spacing/case still equals the CA's subject, but the raw bytes
    # (what an ID payload or CERT-REQUEST carries) are kept
    odd = parse_dn("C=jp, O=  example   CA")
    der = with_raw_subject(root.cert, odd.der)
    cert = x509.load_der_x509_certificate(der)
    assert certificate_subject(cert).der == odd.der
    assert certificate_subject(cert) == certificate_issuer(root.cert)
    assert certificate_issuer(cert).der == root.cert.issuer.public_bytes()


def test_resolve_path_uses_path_certificate_for_relative_names(tmp_path: Path) -> None:
    assert resolve_path("host_cert.pem", tmp_path) == tmp_path / "host_cert.pem"
    assert resolve_path("/etc/x.pem", tmp_path) == Path("/etc/x.pem")
    assert resolve_path("x.pem", None) == Path("x.pem")


def test_issue_helper_makes_what_it_says() -> None:
    ca = issue(name(("CN", "self")), ca=True)
    assert certificate_subject(ca.cert) == certificate_issuer(ca.cert)


def test_credentials_load_and_key_must_match_certificate(
    tmp_path: Path, root: Issued, host: Issued
) -> None:
    (tmp_path / "host_cert.pem").write_bytes(host.pem)
    (tmp_path / "host_priv.pem").write_bytes(host.key_pem())
    (tmp_path / "other_priv.pem").write_bytes(root.key_pem())
    chmod(tmp_path / "host_priv.pem", 0o600)
    chmod(tmp_path / "other_priv.pem", 0o600)
    creds = load_credentials("host_cert.pem", "host_priv.pem", base_dir=tmp_path)
    assert creds.certificate == host.cert
    assert creds.key_path == tmp_path / "host_priv.pem"
    with pytest.raises(PrivateKeyLoadError) as info:
        load_credentials("host_cert.pem", "other_priv.pem", base_dir=tmp_path)
    assert str(info.value) == (
        f"private key {tmp_path / 'other_priv.pem'} does not belong to certificate "
        f"{tmp_path / 'host_cert.pem'} ('C=JP, O=Example, CN=host1.example'); check the two "
        "names in certificate_type"
    )


def test_certificate_request_authority_follows_racoon(root: Issued, intermediate: Issued, host):
    assert certificate_request_authority(
        peers_certificate=host.cert, ca_certificate=root.cert
    ) == certificate_subject(intermediate.cert)
    assert certificate_request_authority(ca_certificate=root.cert).der == (
        root.cert.subject.public_bytes()
    )
    assert certificate_request_authority() is None
