"""Revocation: CRLs in the CA directory (``<hash>.r0``), as racoon's CRL_CHECK_ALL uses them."""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from pki_factory import NOW, OPENSSL, Issued, install, issue, key, name

from pyracoon.pki import CaDirectory, TrustStore, certificate_subject, verify_certificate_chain
from pyracoon.pki.certs import load_crls, parse_crls
from pyracoon.pki.errors import (
    CertificateLoadError,
    CertificateRevokedError,
    CrlError,
    VerifyCode,
)

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not installed")


def make_crl(
    ca: Issued,
    revoked: list[int] = (),
    *,
    last_update=NOW - timedelta(days=1),
    next_update=NOW + timedelta(days=7),
    signer=None,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(last_update)
        .next_update(next_update)
    )
    for serial in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - timedelta(hours=3))
            .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
            .build()
        )
    return builder.sign(signer or ca.key, hashes.SHA256())


def put_crl(directory: Path, ca: Issued, crl: x509.CertificateRevocationList, index: int = 0):
    digest = certificate_subject(ca.cert).subject_hash_hex()
    path = directory / f"{digest}.r{index}"
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture
def ca_dir(cert_dir: Path, root: Issued) -> Path:
    install(cert_dir, "cacert.pem", root)
    return cert_dir


def test_revoked_peer_is_refused(ca_dir: Path, root: Issued) -> None:
    victim = issue(name(("CN", "stolen")), issuer=root, serial=0x1234)
    put_crl(ca_dir, root, make_crl(root, [0x1234, 99]))
    with pytest.raises(CertificateRevokedError) as info:
        verify_certificate_chain(victim.cert, trust=TrustStore(CaDirectory(ca_dir)), now=NOW)
    exc = info.value
    assert (exc.code, exc.depth) == (VerifyCode.CERT_REVOKED, 0)
    assert str(exc) == (
        "certificate 'CN=stolen' (serial 0x1234) was revoked on 2026-06-01 09:00:00 UTC "
        "(reason: keyCompromise) by 'C=JP, O=Example CA'"
    )
    assert exc.racoon_log_line() == "certificate revoked(23) at depth:0 SubjectName:/CN=stolen"


def test_crl_present_but_peer_not_listed(ca_dir: Path, root: Issued) -> None:
    fine = issue(name(("CN", "fine")), issuer=root, serial=7)
    put_crl(ca_dir, root, make_crl(root, [8]))
    chain = verify_certificate_chain(fine.cert, trust=TrustStore(CaDirectory(ca_dir)), now=NOW)
    # the root's own CRL entry would come from itself: covered by the same file
    assert chain.warnings == ()


def test_missing_crls_are_racoon_warnings_not_failures(
    ca_dir: Path, root: Issued, intermediate: Issued, host: Issued
) -> None:
    chain = verify_certificate_chain(
        host.cert, trust=TrustStore(CaDirectory(ca_dir)), untrusted=[intermediate.cert], now=NOW
    )
    assert chain.warnings == (
        "unable to get certificate CRL(3) at depth:0 SubjectName:/C=JP/O=Example/CN=host1.example",
        "unable to get certificate CRL(3) at depth:1 SubjectName:/C=JP/O=Example CA/OU=Hosts",
        "unable to get certificate CRL(3) at depth:2 SubjectName:/C=JP/O=Example CA",
    )
    quiet = verify_certificate_chain(
        host.cert,
        trust=TrustStore(CaDirectory(ca_dir)),
        untrusted=[intermediate.cert],
        now=NOW,
        check_crls=False,
    )
    assert quiet.warnings == ()


@pytest.mark.parametrize(
    ("crl_kwargs", "code", "words"),
    [
        (
            {"next_update": NOW - timedelta(hours=1), "last_update": NOW - timedelta(days=2)},
            VerifyCode.CRL_HAS_EXPIRED,
            "expired on 2026-06-01 11:00:00 UTC; fetch a fresh one",
        ),
        ({"last_update": NOW + timedelta(days=1)}, VerifyCode.CRL_NOT_YET_VALID, "check the clock"),
        ({"signer": "other"}, VerifyCode.CRL_SIGNATURE_FAILURE, "does not verify with that CA's"),
    ],
)
def test_unusable_crls_fail(ca_dir: Path, root: Issued, crl_kwargs: dict, code, words) -> None:
    if crl_kwargs.get("signer") == "other":
        crl_kwargs = {"signer": key("crl-forger", "rsa")}
    peer = issue(name(("CN", "p")), issuer=root)
    put_crl(ca_dir, root, make_crl(root, **crl_kwargs))
    with pytest.raises(CrlError) as info:
        verify_certificate_chain(peer.cert, trust=TrustStore(CaDirectory(ca_dir)), now=NOW)
    assert info.value.code == code
    assert words in str(info.value)


def test_ca_without_crl_sign(cert_dir: Path) -> None:
    ca = issue(name(("O", "No CRL CA")), ca=True, key_usage={"key_cert_sign": True})
    install(cert_dir, "ca.pem", ca)
    put_crl(cert_dir, ca, make_crl(ca))
    peer = issue(name(("CN", "p")), issuer=ca)
    with pytest.raises(CrlError) as info:
        verify_certificate_chain(peer.cert, trust=TrustStore(CaDirectory(cert_dir)), now=NOW)
    assert info.value.code == VerifyCode.KEYUSAGE_NO_CRL_SIGN


def test_a_fresh_crl_is_preferred_over_an_old_one(ca_dir: Path, root: Issued) -> None:
    peer = issue(name(("CN", "p")), issuer=root)
    old = make_crl(root, last_update=NOW - timedelta(days=30), next_update=NOW - timedelta(days=1))
    put_crl(ca_dir, root, old, 0)
    put_crl(ca_dir, root, make_crl(root), 1)
    assert verify_certificate_chain(peer.cert, trust=TrustStore(CaDirectory(ca_dir)), now=NOW)


def test_crl_files_pem_bundle_and_der(tmp_path: Path, root: Issued, intermediate: Issued) -> None:
    a, b = make_crl(root), make_crl(intermediate)
    bundle = tmp_path / "crls.pem"
    bundle.write_bytes(
        a.public_bytes(serialization.Encoding.PEM) + b.public_bytes(serialization.Encoding.PEM)
    )
    (tmp_path / "one.der").write_bytes(a.public_bytes(serialization.Encoding.DER))
    assert load_crls(bundle) == [a, b]
    assert load_crls(tmp_path / "one.der") == [a]
    with pytest.raises(CertificateLoadError, match="bad CRL"):
        parse_crls(b"not a crl", source="junk.r0")
    victim = issue(name(("CN", "v")), issuer=root, serial=5)
    trust = TrustStore.from_paths(None, [], [bundle])
    trust.ca_certificates.append(root.cert)
    assert verify_certificate_chain(victim.cert, trust=trust, now=NOW)


@needs_openssl
def test_same_verdict_as_openssl_verify_crl_check_all(ca_dir: Path, root: Issued) -> None:
    victim = issue(name(("CN", "stolen")), issuer=root, serial=0x4242)
    put_crl(ca_dir, root, make_crl(root, [0x4242]))
    peer_file = ca_dir.parent / "peer.pem"
    peer_file.write_bytes(victim.pem)
    result = subprocess.run(
        [
            OPENSSL,
            "verify",
            "-crl_check_all",
            "-CApath",
            str(ca_dir),
            "-attime",
            str(int(NOW.timestamp())),
            str(peer_file),
        ],
        capture_output=True,
        text=True,
    )
    match = re.search(r"error (\d+) at (\d+) depth lookup: (.*)", result.stdout + result.stderr)
    assert match, result.stdout + result.stderr
    with pytest.raises(CertificateRevokedError) as info:
        verify_certificate_chain(victim.cert, trust=TrustStore(CaDirectory(ca_dir)), now=NOW)
    ours = info.value
    assert (int(ours.code), ours.depth, ours.code.openssl_text) == (
        int(match[1]),
        int(match[2]),
        match[3].strip(),
    )
